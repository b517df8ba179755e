//! SendGrid's Event Webhook: a JSON array of events, optionally signed with ECDSA P-256
//! ("Signed Event Webhook").

use base64::Engine as _;
use chrono::{DateTime, Utc};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::Deserialize;

use super::{
    clean_reason, event_id, first_reason, FeedbackFormatError, FeedbackInput, FeedbackItem,
    FeedbackKind,
};

const INPUT: FeedbackInput = FeedbackInput::Sendgrid;

/// The header that carries the base64 DER signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Email-Event-Webhook-Signature";
/// The header whose value is signed before the body.
pub const TIMESTAMP_HEADER: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

#[derive(Deserialize)]
struct Event {
    email: Option<String>,
    event: Option<String>,
    #[serde(rename = "type")]
    bounce_type: Option<String>,
    reason: Option<String>,
    status: Option<String>,
    timestamp: Option<serde_json::Value>,
    sg_event_id: Option<String>,
}

/// Reads the event array. `bounce`, `spamreport` and two kinds of `dropped` become
/// items; every other event is skipped and not counted (see the module docs of
/// [`super`]).
pub fn parse_sendgrid(body: &[u8]) -> Result<Vec<FeedbackItem>, FeedbackFormatError> {
    let events: Vec<serde_json::Value> = match serde_json::from_slice(body) {
        Ok(serde_json::Value::Array(events)) => events,
        Ok(_) => {
            return Err(FeedbackFormatError::new(
                INPUT,
                "expected a JSON array of events",
            ))
        }
        Err(e) => return Err(FeedbackFormatError::json(INPUT, &e)),
    };
    let mut items = Vec::new();
    for (index, value) in events.into_iter().enumerate() {
        let event: Event = serde_json::from_value(value).map_err(|_| {
            FeedbackFormatError::new(
                INPUT,
                format!("event {index} is not an object with string `email`, `event`, `type`, `reason`, `status` and `sg_event_id`"),
            )
        })?;
        if let Some(item) = event_item(event).map_err(|mut err| {
            err.problem = format!("event {index}: {}", err.problem);
            err
        })? {
            items.push(item);
        }
    }
    Ok(items)
}

fn event_item(event: Event) -> Result<Option<FeedbackItem>, FeedbackFormatError> {
    let Some(name) = event.event.as_deref() else {
        return Err(FeedbackFormatError::field(
            INPUT,
            "event",
            "`event` is missing",
        ));
    };
    let kind = match (name, event.bounce_type.as_deref(), event.reason.as_deref()) {
        // Payloads from before SendGrid split bounces by type have no `type`.
        ("bounce", Some("bounce") | None, _) => FeedbackKind::HardBounce,
        ("bounce", Some("blocked" | "expired"), _) => FeedbackKind::SoftBounce,
        ("spamreport", _, _) => FeedbackKind::Complaint,
        // SendGrid drops mail to addresses on its own bounce and spam lists: the same
        // facts, learned again.
        ("dropped", _, Some("Bounced Address")) => FeedbackKind::HardBounce,
        ("dropped", _, Some("Spam Reporting Address")) => FeedbackKind::Complaint,
        _ => return Ok(None),
    };
    let email = event
        .email
        .filter(|email| !email.trim().is_empty())
        .ok_or_else(|| FeedbackFormatError::field(INPUT, "email", "`email` is missing"))?;
    let at = event
        .timestamp
        .as_ref()
        .and_then(serde_json::Value::as_i64)
        .and_then(|seconds| DateTime::<Utc>::from_timestamp(seconds, 0));
    Ok(Some(FeedbackItem {
        email,
        kind,
        reason: first_reason([event.reason.as_deref(), event.status.as_deref()]),
        at,
        provider_event_id: event
            .sg_event_id
            .as_deref()
            .and_then(|id| event_id("sendgrid", id)),
        bounce_type: clean_reason(event.bounce_type.as_deref().unwrap_or(name)),
    }))
}

/// The public key SendGrid shows for a signed Event Webhook.
#[derive(Debug, Clone)]
pub struct SendgridKey(VerifyingKey);

/// Why a SendGrid key or signature was refused. The caller answers every signature
/// failure alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendgridSignatureError {
    #[error("the SendGrid public key is not the base64 DER of an ECDSA P-256 public key")]
    BadKey,
    #[error("the {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header is missing")]
    MissingHeader,
    #[error("the {SIGNATURE_HEADER} header is not a base64 DER ECDSA signature")]
    BadSignatureEncoding,
    #[error("the signature does not match the timestamp and body")]
    Mismatch,
}

impl SendgridKey {
    /// Reads the key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo.
    /// Done once, at configuration time.
    pub fn from_base64(text: &str) -> Result<Self, SendgridSignatureError> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| SendgridSignatureError::BadKey)?;
        VerifyingKey::from_public_key_der(&der)
            .map(SendgridKey)
            .map_err(|_| SendgridSignatureError::BadKey)
    }

    /// Checks the signature header over the timestamp header followed by the raw body,
    /// exactly as received.
    pub fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
    ) -> Result<(), SendgridSignatureError> {
        let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
            return Err(SendgridSignatureError::MissingHeader);
        };
        let der = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| SendgridSignatureError::BadSignatureEncoding)?;
        let signature =
            Signature::from_der(&der).map_err(|_| SendgridSignatureError::BadSignatureEncoding)?;
        let mut signed = Vec::with_capacity(timestamp.len() + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.extend_from_slice(body);
        self.0
            .verify(&signed, &signature)
            .map_err(|_| SendgridSignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::EncodePublicKey as _;

    const EVENTS: &str = include_str!("../../tests/fixtures/feedback/sendgrid-events.json");

    /// A fresh key pair, as SendGrid would make, and its public key as SendGrid shows it.
    fn key_pair() -> (SigningKey, String) {
        let signing = loop {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).expect("randomness");
            // A random 32-byte string is a valid scalar except with negligible odds.
            if let Ok(key) = SigningKey::from_bytes(&secret.into()) {
                break key;
            }
        };
        let der = signing
            .verifying_key()
            .to_public_key_der()
            .expect("encodes");
        let shown = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
        (signing, shown)
    }

    fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        let signature: Signature = key.sign(&signed);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }

    #[test]
    fn the_published_event_example_maps_as_documented() {
        let items = parse_sendgrid(EVENTS.as_bytes()).expect("valid");
        let read: Vec<_> = items.iter().map(|i| (i.email.as_str(), i.kind)).collect();
        assert_eq!(
            read,
            [
                ("bounce@example.com", FeedbackKind::HardBounce),
                ("blocked@example.com", FeedbackKind::SoftBounce),
                ("dropped@example.com", FeedbackKind::HardBounce),
                ("spamreport@example.com", FeedbackKind::Complaint),
            ]
        );
        let bounce = &items[0];
        assert_eq!(
            bounce.provider_event_id.as_deref(),
            Some("sendgrid:6g4ZI7SA-xmRDv57GoPIPw==")
        );
        assert_eq!(bounce.reason.as_deref(), Some("500 unknown recipient"));
        assert_eq!(bounce.bounce_type.as_deref(), Some("bounce"));
        assert_eq!(bounce.at.map(|at| at.timestamp()), Some(1_513_299_569));
        assert_eq!(items[2].bounce_type.as_deref(), Some("dropped"));
    }

    #[test]
    fn a_spam_reporting_drop_is_a_complaint_and_an_untyped_bounce_is_hard() {
        let body = br#"[
            {"email":"a@example.com","event":"dropped","reason":"Spam Reporting Address","sg_event_id":"x1"},
            {"email":"b@example.com","event":"bounce","reason":"550 no such user","sg_event_id":"x2"},
            {"email":"c@example.com","event":"bounce","type":"expired","sg_event_id":"x3"},
            {"email":"d@example.com","event":"bounce","type":"something-new","sg_event_id":"x4"}
        ]"#;
        let kinds: Vec<_> = parse_sendgrid(body)
            .expect("valid")
            .into_iter()
            .map(|i| i.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                FeedbackKind::Complaint,
                FeedbackKind::HardBounce,
                FeedbackKind::SoftBounce
            ]
        );
    }

    #[test]
    fn a_redelivered_batch_keeps_its_event_ids() {
        let first = parse_sendgrid(EVENTS.as_bytes()).expect("valid");
        let again = parse_sendgrid(EVENTS.as_bytes()).expect("valid");
        let ids = |items: &[FeedbackItem]| {
            items
                .iter()
                .map(|i| i.provider_event_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&first), ids(&again));
        assert!(ids(&first).iter().all(Option::is_some));
    }

    #[test]
    fn wrong_formats_are_rejected() {
        assert!(parse_sendgrid(br#"{"email":"a@example.com","event":"bounce"}"#).is_err());
        assert!(parse_sendgrid(b"[1, 2]").is_err());
        assert!(parse_sendgrid(br#"[{"email":"a@example.com"}]"#).is_err());
        assert!(parse_sendgrid(br#"[{"event":"spamreport"}]"#).is_err());
        assert!(parse_sendgrid(b"email=a@example.com").is_err());
        assert_eq!(parse_sendgrid(b"[]").expect("empty"), vec![]);
    }

    #[test]
    fn a_signed_body_verifies() {
        let (signing, shown) = key_pair();
        let key = SendgridKey::from_base64(&shown).expect("key");
        let timestamp = "1600112502";
        let signature = sign(&signing, timestamp, EVENTS.as_bytes());
        assert_eq!(
            key.verify(Some(&signature), Some(timestamp), EVENTS.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn bad_signatures_are_refused() {
        let (signing, shown) = key_pair();
        let key = SendgridKey::from_base64(&shown).expect("key");
        let body = EVENTS.as_bytes();
        let signature = sign(&signing, "1600112502", body);

        let mut altered = body.to_vec();
        altered[10] ^= 1;
        assert_eq!(
            key.verify(Some(&signature), Some("1600112502"), &altered),
            Err(SendgridSignatureError::Mismatch)
        );
        assert_eq!(
            key.verify(Some(&signature), Some("1600112503"), body),
            Err(SendgridSignatureError::Mismatch)
        );
        let (other, _) = key_pair();
        assert_eq!(
            key.verify(
                Some(&sign(&other, "1600112502", body)),
                Some("1600112502"),
                body
            ),
            Err(SendgridSignatureError::Mismatch)
        );
        assert_eq!(
            key.verify(Some("not base64!"), Some("1600112502"), body),
            Err(SendgridSignatureError::BadSignatureEncoding)
        );
        assert_eq!(
            key.verify(Some("AAAA"), Some("1600112502"), body),
            Err(SendgridSignatureError::BadSignatureEncoding)
        );
        assert_eq!(
            key.verify(None, Some("1600112502"), body),
            Err(SendgridSignatureError::MissingHeader)
        );
        assert_eq!(
            key.verify(Some(&signature), None, body),
            Err(SendgridSignatureError::MissingHeader)
        );
    }

    #[test]
    fn a_key_that_is_not_p256_is_refused() {
        assert_eq!(
            SendgridKey::from_base64("bm90IGEga2V5").err(),
            Some(SendgridSignatureError::BadKey)
        );
        assert_eq!(
            SendgridKey::from_base64("%%%").err(),
            Some(SendgridSignatureError::BadKey)
        );
    }
}
