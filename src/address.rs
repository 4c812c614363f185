//! Strict parsing and normalisation of one email address.
//!
//! # What this module owns
//!
//! - [`parse`]: accept exactly one plain `local@domain` address typed into the
//!   sign-in form and return its normalised form (lowercase, domain in
//!   punycode, no trailing dot), which is the identity used everywhere else
//!   (allow-lists, rate limits, session subject, identity headers).
//! - [`mask`]: the only form in which an address may appear in logs.
//! - [`domain`]: the domain part of a normalised address.
//! - [`rate_key`]: the form an address is counted under for send limits
//!   (without a `+tag`, so `victim+1@` and `victim+2@` share one bucket).
//!
//! # What it does not own
//!
//! Whether an address or domain is allowed to sign in (policy, elsewhere),
//! and whether the mailbox exists (only delivery can tell).
//!
//! # Threat model
//!
//! The input is attacker-controlled and ends up in an SMTP envelope, a
//! `To:` header, allow-list decisions and identity headers. An attacker
//! tries to make one string mean two addresses (the allow-list sees
//! `victim@corp.com`, the mail goes to `attacker@evil.com`): address lists
//! (`,` `;`), display names and angle brackets, quoted local parts, comments,
//! source routes, several `@`, header injection through CR/LF, IP-literal
//! domains, and Unicode look-alikes. The defence is to accept only an RFC 5322
//! dot-atom local part in ASCII and a DNS domain with LDH labels (IDN
//! converted to punycode by the `url` crate's IDNA), and to refuse anything
//! else rather than try to interpret it.

use url::Host;

/// Longest accepted normalised address, in bytes (RFC 5321 path limit minus `<>`).
pub const MAX_ADDRESS_LEN: usize = 254;
/// Longest accepted local part, in bytes (RFC 5321).
pub const MAX_LOCAL_LEN: usize = 64;
/// Longest accepted domain, in bytes.
pub const MAX_DOMAIN_LEN: usize = 253;
/// Longest accepted domain label, in bytes.
pub const MAX_LABEL_LEN: usize = 63;
/// Inputs longer than this are refused before any parsing. It is larger than
/// [`MAX_ADDRESS_LEN`] because a UTF-8 domain can be longer than its punycode.
const MAX_INPUT_LEN: usize = 1024;

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Nothing but whitespace.
    #[error("address is empty")]
    Empty,
    /// Longer than [`MAX_ADDRESS_LEN`] bytes once normalised (or absurdly long input).
    #[error("address is too long")]
    TooLong,
    /// Not exactly one plain address: no `@` or several, CR/LF, whitespace or
    /// control characters inside, or a character that means a list, a
    /// display name, a comment, a route or a quoted local part.
    #[error("not exactly one plain address")]
    NotOneAddress,
    /// The local part is not a dot-atom of 1 to 64 bytes.
    #[error("invalid local part")]
    BadLocalPart,
    /// The domain is not a DNS name with at least two valid labels.
    #[error("invalid domain")]
    BadDomain,
    /// The local part contains non-ASCII characters.
    #[error("non-ASCII local part")]
    NonAscii,
}

/// Parse one address and return it normalised: trimmed of ASCII whitespace,
/// lowercase, domain in punycode, one trailing dot on the domain removed.
pub fn parse(input: &str) -> Result<String, AddressError> {
    if input.contains(['\r', '\n']) {
        return Err(AddressError::NotOneAddress);
    }
    let trimmed = input.trim_matches(|c: char| c.is_ascii_whitespace());
    if trimmed.is_empty() {
        return Err(AddressError::Empty);
    }
    if trimmed.len() > MAX_INPUT_LEN {
        return Err(AddressError::TooLong);
    }
    if trimmed
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || is_structural(c))
    {
        return Err(AddressError::NotOneAddress);
    }
    let (local, domain) = match trimmed.split_once('@') {
        Some((local, domain)) if !domain.contains('@') => (local, domain),
        _ => return Err(AddressError::NotOneAddress),
    };
    let local = parse_local(local)?;
    let domain = parse_domain(domain)?;
    let address = format!("{local}@{domain}");
    if address.len() > MAX_ADDRESS_LEN {
        return Err(AddressError::TooLong);
    }
    Ok(address)
}

/// Mask an address for logs: the first character of the local part, `***`,
/// and the domain (`a***@example.com`). Anything that is not printable ASCII
/// is replaced by `?`, so even an unvalidated input cannot forge log lines.
pub fn mask(address: &str) -> String {
    let (local, domain) = match address.rsplit_once('@') {
        Some((local, domain)) => (local, Some(domain)),
        None => (address, None),
    };
    let mut out: String = local.chars().take(1).map(printable).collect();
    out.push_str("***");
    if let Some(domain) = domain {
        out.push('@');
        out.extend(domain.chars().map(printable));
    }
    out
}

/// The domain part of a normalised address (after the last `@`; empty if
/// there is none).
pub fn domain(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, domain)| domain)
}

/// The form of a normalised address that send limits (address rate,
/// resend delay) count: the local part up to its first `+`, then `@` and
/// the domain. `victim+1@example.com` and `victim+2@example.com` land in
/// the mailbox `victim@example.com` at most providers, so they share its
/// bucket; the mail itself still goes to the address typed.
pub fn rate_key(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let base = local.split_once('+').map_or(local, |(base, _)| base);
            format!("{base}@{domain}")
        }
        None => address.to_owned(),
    }
}

/// Characters that make the input a list, a display name, a comment, a
/// route or a quoted local part.
fn is_structural(c: char) -> bool {
    matches!(
        c,
        ',' | ';' | '<' | '>' | '"' | '(' | ')' | '[' | ']' | '\\' | ':'
    )
}

/// RFC 5322 dot-atom of `atext`, lowercased.
fn parse_local(local: &str) -> Result<String, AddressError> {
    if !local.is_ascii() {
        return Err(AddressError::NonAscii);
    }
    if local.is_empty() || local.len() > MAX_LOCAL_LEN {
        return Err(AddressError::BadLocalPart);
    }
    let atoms_ok = local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext));
    if !atoms_ok {
        return Err(AddressError::BadLocalPart);
    }
    Ok(local.to_ascii_lowercase())
}

/// RFC 5322 `atext`.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'/'
                | b'='
                | b'?'
                | b'^'
                | b'_'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        )
}

/// A DNS name: IDNA to punycode, at least two LDH labels, TLD not numeric.
fn parse_domain(domain: &str) -> Result<String, AddressError> {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    // Before IDNA: ASCII must already be LDH or '.', so that the url crate's
    // percent-decoding and its lenient character set never come into play.
    let ascii_ok = domain
        .chars()
        .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if domain.is_empty() || !ascii_ok {
        return Err(AddressError::BadDomain);
    }
    let ascii = match Host::parse(domain) {
        Ok(Host::Domain(ascii)) => ascii,
        Ok(Host::Ipv4(_) | Host::Ipv6(_)) | Err(_) => return Err(AddressError::BadDomain),
    };
    if ascii.len() > MAX_DOMAIN_LEN {
        // The whole address is then over MAX_ADDRESS_LEN too.
        return Err(AddressError::TooLong);
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 || !labels.iter().all(|label| is_ldh_label(label)) {
        return Err(AddressError::BadDomain);
    }
    let tld_numeric = labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    if tld_numeric {
        return Err(AddressError::BadDomain);
    }
    Ok(ascii.to_ascii_lowercase())
}

fn is_ldh_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn printable(c: char) -> char {
    if c.is_ascii_graphic() {
        c
    } else {
        '?'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_key_drops_the_plus_tag() {
        assert_eq!(rate_key("victim+1@example.com"), "victim@example.com");
        assert_eq!(rate_key("victim+a+b@example.com"), "victim@example.com");
        assert_eq!(rate_key("victim@example.com"), "victim@example.com");
        assert_eq!(rate_key("+x@example.com"), "@example.com");
        assert_eq!(rate_key("a@b+c.example"), "a@b+c.example");
    }

    fn ok(input: &str, expected: &str) {
        assert_eq!(parse(input), Ok(expected.to_string()), "input {input:?}");
        assert_eq!(
            parse(expected),
            Ok(expected.to_string()),
            "not idempotent for {input:?}"
        );
    }

    fn err(input: &str, expected: AddressError) {
        assert_eq!(parse(input), Err(expected), "input {input:?}");
    }

    #[test]
    fn normalises() {
        ok("  Alice@Example.COM ", "alice@example.com");
        ok("alice@example.com.", "alice@example.com");
        ok("\talice@example.com\t", "alice@example.com");
        ok("bob+tag@sub.example.co.uk", "bob+tag@sub.example.co.uk");
        ok("a@b.co", "a@b.co");
        ok("first.last@example.com", "first.last@example.com");
        ok(
            "x!#$%&'*+-/=?^_`{|}~@example.com",
            "x!#$%&'*+-/=?^_`{|}~@example.com",
        );
        ok("a@xn--bcher-kva.example", "a@xn--bcher-kva.example");
        ok("a@1.example.com", "a@1.example.com");
        ok("a@123.com", "a@123.com");
        ok("a@a-b.example", "a@a-b.example");
    }

    #[test]
    fn idn_domains_become_punycode() {
        ok("a@bücher.example", "a@xn--bcher-kva.example");
        ok("a@BÜCHER.example", "a@xn--bcher-kva.example");
        ok("a@例え.テスト", "a@xn--r8jz45g.xn--zckzah");
        // IDNA (UTS #46) maps ideographic and fullwidth full stops to '.'.
        ok("a@example。com", "a@example.com");
        ok("a@example．com", "a@example.com");
    }

    #[test]
    fn idna_mappings_cannot_smuggle_separators() {
        // Fullwidth '@', '/', '?', '#', ':' and '%' map to their ASCII forms,
        // which a DNS name may not contain.
        err("a@example.com＠evil.com", AddressError::BadDomain);
        err("a@evil.com／corp.com", AddressError::BadDomain);
        err("a@evil.com？corp.com", AddressError::BadDomain);
        err("a@evil.com＃corp.com", AddressError::BadDomain);
        err("a@evil.com：25", AddressError::BadDomain);
        err("a@evil％2ecom", AddressError::BadDomain);
        // No ASCII '@' at all: not an address.
        err("a＠example.com", AddressError::NotOneAddress);
    }

    #[test]
    fn must_fail_examples_from_the_spec() {
        err("a@evil.com@corp.com", AddressError::NotOneAddress);
        err("v@corp.com,a@evil.com", AddressError::NotOneAddress);
        err("v@corp.com\nBcc: a@evil.com", AddressError::NotOneAddress);
        err("Victim <v@corp.com>", AddressError::NotOneAddress);
        err("\"a@b\"@corp.com", AddressError::NotOneAddress);
        err("a@[127.0.0.1]", AddressError::NotOneAddress);
        err("a@localhost", AddressError::BadDomain);
        err(".a@x.com", AddressError::BadLocalPart);
        err("a..b@x.com", AddressError::BadLocalPart);
    }

    #[test]
    fn not_one_address() {
        err("alice", AddressError::NotOneAddress);
        err("alice.example.com", AddressError::NotOneAddress);
        err("a@b@c.com", AddressError::NotOneAddress);
        err("@@x.com", AddressError::NotOneAddress);
        err("v@corp.com;a@evil.com", AddressError::NotOneAddress);
        err("v@corp.com a@evil.com", AddressError::NotOneAddress);
        err("<v@corp.com>", AddressError::NotOneAddress);
        err("v@corp.com (comment)", AddressError::NotOneAddress);
        err("v(comment)@corp.com", AddressError::NotOneAddress);
        err("@route:v@corp.com", AddressError::NotOneAddress);
        err("a\\@b@corp.com", AddressError::NotOneAddress);
        err("a@corp.com\r", AddressError::NotOneAddress);
        err("\na@corp.com", AddressError::NotOneAddress);
        err("a@corp.com\rBcc: x@evil.com", AddressError::NotOneAddress);
        err("a\t@corp.com", AddressError::NotOneAddress);
        err("a@corp\0.com", AddressError::NotOneAddress);
        err("a@corp.com\x7f", AddressError::NotOneAddress);
        err("a\u{a0}@corp.com", AddressError::NotOneAddress);
        err("a@corp.com\u{2028}", AddressError::NotOneAddress);
        err("a@corp.com\u{85}", AddressError::NotOneAddress);
        err("a@[IPv6:::1]", AddressError::NotOneAddress);
    }

    #[test]
    fn empty() {
        err("", AddressError::Empty);
        err("   ", AddressError::Empty);
        err("\t \x0c", AddressError::Empty);
    }

    #[test]
    fn bad_local_part() {
        err("@x.com", AddressError::BadLocalPart);
        err("a.@x.com", AddressError::BadLocalPart);
        err(".@x.com", AddressError::BadLocalPart);
        err("a.b.@x.com", AddressError::BadLocalPart);
        let long = format!("{}@x.com", "a".repeat(MAX_LOCAL_LEN + 1));
        err(&long, AddressError::BadLocalPart);
        let max = format!("{}@x.com", "a".repeat(MAX_LOCAL_LEN));
        ok(&max, &max);
    }

    #[test]
    fn non_ascii_local_part() {
        err("josé@example.com", AddressError::NonAscii);
        err("аlice@example.com", AddressError::NonAscii); // Cyrillic а
        err("a\u{200b}@example.com", AddressError::NonAscii);
    }

    #[test]
    fn bad_domain() {
        err("a@", AddressError::BadDomain);
        err("a@.", AddressError::BadDomain);
        err("a@com", AddressError::BadDomain);
        err("a@com.", AddressError::BadDomain);
        err("a@.example.com", AddressError::BadDomain);
        err("a@example..com", AddressError::BadDomain);
        err("a@example.com..", AddressError::BadDomain);
        err("a@-example.com", AddressError::BadDomain);
        err("a@example-.com", AddressError::BadDomain);
        err("a@ex_ample.com", AddressError::BadDomain);
        err("a@ex%61mple.com", AddressError::BadDomain);
        err("a@example.com/x", AddressError::BadDomain);
        err("a@example.com?x", AddressError::BadDomain);
        err("a@example.com#x", AddressError::BadDomain);
        err("a@example.123", AddressError::BadDomain);
        err("a@127.0.0.1", AddressError::BadDomain);
        err("a@0x7f.1", AddressError::BadDomain);
        err("a@2130706433", AddressError::BadDomain);
        err("a@xn--.com", AddressError::BadDomain);
        err("a@xn--zz.com", AddressError::BadDomain);
        let long_label = format!("a@{}.com", "b".repeat(MAX_LABEL_LEN + 1));
        err(&long_label, AddressError::BadDomain);
        let max_label = format!("a@{}.com", "b".repeat(MAX_LABEL_LEN));
        ok(&max_label, &max_label);
    }

    #[test]
    fn length_limits() {
        // 64 + 1 + 189 = 254 bytes: accepted.
        let domain = format!(
            "{}.{}.{}.com",
            "b".repeat(61),
            "c".repeat(61),
            "d".repeat(61)
        );
        let max = format!("{}@{domain}", "a".repeat(64));
        assert_eq!(max.len(), MAX_ADDRESS_LEN);
        ok(&max, &max);
        let over = format!("{}@d{domain}", "a".repeat(64));
        err(&over, AddressError::TooLong);
        err(&"a".repeat(MAX_INPUT_LEN + 1), AddressError::TooLong);
        // Short in UTF-8, too long in punycode.
        let idn = format!("a@{}.com", vec!["ü".repeat(20); 10].join("."));
        assert!(idn.len() < 500);
        err(&idn, AddressError::TooLong);
    }

    #[test]
    fn mask_for_logs() {
        assert_eq!(mask("alice@example.com"), "a***@example.com");
        assert_eq!(mask("a@example.com"), "a***@example.com");
        assert_eq!(mask("@example.com"), "***@example.com");
        assert_eq!(mask("nobody"), "n***");
        assert_eq!(mask(""), "***");
        assert_eq!(mask("é@x.com"), "?***@x.com");
        assert_eq!(mask("a@x.com\nFAKE LOG"), "a***@x.com?FAKE?LOG");
        assert_eq!(mask("a@b@c.com"), "a***@c.com");
    }

    #[test]
    fn domain_part() {
        assert_eq!(domain("alice@example.com"), "example.com");
        assert_eq!(domain("a@b@c.com"), "c.com");
        assert_eq!(domain("nobody"), "");
        assert_eq!(
            domain(&parse("A@Bücher.Example").unwrap()),
            "xn--bcher-kva.example"
        );
    }
}
