//! `portcullis token new NAME [--group G]…`: a fresh secret and the
//! `[[token]]` lines to paste (only its SHA-256 goes into the file).

use super::CliError;

/// The text `token new` prints: the secret on the first line, then the
/// TOML to paste.
pub fn new(name: &str, groups: &[String]) -> Result<String, CliError> {
    if !crate::groups::valid_name(name) {
        return Err(CliError(format!(
            "{name:?} is not a token name (1 to 64 letters, digits, \"-\", \"_\" or \".\")"
        )));
    }
    if let Some(g) = groups.iter().find(|g| !crate::groups::valid_name(g)) {
        return Err(CliError(format!("{g:?} is not a group name")));
    }
    let groups = if groups.is_empty() {
        vec![name.to_string()]
    } else {
        groups.to_vec()
    };
    let secret = crate::token::new_secret();
    let digest = crate::crypto::hex(&crate::token::digest(secret.as_bytes()));
    let list: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
    Ok(format!(
        "secret: {secret}\n\
         \n\
         # Give the secret to the client (Authorization: Bearer <secret>); it is\n\
         # shown once and kept nowhere. Paste these lines into gateway.toml:\n\
         [[token]]\n\
         name = {name:?}\n\
         sha256 = \"{digest}\"\n\
         groups = [{}]   # routes whose allow_groups names one of these let it pass\n\
         # expires = 2027-01-31\n",
        list.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_hold_the_hash_of_the_secret() {
        let text = new("ci", &[]).unwrap();
        let secret = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("secret: ")
            .unwrap();
        let digest = crate::crypto::hex(&crate::token::digest(secret.as_bytes()));
        assert!(text.contains(&format!("sha256 = \"{digest}\"")), "{text}");
        assert!(text.contains("groups = [\"ci\"]"), "{text}");
        assert!(!text[secret.len() + 8..].contains(secret));
        assert!(new("a b", &[]).is_err());
        assert!(new("ci", &["x,y".into()]).is_err());
    }
}
