//! `[groups]` and `[login] groups_file`: group name → members, checked
//! and resolved into [`crate::groups::Groups`] once per load (so a reload
//! reads the file again).
//!
//! A member is one email address or an `@domain` entry. The file holds
//! the body of a `[groups]` table (`ops = ["a@example.com", "@example.com"]`
//! at the top level). Its key is `[login] groups_file` because a `[groups]`
//! table cannot hold it without taking a group's name. A name defined in
//! both places is an error, as is an empty group.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::Problems;
use super::raw::RawGroups;
use super::values;
use crate::groups::{self, GroupId, Groups, Members};

/// `table` from the main file, then the groups file if there is one,
/// then the names machine tokens list that neither defines (groups with
/// no address member).
pub(super) fn groups(
    table: RawGroups,
    file: Option<&Path>,
    token_groups: &std::collections::BTreeSet<String>,
    p: &mut Problems,
) -> Groups {
    let mut out = BTreeMap::new();
    members_of(table, &mut out, p, &|key| format!("groups.{key}"), &|m| m);
    if let Some(path) = file {
        let shown = path.display().to_string();
        let key = "login.groups_file";
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {shown:?}: {e}"))
            .and_then(|text| {
                toml::from_str::<RawGroups>(&text)
                    .map_err(|e| format!("{shown:?}: {}", e.message().trim()))
            });
        match parsed {
            Ok(more) => {
                let before: Vec<String> = out.keys().cloned().collect();
                for name in more.keys().filter(|n| before.contains(n)) {
                    p.add(
                        key,
                        format!("{shown:?}: group {name:?} is also defined in [groups]"),
                    );
                }
                let more = more
                    .into_iter()
                    .filter(|(n, _)| !before.contains(n))
                    .collect();
                members_of(more, &mut out, p, &|_| key.to_string(), &|m| {
                    format!("{shown:?}: {m}")
                });
            }
            Err(m) => p.add(key, m),
        }
    }
    for name in token_groups {
        out.entry(name.clone()).or_default();
    }
    if out.len() > usize::from(GroupId::MAX) {
        p.add("groups", format!("at most {} groups", GroupId::MAX));
    }
    Groups::new(&out)
}

/// Checks each group of `raw` into `out`. Problems go under `key(name)`
/// (a group's own key in `[groups]`, the file's key for the file), their
/// message through `message` (the file's name for the file).
fn members_of(
    raw: RawGroups,
    out: &mut BTreeMap<String, Members>,
    p: &mut Problems,
    key: &dyn Fn(&str) -> String,
    message: &dyn Fn(String) -> String,
) {
    for (name, entries) in raw {
        // In the file the entry is named in the message; here in the key.
        let mut add = |at: &str, m: String| {
            let k = key(at);
            if k.ends_with(at) {
                p.add(k, message(m));
            } else {
                p.add(k, message(format!("{at}: {m}")));
            }
        };
        if !groups::valid_name(&name) {
            add(
                &name,
                format!(
                    "{name:?} is not a group name (1 to 64 letters, digits, \"-\", \"_\" or \".\")"
                ),
            );
            continue;
        }
        if entries.is_empty() {
            add(&name, "has no members".into());
            continue;
        }
        let mut members = Members::default();
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("{name}[{i}]");
            match entry.trim().strip_prefix('@') {
                Some(domain) => match values::host(domain) {
                    Ok(h) if !h.contains(':') => {
                        members.domains.insert(h);
                    }
                    Ok(_) => add(&at, format!("{entry:?} must not have a port")),
                    Err(m) => add(&at, m),
                },
                None => match crate::address::parse(entry) {
                    Ok(a) => {
                        members.addresses.insert(a);
                    }
                    Err(e) => add(
                        &at,
                        format!("{entry:?} is not one email address or \"@domain\" ({e})"),
                    ),
                },
            }
        }
        out.insert(name, members);
    }
}
