//! Groups: named sets of addresses and `@domain` entries (`[groups]` in
//! the file and `[login] groups_file`), turned once, at load, into two
//! maps from an address and from a domain to what it belongs to.
//!
//! Membership is matched as the allow lists match: an address entry
//! exactly (addresses are normalised), a `@domain` entry the address's
//! domain exactly (no subdomains). The entry for an address already holds
//! its domain's groups, so one lookup answers, and the answer carries the
//! `X-Forwarded-Groups` value ready made (sorted names, comma-separated):
//! nothing is computed per request, and nothing at all is looked up when
//! no group is configured.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A group's number: its place in the sorted list of names.
pub type GroupId = u16;

/// The groups one address belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Sorted.
    ids: Box<[GroupId]>,
    /// The names, sorted, joined with `,`: `X-Forwarded-Groups`.
    header: Arc<str>,
}

impl Membership {
    /// Whether one of `ids` is among these groups.
    pub fn any_of(&self, ids: &[GroupId]) -> bool {
        ids.iter().any(|id| self.ids.binary_search(id).is_ok())
    }

    /// The `X-Forwarded-Groups` value: `dev,ops`.
    pub fn header(&self) -> &str {
        &self.header
    }
}

/// Every group, and who is in which.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups {
    /// Sorted; a [`GroupId`] is an index here.
    names: Vec<String>,
    by_address: HashMap<String, Membership>,
    by_domain: HashMap<String, Membership>,
}

/// Who is in a group, as configured (already checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    pub addresses: BTreeSet<String>,
    pub domains: BTreeSet<String>,
}

impl Groups {
    /// From each group's members (names already checked with
    /// [`valid_name`]; at most `GroupId::MAX` groups).
    pub fn new(groups: &BTreeMap<String, Members>) -> Groups {
        let names: Vec<String> = groups.keys().cloned().collect();
        let mut address_ids: BTreeMap<&str, BTreeSet<GroupId>> = BTreeMap::new();
        let mut domain_ids: BTreeMap<&str, BTreeSet<GroupId>> = BTreeMap::new();
        for (id, members) in groups.values().enumerate() {
            let id = GroupId::try_from(id).unwrap_or(GroupId::MAX);
            for a in &members.addresses {
                address_ids.entry(a).or_default().insert(id);
            }
            for d in &members.domains {
                domain_ids.entry(d).or_default().insert(id);
            }
        }
        let membership = |ids: &BTreeSet<GroupId>| {
            let header: Vec<&str> = ids
                .iter()
                .map(|&i| names[usize::from(i)].as_str())
                .collect();
            Membership {
                ids: ids.iter().copied().collect(),
                header: Arc::from(header.join(",")),
            }
        };
        let by_address = address_ids
            .iter()
            .map(|(address, ids)| {
                // The address's own groups and its domain's.
                let mut all = ids.clone();
                if let Some(domain) = address.rsplit_once('@').map(|(_, d)| d) {
                    if let Some(more) = domain_ids.get(domain) {
                        all.extend(more);
                    }
                }
                (address.to_string(), membership(&all))
            })
            .collect();
        let by_domain = domain_ids
            .iter()
            .map(|(domain, ids)| (domain.to_string(), membership(ids)))
            .collect();
        Groups {
            names,
            by_address,
            by_domain,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The sorted group names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The number of the group called `name`.
    pub fn id(&self, name: &str) -> Option<GroupId> {
        self.names
            .binary_search_by(|n| n.as_str().cmp(name))
            .ok()
            .and_then(|i| GroupId::try_from(i).ok())
    }

    /// The membership of the groups called `names` (a machine token's,
    /// [`crate::token`]); `None` when none of them is a group.
    pub fn membership(&self, names: &[String]) -> Option<Membership> {
        let ids: BTreeSet<GroupId> = names.iter().filter_map(|n| self.id(n)).collect();
        if ids.is_empty() {
            return None;
        }
        let header: Vec<&str> = ids.iter().map(|&i| self.name(i)).collect();
        Some(Membership {
            ids: ids.iter().copied().collect(),
            header: Arc::from(header.join(",")),
        })
    }

    /// The name of group `id`.
    pub fn name(&self, id: GroupId) -> &str {
        self.names.get(usize::from(id)).map_or("", String::as_str)
    }

    /// The groups of `email` (normalised); `None` when in none. Free when
    /// no group is configured.
    #[inline]
    pub fn of(&self, email: &str) -> Option<&Membership> {
        if self.names.is_empty() {
            return None;
        }
        self.by_address.get(email).or_else(|| {
            let (_, domain) = email.rsplit_once('@')?;
            self.by_domain.get(domain)
        })
    }
}

/// Whether `name` may name a group: 1 to 64 letters, digits, `-`, `_`
/// or `.` (it is sent in a comma-separated header).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(addresses: &[&str], domains: &[&str]) -> Members {
        Members {
            addresses: addresses.iter().map(|s| s.to_string()).collect(),
            domains: domains.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn address_and_domain_entries_and_the_header() {
        let mut g = BTreeMap::new();
        g.insert("ops".to_string(), members(&["a@example.com"], &[]));
        g.insert("dev".to_string(), members(&[], &["example.com"]));
        g.insert("boss".to_string(), members(&["b@other.org"], &[]));
        let groups = Groups::new(&g);
        assert_eq!(groups.names(), ["boss", "dev", "ops"]);
        let a = groups.of("a@example.com").unwrap();
        assert_eq!(a.header(), "dev,ops");
        assert_eq!(groups.of("z@example.com").unwrap().header(), "dev");
        assert_eq!(groups.of("b@other.org").unwrap().header(), "boss");
        assert!(groups.of("c@other.org").is_none());
        // Domains match exactly, as the allow lists do.
        assert!(groups.of("a@sub.example.com").is_none());
        let ops = groups.id("ops").unwrap();
        let boss = groups.id("boss").unwrap();
        assert!(a.any_of(&[ops]));
        assert!(a.any_of(&[boss, ops]));
        assert!(!a.any_of(&[boss]));
        assert_eq!(groups.name(ops), "ops");
        assert!(Groups::default().of("a@example.com").is_none());
    }

    #[test]
    fn names() {
        assert!(valid_name("ops"));
        assert!(valid_name("team-a_b.c"));
        assert!(!valid_name(""));
        assert!(!valid_name("a,b"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"x".repeat(65)));
    }
}
