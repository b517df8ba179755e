//! Subscription types and their consent notices, as declared in configuration.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct SubscriptionTypeId(String);

#[derive(Debug, thiserror::Error)]
#[error("a subscription type id is 1 to 64 characters of a-z, 0-9, '-' and '_'")]
pub struct InvalidTypeId;

impl SubscriptionTypeId {
    pub fn parse(raw: &str) -> Result<Self, InvalidTypeId> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(InvalidTypeId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SubscriptionTypeId {
    type Error = InvalidTypeId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SubscriptionTypeId> for String {
    fn from(id: SubscriptionTypeId) -> Self {
        id.0
    }
}

impl std::fmt::Display for SubscriptionTypeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Marketing,
    Service,
}

/// A type's current notices by locale: never empty, so that a type always has a notice
/// to show, and asking for one needs no `Option`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(
    try_from = "BTreeMap<String, ConsentNotice>",
    into = "BTreeMap<String, ConsentNotice>"
)]
pub struct ConsentNotices {
    by_locale: BTreeMap<String, ConsentNotice>,
    /// The first locale's notice, kept apart so that a last resort needs no lookup.
    first: (String, ConsentNotice),
}

impl TryFrom<BTreeMap<String, ConsentNotice>> for ConsentNotices {
    type Error = String;
    fn try_from(by_locale: BTreeMap<String, ConsentNotice>) -> Result<Self, String> {
        let first = by_locale
            .iter()
            .next()
            .map(|(locale, notice)| (locale.clone(), notice.clone()))
            .ok_or("a subscription type needs at least one consent notice")?;
        Ok(Self { by_locale, first })
    }
}

impl From<ConsentNotices> for BTreeMap<String, ConsentNotice> {
    fn from(notices: ConsentNotices) -> Self {
        notices.by_locale
    }
}

impl std::ops::Deref for ConsentNotices {
    type Target = BTreeMap<String, ConsentNotice>;
    fn deref(&self) -> &Self::Target {
        &self.by_locale
    }
}

/// The exact text shown beside a signup checkbox, and its version.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsentNotice {
    pub version: String,
    pub text: String,
}

impl ConsentNotice {
    /// Recorded in every consent event, so that the exact text can be proven years later.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.text.as_bytes()))
    }
}

/// A notice version that is no longer shown, kept so old events can still be proven.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PastConsentNotice {
    pub locale: String,
    pub version: String,
    pub text: String,
}

/// Which notice a person saw: recorded in pending confirmations and consent events.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoticeRef {
    /// The subscription type the notice belongs to.
    pub id: SubscriptionTypeId,
    pub locale: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionType {
    pub id: SubscriptionTypeId,
    pub purpose: Purpose,
    #[serde(default = "default_true")]
    pub double_opt_in: bool,
    pub name: BTreeMap<String, String>,
    #[serde(default)]
    pub description: BTreeMap<String, String>,
    pub consent_notice: ConsentNotices,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub past_notices: Vec<PastConsentNotice>,
    /// Days a consent to this type lasts before it lapses unless renewed; unset: until
    /// withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_valid_days: Option<u32>,
    /// Days before a consent lapses that the person is asked to renew it.
    #[serde(default = "default_renewal_days")]
    pub consent_renewal_days: u32,
}

fn default_true() -> bool {
    true
}

fn default_renewal_days() -> u32 {
    30
}

/// Longest consent validity: no lifetime setting goes beyond 100 years.
pub const MAX_CONSENT_VALID_DAYS: u32 = 36_525;

impl SubscriptionType {
    pub fn is_marketing(&self) -> bool {
        self.purpose == Purpose::Marketing
    }

    /// The name in `locale`, else in `fallback`, else the id.
    pub fn name_in(&self, locale: &str, fallback: &str) -> String {
        localized(&self.name, locale, fallback).unwrap_or_else(|| self.id.to_string())
    }

    pub fn description_in(&self, locale: &str, fallback: &str) -> String {
        localized(&self.description, locale, fallback).unwrap_or_default()
    }

    /// The notice currently shown in `locale` (falling back like names do).
    pub fn current_notice(&self, locale: &str, fallback: &str) -> (String, &ConsentNotice) {
        [locale, fallback]
            .into_iter()
            .find_map(|l| self.consent_notice.get(l).map(|n| (l.to_string(), n)))
            .unwrap_or_else(|| {
                let (l, n) = &self.consent_notice.first;
                (l.clone(), n)
            })
    }

    /// A notice by version, current or past, in the given locale.
    pub fn notice_version(&self, locale: &str, version: &str) -> Option<ConsentNotice> {
        if let Some(current) = self
            .consent_notice
            .get(locale)
            .filter(|n| n.version == version)
        {
            return Some(current.clone());
        }
        self.past_notices
            .iter()
            .find(|n| n.locale == locale && n.version == version)
            .map(|n| ConsentNotice {
                version: n.version.clone(),
                text: n.text.clone(),
            })
    }

    /// The reference to the notice shown today in `locale` (or the fallback).
    pub fn current_notice_ref(&self, locale: &str, fallback: &str) -> NoticeRef {
        let (locale, notice) = self.current_notice(locale, fallback);
        self.notice_ref(&locale, notice)
    }

    /// The notice a page showed in `locale`: the version it names, current or past, or
    /// today's when it names none. A version that was never published there is refused:
    /// an opt-in is never recorded against a text the person may not have seen.
    pub fn notice_shown(
        &self,
        locale: &str,
        fallback: &str,
        version: Option<&str>,
    ) -> Result<NoticeRef, UnknownNotice> {
        let (notice_locale, current) = self.current_notice(locale, fallback);
        let Some(version) = version else {
            return Ok(self.notice_ref(&notice_locale, current));
        };
        let notice = self
            .notice_version(&notice_locale, version)
            .ok_or_else(|| UnknownNotice {
                type_id: self.id.to_string(),
                version: version.chars().take(64).collect(),
                locale: notice_locale.clone(),
            })?;
        Ok(self.notice_ref(&notice_locale, &notice))
    }

    /// When a consent given at `consented_at` lapses without renewal.
    pub fn consent_expiry(&self, consented_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.consent_valid_days
            .map(|days| consented_at + Duration::days(days.into()))
    }

    /// When the person is asked to renew a consent given at `consented_at`.
    pub fn consent_renewal_due(&self, consented_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.consent_expiry(consented_at)
            .map(|end| end - Duration::days(self.consent_renewal_days.into()))
    }

    /// `consent_valid_days` within bounds, and the renewal request inside the validity.
    fn check_consent_validity(&self) -> Result<(), String> {
        if self.consent_renewal_days == 0 {
            return Err("consent_renewal_days must be at least 1".into());
        }
        if let Some(valid) = self.consent_valid_days {
            if !(1..=MAX_CONSENT_VALID_DAYS).contains(&valid) {
                return Err(format!(
                    "consent_valid_days must be between 1 and {MAX_CONSENT_VALID_DAYS}"
                ));
            }
            if self.consent_renewal_days >= valid {
                return Err(format!(
                    "consent_renewal_days ({}) must be less than consent_valid_days ({valid}): the renewal request comes before the consent lapses",
                    self.consent_renewal_days
                ));
            }
        }
        Ok(())
    }

    pub fn notice_ref(&self, locale: &str, notice: &ConsentNotice) -> NoticeRef {
        NoticeRef {
            id: self.id.clone(),
            locale: locale.to_string(),
            version: notice.version.clone(),
            sha256: notice.sha256(),
        }
    }
}

fn localized(map: &BTreeMap<String, String>, locale: &str, fallback: &str) -> Option<String> {
    map.get(locale)
        .or_else(|| map.get(fallback))
        .or_else(|| map.values().next())
        .cloned()
}

/// A type id that names no configured type; the id is cut to 64 characters, so that an
/// error message never echoes a huge input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown subscription type '{0}'")]
pub struct UnknownType(pub String);

impl UnknownType {
    fn of(id: &str) -> Self {
        Self(id.chars().take(64).collect())
    }
}

/// A notice version that is not a known version of the type's notice in that locale.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{version}' is not a published consent notice of '{type_id}' in '{locale}'")]
pub struct UnknownNotice {
    pub type_id: String,
    pub version: String,
    pub locale: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("no subscription types are configured")]
    Empty,
    #[error("subscription type '{0}' is declared twice")]
    Duplicate(String),
    #[error("subscription type '{id}' has no {what} for the default locale '{locale}'")]
    MissingDefault {
        id: String,
        what: &'static str,
        locale: String,
    },
    #[error("subscription type '{id}': {reason}")]
    ConsentValidity { id: String, reason: String },
}

/// All configured subscription types, in configuration order.
#[derive(Clone, Debug)]
pub struct Catalog {
    types: Vec<SubscriptionType>,
    default_locale: String,
}

impl Catalog {
    pub fn new(types: Vec<SubscriptionType>, default_locale: &str) -> Result<Self, CatalogError> {
        if types.is_empty() {
            return Err(CatalogError::Empty);
        }
        for (i, t) in types.iter().enumerate() {
            if types[..i].iter().any(|earlier| earlier.id == t.id) {
                return Err(CatalogError::Duplicate(t.id.to_string()));
            }
            let missing = |what| CatalogError::MissingDefault {
                id: t.id.to_string(),
                what,
                locale: default_locale.to_string(),
            };
            if !t.name.contains_key(default_locale) {
                return Err(missing("name"));
            }
            if !t.consent_notice.contains_key(default_locale) {
                return Err(missing("consent notice"));
            }
            t.check_consent_validity()
                .map_err(|reason| CatalogError::ConsentValidity {
                    id: t.id.to_string(),
                    reason,
                })?;
        }
        Ok(Self {
            types,
            default_locale: default_locale.to_string(),
        })
    }

    pub fn get(&self, id: &str) -> Option<&SubscriptionType> {
        self.types.iter().find(|t| t.id.as_str() == id)
    }

    /// The one lookup of a type named by a request.
    pub fn lookup(&self, id: &str) -> Result<&SubscriptionType, UnknownType> {
        self.get(id).ok_or_else(|| UnknownType::of(id))
    }

    /// The types named, each once, in the order first named.
    pub fn lookup_all(&self, ids: &[String]) -> Result<Vec<&SubscriptionType>, UnknownType> {
        let mut types: Vec<&SubscriptionType> = Vec::new();
        for id in ids {
            let found = self.lookup(id)?;
            if !types.iter().any(|t| t.id == found.id) {
                types.push(found);
            }
        }
        Ok(types)
    }

    pub fn all(&self) -> &[SubscriptionType] {
        &self.types
    }

    pub fn default_locale(&self) -> &str {
        &self.default_locale
    }

    pub fn is_marketing(&self, id: &str) -> bool {
        self.get(id).is_some_and(SubscriptionType::is_marketing)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn blog(valid: Option<u32>, renewal: u32) -> SubscriptionType {
        let notice = ConsentNotice {
            version: "v1".into(),
            text: "We send you blog updates until you unsubscribe.".into(),
        };
        SubscriptionType {
            id: SubscriptionTypeId::parse("blog-updates").unwrap(),
            purpose: Purpose::Marketing,
            double_opt_in: true,
            name: BTreeMap::from([("en".to_string(), "Blog updates".to_string())]),
            description: BTreeMap::new(),
            consent_notice: BTreeMap::from([("en".to_string(), notice)])
                .try_into()
                .unwrap(),
            past_notices: Vec::new(),
            consent_valid_days: valid,
            consent_renewal_days: renewal,
        }
    }

    #[test]
    fn consent_lapses_after_its_validity_and_renewal_is_asked_before() {
        let given = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let lapsing = blog(Some(365), 30);
        assert_eq!(
            lapsing.consent_expiry(given),
            Some(Utc.with_ymd_and_hms(2027, 1, 1, 12, 0, 0).unwrap())
        );
        assert_eq!(
            lapsing.consent_renewal_due(given),
            Some(Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap())
        );
        let lasting = blog(None, 30);
        assert_eq!(lasting.consent_expiry(given), None);
        assert_eq!(lasting.consent_renewal_due(given), None);
    }

    #[test]
    fn the_renewal_must_come_before_the_consent_lapses() {
        let check = |valid, renewal| {
            Catalog::new(vec![blog(valid, renewal)], "en")
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(check(Some(365), 30), None);
        assert_eq!(check(None, 30), None);
        assert_eq!(check(Some(31), 30), None);
        let same = check(Some(30), 30).unwrap();
        assert!(same.contains("'blog-updates'"), "{same}");
        assert!(
            same.contains("consent_renewal_days (30) must be less than consent_valid_days (30)"),
            "{same}"
        );
        assert!(check(Some(0), 30)
            .unwrap()
            .contains("consent_valid_days must be between 1"));
        assert!(check(Some(MAX_CONSENT_VALID_DAYS + 1), 30)
            .unwrap()
            .contains("consent_valid_days must be between 1"));
        assert!(check(Some(365), 0)
            .unwrap()
            .contains("consent_renewal_days must be at least 1"));
    }
}
