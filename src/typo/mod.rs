//! Likely typing errors in an address's domain: `ann@gmial.com` is one edit away from
//! `gmail.com`. The hosted form asks "Did you mean …?" before anything is stored, so a
//! confirmation mail is not sent to a mailbox that does not exist (or to a stranger).
//!
//! The well-known mailbox domains are data (`mailbox_domains.txt`, built into the binary);
//! the distance is the optimal string alignment distance of `strsim`, in which swapping
//! two neighbouring letters is one edit, as typing errors usually are.

use std::sync::LazyLock;

use crate::domain::EmailAddress;

static DOMAINS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    include_str!("mailbox_domains.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// The addresses the person may have meant, in the list's order: the same local part at
/// each well-known domain one edit away from the address's domain. Empty when the domain
/// is itself well known, or near none.
pub fn suggestions(email: &EmailAddress) -> Vec<EmailAddress> {
    let Some((local, domain)) = email.as_str().rsplit_once('@') else {
        return Vec::new();
    };
    if DOMAINS.contains(&domain) {
        return Vec::new();
    }
    DOMAINS
        .iter()
        .filter(|known| strsim::osa_distance(domain, known) == 1)
        .filter_map(|known| EmailAddress::parse(&format!("{local}@{known}")).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggest(address: &str) -> Vec<String> {
        suggestions(&EmailAddress::parse(address).unwrap())
            .iter()
            .map(|e| e.as_str().to_string())
            .collect()
    }

    #[test]
    fn one_edit_away_from_a_well_known_domain_is_questioned() {
        assert_eq!(suggest("ann@gmial.com"), ["ann@gmail.com"], "a swap");
        assert_eq!(
            suggest("ann@gmai.com"),
            ["ann@gmail.com"],
            "a letter left out"
        );
        assert_eq!(suggest("Ann.Bel@hotmaill.com"), ["ann.bel@hotmail.com"]);
        assert_eq!(suggest("jan@ziggo.n"), ["jan@ziggo.nl"]);
        assert_eq!(suggest("jan@kpnmial.nl"), ["jan@kpnmail.nl"]);
    }

    #[test]
    fn well_known_domains_and_domains_far_from_them_are_left_alone() {
        for address in [
            "ann@gmail.com",
            "ann@mail.com",
            "ann@example.com",
            "ann@gmx.de",
            "ann@web.de",
            "ann@company.nl",
        ] {
            assert!(suggest(address).is_empty(), "{address}");
        }
    }

    #[test]
    fn the_list_holds_the_domains_people_mistype_most() {
        for domain in [
            "gmail.com",
            "outlook.com",
            "hotmail.com",
            "yahoo.com",
            "icloud.com",
            "live.nl",
            "ziggo.nl",
            "kpnmail.nl",
            "gmx.de",
            "web.de",
            "orange.fr",
        ] {
            assert!(DOMAINS.contains(&domain), "{domain}");
        }
        assert!(DOMAINS
            .iter()
            .all(|d| d.contains('.') && *d == d.to_lowercase()));
    }
}
