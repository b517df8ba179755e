//! Picks the locale a page is shown in: the contact's own choice, else the browser's
//! `Accept-Language`, else the service default.

pub use crate::domain::locale::SUPPORTED_LOCALES;

/// `Accept-Language` entries beyond this many are ignored, so that a hostile header costs
/// no more than a normal one.
const MAX_ENTRIES: usize = 32;

/// No real language range is this long (RFC 5646 tags in practice stay under 35); longer
/// ones are garbage and skipped without being scanned.
const MAX_RANGE_LEN: usize = 64;

/// Quality values in thousandths, as RFC 9110 gives them three decimals at most.
type Quality = u16;
const FULL_QUALITY: Quality = 1000;

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

/// One supported locale's standing in the header: its quality and where it was first
/// named, so that equal qualities go to the earlier entry as browsers intend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Standing {
    quality: Quality,
    position: usize,
}

fn best_from_header(header: &str, default: &str) -> Option<&'static str> {
    let mut explicit: [Option<Standing>; SUPPORTED_LOCALES.len()] = [None; SUPPORTED_LOCALES.len()];
    let mut wildcard: Option<Standing> = None;

    for (position, entry) in header.split(',').take(MAX_ENTRIES).enumerate() {
        let Some((range, quality)) = parse_entry(entry) else {
            continue;
        };
        let standing = Standing { quality, position };
        if range == "*" {
            wildcard = Some(wildcard.map_or(standing, |w| better(w, standing)));
            continue;
        }
        let Some(locale) = match_supported(range) else {
            continue;
        };
        let slot = SUPPORTED_LOCALES
            .iter()
            .position(|supported| *supported == locale);
        if let Some(slot) = slot.and_then(|index| explicit.get_mut(index)) {
            // Several ranges can name one locale (`nl-BE;q=0.9, nl;q=0.2`): serving `nl`
            // satisfies the most wanted of them.
            *slot = Some(slot.map_or(standing, |s| better(s, standing)));
        }
    }

    // `*` stands for every locale the header did not name; among those the default
    // comes first.
    let mut candidates: Vec<(&'static str, Standing)> = Vec::new();
    for (locale, standing) in SUPPORTED_LOCALES.into_iter().zip(explicit) {
        if let Some(standing) = standing.or(wildcard) {
            candidates.push((locale, standing));
        }
    }
    candidates
        .into_iter()
        .filter(|(_, standing)| standing.quality > 0)
        .min_by_key(|(locale, standing)| {
            (
                std::cmp::Reverse(standing.quality),
                standing.position,
                *locale != default,
            )
        })
        .map(|(locale, _)| locale)
}

/// The higher quality wins; at equal quality, the earlier entry.
fn better(a: Standing, b: Standing) -> Standing {
    if (b.quality, std::cmp::Reverse(b.position)) > (a.quality, std::cmp::Reverse(a.position)) {
        b
    } else {
        a
    }
}

/// `range[;q=value][;other=params]` → the range and its quality, or `None` when the
/// entry is unreadable.
fn parse_entry(entry: &str) -> Option<(&str, Quality)> {
    let mut parts = entry.split(';');
    let range = parts.next()?.trim();
    if range.is_empty() || range.len() > MAX_RANGE_LEN || !is_language_range(range) {
        return None;
    }
    let mut quality = FULL_QUALITY;
    for param in parts.take(MAX_ENTRIES) {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            quality = parse_quality(value.trim())?;
        }
    }
    Some((range, quality))
}

/// RFC 9110 `qvalue`: `0`, `1` or a decimal between them with up to three digits. Longer
/// fractions are tolerated and truncated; anything else makes the entry unreadable.
fn parse_quality(value: &str) -> Option<Quality> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let whole: Quality = match whole {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    if fraction.len() > 8 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |acc: Quality, digit| {
            acc * 10 + Quality::from(digit - b'0')
        });
    let quality = whole * FULL_QUALITY + thousandths;
    (quality <= FULL_QUALITY).then_some(quality)
}

/// RFC 4647 `language-range`: `*`, or alphanumeric subtags of 1 to 8 characters joined
/// by `-` (we also accept `_`, which some clients send).
fn is_language_range(range: &str) -> bool {
    range == "*"
        || range.split(['-', '_']).all(|subtag| {
            (1..=8).contains(&subtag.len())
                && (subtag.bytes().all(|b| b.is_ascii_alphanumeric()) || subtag == "*")
        })
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
    fn quality_values_parse_to_thousandths() {
        assert_eq!(parse_quality("1"), Some(1000));
        assert_eq!(parse_quality("1.000"), Some(1000));
        assert_eq!(parse_quality("0.5"), Some(500));
        assert_eq!(parse_quality("0.125"), Some(125));
        assert_eq!(parse_quality("0."), Some(0));
        assert_eq!(parse_quality("1.001"), None);
        assert_eq!(parse_quality("2"), None);
        assert_eq!(parse_quality(".5"), None);
        assert_eq!(parse_quality("0.5e1"), None);
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
