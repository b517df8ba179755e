//! Picks the locale a page is shown in: the contact's own choice, else the browser's
//! `Accept-Language`, else the service default.

use actix_web::http::header::{AcceptLanguage, LanguageTag, Preference, Quality, QualityItem};

pub use crate::domain::locale::SUPPORTED_LOCALES;

/// `Accept-Language` entries beyond this many are ignored, so that a hostile header costs
/// no more than a normal one.
const MAX_ENTRIES: usize = 32;

/// No real language range is this long (RFC 5646 tags in practice stay under 35); longer
/// ones are garbage and skipped without being scanned.
const MAX_RANGE_LEN: usize = 64;

/// Chooses the locale to show: `preferred` (the contact's stored locale) when it is
/// supported, else the best supported match in the `Accept-Language` header, else
/// `default`.
///
/// A region or script is ignored when matching (`nl-BE` is served `nl`). The header is
/// read leniently: malformed entries are skipped, never an error. `default` is returned
/// as given, so callers pass a supported locale (configuration checks it).
pub fn negotiate(accept_language: Option<&str>, preferred: Option<&str>, default: &str) -> String {
    preferred
        .and_then(match_supported)
        .or_else(|| accept_language.and_then(|header| best_from_header(header, default)))
        .unwrap_or(default)
        .to_string()
}

/// The supported locale that a language tag asks for, if any: an exact match, ignoring
/// case, or a match of its primary language subtag (`nl-BE`, `nl_NL` and `NL` give `nl`).
pub fn match_supported(tag: &str) -> Option<&'static str> {
    let tag = tag.trim();
    if tag.len() > MAX_RANGE_LEN {
        return None;
    }
    let language = tag.split(['-', '_']).next().unwrap_or(tag);
    SUPPORTED_LOCALES
        .into_iter()
        .find(|locale| locale.eq_ignore_ascii_case(tag) || locale.eq_ignore_ascii_case(language))
}

/// The best supported locale the header asks for. The header is read by actix-web's
/// typed `Accept-Language`, whose `ranked()` orders entries by quality and keeps header
/// order among equal qualities, so the first supported match is the one to serve.
fn best_from_header(header: &str, default: &str) -> Option<&'static str> {
    let entries: Vec<QualityItem<Preference<LanguageTag>>> = header
        .split(',')
        .take(MAX_ENTRIES)
        .filter_map(parse_entry)
        .collect();
    // Every locale the header names, even with `q=0`: `*` stands only for the others.
    let named: Vec<&'static str> = entries
        .iter()
        .filter_map(|entry| match &entry.item {
            Preference::Specific(tag) => match_supported(tag.as_str()),
            Preference::Any => None,
        })
        .collect();
    // `q=0` means "not acceptable"; several ranges can name one locale
    // (`nl-BE;q=0.9, nl;q=0`) and serving it satisfies the most wanted of them.
    let acceptable = AcceptLanguage(
        entries
            .into_iter()
            .filter(|entry| entry.quality > Quality::ZERO)
            .collect(),
    );
    acceptable
        .ranked()
        .into_iter()
        .find_map(|preference| match preference {
            Preference::Specific(tag) => match_supported(tag.as_str()),
            // Among the locales `*` stands for, the default comes first.
            Preference::Any => SUPPORTED_LOCALES
                .into_iter()
                .filter(|locale| !named.contains(locale))
                .min_by_key(|locale| *locale != default),
        })
}

/// One header entry, leniently: `None` when unreadable. Before actix-web parses it, `_`
/// (which some clients send) becomes `-`, and parameters other than `q` are dropped,
/// because actix-web keeps them in the language tag and the tag then fails to parse.
fn parse_entry(entry: &str) -> Option<QualityItem<Preference<LanguageTag>>> {
    let mut parts = entry.split(';');
    let range = parts.next()?.trim();
    if range.len() > MAX_RANGE_LEN {
        return None;
    }
    let mut normalized = range.replace('_', "-");
    for param in parts.take(MAX_ENTRIES) {
        let param = param.trim();
        if param.starts_with("q=") || param.starts_with("Q=") {
            normalized.push(';');
            normalized.push_str(param);
        }
    }
    normalized.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn from_header(header: &str) -> String {
        negotiate(Some(header), None, "en")
    }

    #[test]
    fn stored_locale_wins_over_the_header() {
        assert_eq!(negotiate(Some("en"), Some("nl"), "en"), "nl");
        assert_eq!(negotiate(Some("nl"), Some("en"), "nl"), "en");
    }

    #[test]
    fn stored_locale_with_a_region_matches_its_language() {
        assert_eq!(negotiate(None, Some("nl-BE"), "en"), "nl");
        assert_eq!(negotiate(None, Some("NL"), "en"), "nl");
    }

    #[test]
    fn unsupported_stored_locale_falls_back_to_the_header() {
        assert_eq!(negotiate(Some("nl"), Some("de"), "en"), "nl");
    }

    #[test]
    fn nothing_known_gives_the_default() {
        assert_eq!(negotiate(None, None, "nl"), "nl");
        assert_eq!(negotiate(Some("fr, de;q=0.5"), None, "nl"), "nl");
        assert_eq!(negotiate(Some(""), Some(""), "en"), "en");
    }

    #[test]
    fn region_subtags_match_their_language() {
        assert_eq!(from_header("nl-BE"), "nl");
        assert_eq!(from_header("nl_NL"), "nl");
        assert_eq!(from_header("fr-FR, nl-BE;q=0.8, en;q=0.5"), "nl");
    }

    #[test]
    fn highest_quality_wins_whatever_the_order() {
        assert_eq!(from_header("en;q=0.4, nl;q=0.9"), "nl");
        assert_eq!(from_header("nl;q=0.4, en"), "en");
    }

    #[test]
    fn equal_quality_goes_to_the_earlier_entry() {
        assert_eq!(from_header("nl, en"), "nl");
        assert_eq!(from_header("en;q=0.5, nl;q=0.5"), "en");
    }

    #[test]
    fn the_best_range_for_a_locale_counts() {
        assert_eq!(from_header("en;q=0.6, nl;q=0.1, nl-BE;q=0.9"), "nl");
    }

    #[test]
    fn zero_quality_excludes_a_locale() {
        assert_eq!(
            negotiate(Some("nl;q=0"), None, "nl"),
            "nl",
            "nothing acceptable: default"
        );
        assert_eq!(from_header("en;q=0, nl;q=0.1"), "nl");
    }

    #[test]
    fn wildcard_prefers_the_default_and_respects_exclusions() {
        assert_eq!(negotiate(Some("*"), None, "nl"), "nl");
        assert_eq!(negotiate(Some("fr, *;q=0.5"), None, "nl"), "nl");
        assert_eq!(negotiate(Some("nl;q=0, *"), None, "nl"), "en");
        assert_eq!(from_header("*;q=0.5, nl;q=0.8"), "nl");
    }

    #[test]
    fn garbage_entries_are_skipped() {
        assert_eq!(from_header("<script>, nl;q=banana, ;;, nl"), "nl");
        assert_eq!(from_header("nl;q=1.5, en;q=0.2"), "en");
        assert_eq!(from_header("nl;q=-1"), "en");
        assert_eq!(from_header(",,,nl;q=0.7;level=1"), "nl");
    }

    #[test]
    fn quality_values_are_read_to_three_decimals() {
        assert_eq!(from_header("en;q=0.12, nl;q=0.125"), "nl");
        assert_eq!(from_header("nl;q=1.000, en;q=1"), "nl");
        assert_eq!(from_header("nl;q=1.001, en;q=0.5"), "en");
        assert_eq!(from_header("nl;q=.5, en;q=0.1"), "en");
    }

    #[test]
    fn only_the_first_entries_of_a_long_header_are_read() {
        let mut header = "fr, ".repeat(MAX_ENTRIES);
        header.push_str("nl");
        assert_eq!(from_header(&header), "en");
        let header = format!("nl, {}", "x".repeat(100_000));
        assert_eq!(from_header(&header), "nl");
    }

    proptest! {
        #[test]
        fn any_header_gives_a_supported_locale(header in any::<String>(), preferred in proptest::option::of(any::<String>())) {
            let locale = negotiate(Some(&header), preferred.as_deref(), "en");
            prop_assert!(SUPPORTED_LOCALES.contains(&locale.as_str()), "{locale}");
        }

        #[test]
        fn header_shaped_input_gives_a_supported_locale(header in "([a-zA-Z*_-]{0,10}(;[qQ ]?=?[0-9.]{0,6})?, ?){0,40}") {
            let locale = negotiate(Some(&header), None, "nl");
            prop_assert!(SUPPORTED_LOCALES.contains(&locale.as_str()), "{locale}");
        }
    }
}
