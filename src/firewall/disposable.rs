//! Which domains hand out throw-away addresses: a maintained list built into the binary
//! (`disposable_domains.txt`, from the disposable-email-domains project, CC0; refreshed by
//! `scripts/refresh-disposable-domains.sh` for each release), with the operator's
//! `blocked_domains` and `allowed_domains` on top. A listed domain covers its subdomains.

use std::collections::HashSet;
use std::sync::LazyLock;

const BUILT_IN: &str = include_str!("disposable_domains.txt");

static DISPOSABLE: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    BUILT_IN
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// How the lists class a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainClass {
    /// In `blocked_domains`: always refused.
    Blocked,
    /// In `allowed_domains`: never judged disposable.
    Allowed,
    /// On the built-in list of disposable-address domains.
    Disposable,
    Unlisted,
}

/// A `blocked_domains` or `allowed_domains` entry that is no domain, or one in both.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DomainListError {
    #[error("'{0}' is not a domain")]
    NotADomain(String),
    #[error("'{0}' is in both signup.blocked_domains and signup.allowed_domains")]
    InBoth(String),
}

/// The operator's lists, in IDNA ASCII form like the domains of parsed addresses.
#[derive(Clone, Debug, Default)]
pub struct DomainLists {
    blocked: HashSet<String>,
    allowed: HashSet<String>,
}

impl DomainLists {
    pub fn new(blocked: &[String], allowed: &[String]) -> Result<Self, DomainListError> {
        let lists = Self {
            blocked: normalize_all(blocked)?,
            allowed: normalize_all(allowed)?,
        };
        if let Some(both) = lists.blocked.intersection(&lists.allowed).next() {
            return Err(DomainListError::InBoth(both.clone()));
        }
        Ok(lists)
    }

    /// The operator's lists decide first, the most specific entry winning
    /// (`allowed_domains = ["team.example"]` beats `blocked_domains = ["example"]`); the
    /// built-in list only speaks for domains they do not name.
    pub fn classify(&self, domain: &str) -> DomainClass {
        for suffix in suffixes(domain) {
            if self.blocked.contains(suffix) {
                return DomainClass::Blocked;
            }
            if self.allowed.contains(suffix) {
                return DomainClass::Allowed;
            }
        }
        if suffixes(domain).any(|suffix| DISPOSABLE.contains(suffix)) {
            DomainClass::Disposable
        } else {
            DomainClass::Unlisted
        }
    }
}

/// How many domains the built-in list holds (for the docs and the start log).
pub fn built_in_count() -> usize {
    DISPOSABLE.len()
}

/// `a.b.example`, `b.example`, `example`: the domain, then each parent.
fn suffixes(domain: &str) -> impl Iterator<Item = &str> {
    let domain = domain.trim_end_matches('.');
    std::iter::once(domain).chain(
        domain
            .match_indices('.')
            .map(move |(at, _)| &domain[at + 1..]),
    )
}

fn normalize_all(entries: &[String]) -> Result<HashSet<String>, DomainListError> {
    entries.iter().map(|entry| normalize(entry)).collect()
}

/// `@Bücher.Example.` → `xn--bcher-kva.example`.
fn normalize(entry: &str) -> Result<String, DomainListError> {
    let trimmed = entry.trim().trim_start_matches('@').trim_end_matches('.');
    let not_a_domain = || DomainListError::NotADomain(entry.to_string());
    let ascii = idna::domain_to_ascii(trimmed).map_err(|_| not_a_domain())?;
    let labels_ok = ascii.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if ascii.is_empty() || !labels_ok {
        return Err(not_a_domain());
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(blocked: &[&str], allowed: &[&str]) -> DomainLists {
        let owned = |items: &[&str]| items.iter().map(ToString::to_string).collect::<Vec<_>>();
        DomainLists::new(&owned(blocked), &owned(allowed)).unwrap()
    }

    #[test]
    fn the_built_in_list_is_loaded_and_matches_parent_domains() {
        assert!(built_in_count() > 5_000, "{} domains", built_in_count());
        let none = DomainLists::default();
        assert_eq!(none.classify("mailinator.com"), DomainClass::Disposable);
        assert_eq!(none.classify("eu.mailinator.com"), DomainClass::Disposable);
        assert_eq!(none.classify("yopmail.com"), DomainClass::Disposable);
        assert_eq!(none.classify("gmail.com"), DomainClass::Unlisted);
        assert_eq!(none.classify("example.org"), DomainClass::Unlisted);
        // Only whole labels match: a look-alike ending is not a parent.
        assert_eq!(none.classify("ailinator.com"), DomainClass::Unlisted);
        assert!(
            !BUILT_IN
                .lines()
                .any(|line| !line.starts_with('#') && line.contains('@')),
            "the data file holds domains only"
        );
    }

    #[test]
    fn the_operators_lists_come_first_and_the_most_specific_entry_wins() {
        let lists = lists(
            &["Spam.Example", "example"],
            &["mailinator.com", "team.example"],
        );
        assert_eq!(lists.classify("spam.example"), DomainClass::Blocked);
        assert_eq!(lists.classify("a.spam.example"), DomainClass::Blocked);
        assert_eq!(lists.classify("other.example"), DomainClass::Blocked);
        assert_eq!(lists.classify("team.example"), DomainClass::Allowed);
        assert_eq!(lists.classify("x.team.example"), DomainClass::Allowed);
        assert_eq!(lists.classify("mailinator.com"), DomainClass::Allowed);
        assert_eq!(lists.classify("eu.mailinator.com"), DomainClass::Allowed);
        assert_eq!(lists.classify("yopmail.com"), DomainClass::Disposable);
    }

    #[test]
    fn entries_are_normalized_and_bad_ones_named() {
        let lists = lists(&["@Bücher.Example."], &[]);
        assert_eq!(
            lists.classify("xn--bcher-kva.example"),
            DomainClass::Blocked
        );
        let owned = |s: &str| vec![s.to_string()];
        assert_eq!(
            DomainLists::new(&owned("not a domain"), &[]).unwrap_err(),
            DomainListError::NotADomain("not a domain".into())
        );
        assert_eq!(
            DomainLists::new(&owned(""), &[]).unwrap_err(),
            DomainListError::NotADomain(String::new())
        );
        assert_eq!(
            DomainLists::new(&owned("a.example"), &owned("A.example")).unwrap_err(),
            DomainListError::InBoth("a.example".into())
        );
    }
}
