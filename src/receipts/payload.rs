//! What a receipt says: the facts of one opt-in ([`ReceiptFacts`]) and the JSON-LD
//! consent receipt they become, in the terms of the W3C Data Privacy Vocabulary's guide
//! "Consent Records and Receipts as per ISO/IEC TS 27560:2023 using DPV": a
//! `dpv:ConsentReceipt` wrapping one `dpv:ConsentRecord`.
//!
//! The payload is at once a JWT claims set (`iss`, `iat`, `jti`, and the chain link
//! `event_id`, `prev_hash`) and a JSON-LD document; JSON-LD processors leave the claims
//! aside, JWT tools show them. It names the person only by contact id, never by address.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use url::Url;
use uuid::Uuid;

use crate::domain::{
    ContactId, EmailAddress, Event, EventKind, LawfulBasis, NoticeRef, Purpose, Status,
    SubscriptionType, SubscriptionTypeId,
};

/// The profile of the DPV guide (§2) a receipt that carries a copy of its record meets.
const RECEIPT_PROFILE: &str = "https://w3id.org/dpv/schema/dpv-27560#receipt-record";
const RECORD_PROFILE: &str = "https://w3id.org/dpv/schema/dpv-27560#record";

/// The controller named in every receipt (`consent.controller`), checked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Controller {
    name: String,
    email: String,
    #[serde(serialize_with = "url_as_str")]
    url: Url,
}

fn url_as_str<S: serde::Serializer>(url: &Url, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(url.as_str())
}

/// A controller field that cannot be used, by name (`name`, `email` or `url`).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ControllerError {
    pub field: &'static str,
    pub reason: String,
}

impl Controller {
    pub fn new(name: &str, email: &str, url: &str) -> Result<Self, ControllerError> {
        let error = |field, reason: &str| ControllerError {
            field,
            reason: reason.to_string(),
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(error("name", "must not be empty"));
        }
        let email = EmailAddress::parse(email)
            .map_err(|e| error("email", &format!("is not an address ({e})")))?;
        let url = Url::parse(url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| error("url", "must be an absolute http(s) URL"))?;
        Ok(Self {
            name: name.to_string(),
            email: email.as_str().to_string(),
            url,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The controller's published contact address (not a data subject's).
    pub fn email(&self) -> &str {
        &self.email
    }

    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// The purpose consented to: one subscription type, in the words the person saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptPurpose {
    pub type_id: SubscriptionTypeId,
    pub name: String,
    pub description: String,
    pub category: Purpose,
}

impl ReceiptPurpose {
    /// The type's name and description in `locale` (falling back like pages do).
    pub fn of(subscription_type: &SubscriptionType, locale: &str, fallback: &str) -> Self {
        Self {
            type_id: subscription_type.id.clone(),
            name: subscription_type.name_in(locale, fallback),
            description: subscription_type.description_in(locale, fallback),
            category: subscription_type.purpose,
        }
    }
}

/// Whether this opt-in gave consent or renewed one given before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentAct {
    Given,
    Renewed,
}

/// Personal data recorded with the consent beyond the address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordedData {
    pub ip_address: bool,
    pub user_agent: bool,
}

/// Everything one receipt states. [`ReceiptFacts::for_event`] fills it from the opt-in
/// or renewal event; a caller may then set what the event does not hold, such as
/// `method` from the confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptFacts {
    /// The provenance event the receipt belongs to, and that event's `prev_hash`.
    pub event_id: Uuid,
    pub prev_hash: String,
    /// The data subject, by contact id only.
    pub contact: ContactId,
    pub purpose: ReceiptPurpose,
    /// The notice shown: its type id, locale, version and the SHA-256 of its text.
    pub notice: NoticeRef,
    pub act: ConsentAct,
    pub consented_at: DateTime<Utc>,
    /// How the consent was expressed: the confirmation's `confirm_method` (`same_browser`,
    /// `button`, `code`) or the event's source (`preference_center`, `import`, …).
    pub method: String,
    pub recorded: RecordedData,
    /// When the consent lapses without renewal; `None` when the type sets no validity.
    pub expires_at: Option<DateTime<Utc>>,
    /// Where the person withdraws the consent: the type's unsubscribe link.
    pub withdraw_url: Url,
}

/// Why an event gets no receipt: receipts exist only for opt-ins on the basis of
/// consent that name the notice shown.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotAConsent {
    #[error("the event is not an opt-in to a subscription type")]
    NotAnOptIn,
    #[error("the opt-in's lawful basis is not consent")]
    NotConsent,
    #[error("the opt-in names no consent notice")]
    NoNotice,
}

impl ReceiptFacts {
    /// The facts of an opt-in (or renewal) event on the basis of consent. The purpose is
    /// named in the notice's language (else `fallback_locale`, the catalog's default);
    /// the method is the confirmation's, else the event's source; the time is the consent
    /// time the event records (else its own), the expiry the type's validity counted from it.
    pub fn for_event(
        event: &Event,
        contact: ContactId,
        subscription_type: &SubscriptionType,
        fallback_locale: &str,
        withdraw_url: Url,
    ) -> Result<Self, NotAConsent> {
        let opted_in = match event.kind {
            EventKind::StatusChanged => event.to == Some(Status::OptedIn),
            EventKind::ConsentRenewed => true,
            _ => false,
        };
        if !opted_in || event.subscription_type.as_ref() != Some(&subscription_type.id) {
            return Err(NotAConsent::NotAnOptIn);
        }
        if event.lawful_basis != Some(LawfulBasis::Consent) {
            return Err(NotAConsent::NotConsent);
        }
        let notice = event.consent_notice.clone().ok_or(NotAConsent::NoNotice)?;
        let signup = event.signup.as_ref();
        let recorded = RecordedData {
            ip_address: event.meta.ip.is_some() || signup.is_some_and(|s| s.ip.is_some()),
            user_agent: event.meta.user_agent.is_some()
                || signup.is_some_and(|s| s.user_agent.is_some()),
        };
        let how = event.confirm_method.map(serde_json::to_value);
        let method = how
            .unwrap_or_else(|| serde_json::to_value(event.source))
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let act = if event.kind == EventKind::ConsentRenewed {
            ConsentAct::Renewed
        } else {
            ConsentAct::Given
        };
        let consented_at = event.consented_at.unwrap_or(event.at);
        Ok(Self {
            event_id: event.id,
            prev_hash: event.prev_hash.clone(),
            contact,
            purpose: ReceiptPurpose::of(subscription_type, &notice.locale, fallback_locale),
            act,
            consented_at,
            method,
            recorded,
            expires_at: subscription_type.consent_expiry(consented_at),
            notice,
            withdraw_url,
        })
    }

    /// Consent given at another time than the event's (an import's or a manual change's
    /// `consented_at`): the expiry is counted from it.
    #[must_use]
    pub fn given_at(mut self, at: DateTime<Utc>, subscription_type: &SubscriptionType) -> Self {
        self.consented_at = at;
        self.expires_at = subscription_type.consent_expiry(at);
        self
    }
}

/// Who signs, and for whom: the parts of a receipt that are the same for every one.
pub(super) struct Issuance<'a> {
    pub controller: &'a Controller,
    /// The service's public URL (`iss`): its `/.well-known/jwks.json` holds the keys.
    pub issuer: &'a Url,
    pub receipt_id: Uuid,
    pub issued_at: DateTime<Utc>,
}

/// Times as RFC 3339 in UTC, written as events write theirs, so a receipt's time and
/// its event's compare as strings.
fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn date_time(time: DateTime<Utc>) -> Value {
    json!({ "@value": rfc3339(time), "@type": "xsd:dateTime" })
}

fn iri(iri: &str) -> Value {
    json!({ "@id": iri })
}

/// DPV's purpose category for a type's purpose: newsletters and offers are direct
/// marketing; service mail is communication management ("to send an email for
/// notifying some information").
fn purpose_category(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Marketing => "dpv:DirectMarketing",
        Purpose::Service => "dpv:CommunicationManagement",
    }
}

/// The JWT claims and JSON-LD of one receipt.
pub(super) fn receipt_claims(facts: &ReceiptFacts, issuance: &Issuance<'_>) -> Value {
    let controller = issuance.controller.url.as_str();
    let mut personal_data = vec![iri("pd:EmailAddress")];
    if facts.recorded.ip_address {
        personal_data.push(iri("pd:IPAddress"));
    }
    if facts.recorded.user_agent {
        personal_data.push(iri("pd:UserAgent"));
    }
    let status_type = match facts.act {
        ConsentAct::Given => "dpv:ConsentGiven",
        ConsentAct::Renewed => "dpv:RenewedConsentGiven",
    };
    let duration = match facts.expires_at {
        Some(end) => json!({ "@type": "dpv:UntilTimeDuration", "rdf:value": date_time(end) }),
        None => json!({
            "@type": "dpv:UntilEventDuration",
            "rdf:value": "until the consent is withdrawn",
        }),
    };
    let record = json!({
        "@id": format!("urn:uuid:{}", facts.event_id),
        "@type": "dpv:ConsentRecord",
        "dct:identifier": facts.event_id.to_string(),
        "dct:conformsTo": iri(RECORD_PROFILE),
        "dpv:hasDataSubject": {
            "@type": "dpv:DataSubject",
            "dct:identifier": facts.contact.as_str(),
        },
        "dpv:hasDataController": iri(controller),
        "dpv:hasApplicableLaw": iri("eu-gdpr:GDPR"),
        "dpv:hasNotice": {
            "@type": "dpv:ConsentNotice",
            "dct:identifier": facts.notice.id.as_str(),
            "dct:language": facts.notice.locale,
            "schema:version": facts.notice.version,
            "schema:sha256": facts.notice.sha256,
        },
        "dpv:hasProcess": {
            "@type": "dpv:Process",
            "dpv:hasPurpose": {
                "@type": "dpv:Purpose",
                "skos:broader": iri(purpose_category(facts.purpose.category)),
                "dct:identifier": facts.purpose.type_id.as_str(),
                "dct:title": facts.purpose.name,
                "dct:description": facts.purpose.description,
            },
            "dpv:hasPersonalData": personal_data,
            "dpv:hasLegalBasis": iri("eu-gdpr:A6-1-a"),
            "dpv:hasDataController": iri(controller),
            "dpv:hasRecipient": iri(controller),
        },
        "dpv:hasConsentControl": {
            "@type": "dpv:WithdrawConsent",
            "dpv:isExercisedAt": iri(facts.withdraw_url.as_str()),
        },
        "dpv:hasConsentStatus": {
            "@type": [status_type, "dpv:ExpressedConsent"],
            "dpv:isIndicatedBy": iri("dpv:DataSubject"),
            "dpv:isIndicatedAtTime": date_time(facts.consented_at),
            "dpv:hasIndicationMethod": facts.method,
            "dpv:hasDuration": duration,
        },
        "dpv:hasEntity": {
            "@id": controller,
            "@type": "dpv:DataController",
            "dpv:hasName": issuance.controller.name,
            "schema:contactPoint": {
                "@type": "schema:ContactPoint",
                "schema:email": issuance.controller.email,
            },
            "schema:url": iri(controller),
        },
    });
    json!({
        "@context": {
            "dpv": "https://w3id.org/dpv#",
            "pd": "https://w3id.org/dpv/pd#",
            "eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
            "dct": "http://purl.org/dc/terms/",
            "schema": "https://schema.org/",
            "skos": "http://www.w3.org/2004/02/skos/core#",
            "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
        },
        "iss": issuance.issuer.as_str().trim_end_matches('/'),
        "iat": issuance.issued_at.timestamp(),
        "jti": issuance.receipt_id.to_string(),
        "event_id": facts.event_id.to_string(),
        "prev_hash": facts.prev_hash,
        "@id": format!("urn:uuid:{}", issuance.receipt_id),
        "@type": "dpv:ConsentReceipt",
        "dpv:hasIdentifier": issuance.receipt_id.to_string(),
        "dct:conformsTo": iri(RECEIPT_PROFILE),
        "dct:created": date_time(issuance.issued_at),
        "dct:publisher": iri(controller),
        "schema:recipient": iri("dpv:DataSubject"),
        "dpv:hasRecordOfActivity": record,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;

    use super::*;
    use crate::domain::{ConsentNotice, EventDraft, RequestMeta, SignupEvidence, Source};

    fn blog(valid: Option<u32>) -> SubscriptionType {
        let notice = |text: &str| ConsentNotice {
            version: "v3".into(),
            text: text.into(),
        };
        SubscriptionType {
            id: SubscriptionTypeId::parse("blog-updates").unwrap(),
            purpose: Purpose::Marketing,
            double_opt_in: true,
            name: BTreeMap::from([
                ("en".to_string(), "Blog updates".to_string()),
                ("nl".to_string(), "Blogupdates".to_string()),
            ]),
            description: BTreeMap::new(),
            consent_notice: BTreeMap::from([
                ("en".to_string(), notice("We send you blog updates.")),
                ("nl".to_string(), notice("We sturen je blogupdates.")),
            ])
            .try_into()
            .unwrap(),
            past_notices: Vec::new(),
            consent_valid_days: valid,
            consent_renewal_days: 30,
        }
    }

    fn opt_in(subscription_type: &SubscriptionType, basis: LawfulBasis) -> Event {
        let at = Utc.with_ymd_and_hms(2026, 2, 1, 9, 30, 0).unwrap();
        let meta = RequestMeta {
            ip: None,
            user_agent: Some("Mozilla/5.0".into()),
            ..RequestMeta::default()
        };
        let mut draft = EventDraft::new(EventKind::StatusChanged, Source::ConfirmLink, &meta);
        draft.subscription_type = Some(subscription_type.id.clone());
        draft.from = Some(Status::NotSubscribed);
        draft.to = Some(Status::OptedIn);
        draft.lawful_basis = Some(basis);
        draft.consent_notice = Some(subscription_type.current_notice_ref("nl", "en"));
        draft.signup = Some(SignupEvidence {
            ip: Some("192.0.2.7".into()),
            ..SignupEvidence::from_request(Source::SignupForm, &RequestMeta::default(), at)
        });
        Event::from_draft(draft, 3, at, "7".repeat(64))
    }

    fn withdraw() -> Url {
        Url::parse("https://news.example.com/unsubscribe/t").unwrap()
    }

    #[test]
    fn an_opt_in_event_gives_the_facts_of_its_receipt() {
        let blog = blog(Some(365));
        let event = opt_in(&blog, LawfulBasis::Consent);
        let contact = ContactId::parse(&"ab".repeat(16)).unwrap();
        let facts =
            ReceiptFacts::for_event(&event, contact.clone(), &blog, "en", withdraw()).unwrap();
        assert_eq!(facts.event_id, event.id);
        assert_eq!(facts.prev_hash, event.prev_hash);
        assert_eq!(facts.contact, contact);
        assert_eq!(facts.notice.locale, "nl");
        assert_eq!(
            facts.purpose.name, "Blogupdates",
            "named in the notice's language"
        );
        assert_eq!(facts.consented_at, event.at);
        assert_eq!(facts.method, "confirm_link");
        assert_eq!(facts.act, ConsentAct::Given);
        assert_eq!(
            facts.recorded,
            RecordedData {
                ip_address: true,
                user_agent: true
            },
            "the IP address came with the signup, the user agent with the click"
        );
        assert_eq!(
            facts.expires_at,
            Some(Utc.with_ymd_and_hms(2027, 2, 1, 9, 30, 0).unwrap())
        );
        assert_eq!(facts.withdraw_url, withdraw());

        let imported = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
        let facts = facts.given_at(imported, &blog);
        assert_eq!(facts.consented_at, imported);
        assert_eq!(
            facts.expires_at,
            Some(Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap())
        );

        // The consent time an import recorded in its event, and a renewal.
        let mut given_earlier = event.clone();
        given_earlier.consented_at = Some(imported);
        let facts =
            ReceiptFacts::for_event(&given_earlier, contact.clone(), &blog, "en", withdraw())
                .unwrap();
        assert_eq!(facts.consented_at, imported);
        assert_eq!(
            facts.expires_at,
            Some(Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap())
        );
        let mut renewed = event;
        renewed.kind = EventKind::ConsentRenewed;
        renewed.from = None;
        renewed.to = None;
        let facts = ReceiptFacts::for_event(&renewed, contact, &blog, "en", withdraw()).unwrap();
        assert_eq!(facts.act, ConsentAct::Renewed);
    }

    #[test]
    fn only_opt_ins_on_consent_naming_a_notice_get_a_receipt() {
        let blog = blog(None);
        let contact = ContactId::parse(&"ab".repeat(16)).unwrap();
        let facts = |event: &Event| {
            ReceiptFacts::for_event(event, contact.clone(), &blog, "en", withdraw()).err()
        };
        assert_eq!(
            facts(&opt_in(&blog, LawfulBasis::LegitimateInterests)),
            Some(NotAConsent::NotConsent)
        );
        let mut no_notice = opt_in(&blog, LawfulBasis::Consent);
        no_notice.consent_notice = None;
        assert_eq!(facts(&no_notice), Some(NotAConsent::NoNotice));
        let mut unsubscribed = opt_in(&blog, LawfulBasis::Consent);
        unsubscribed.to = Some(Status::Unsubscribed);
        assert_eq!(facts(&unsubscribed), Some(NotAConsent::NotAnOptIn));
        let mut other_type = opt_in(&blog, LawfulBasis::Consent);
        other_type.subscription_type = Some(SubscriptionTypeId::parse("news").unwrap());
        assert_eq!(facts(&other_type), Some(NotAConsent::NotAnOptIn));
        assert_eq!(facts(&opt_in(&blog, LawfulBasis::Consent)), None);
    }
}
