//! What a receipt states, read back from its own payload: the mail that carries a
//! receipt says in words what it holds, and the listings show it, from the same bytes
//! the person holds, so that the words can never drift from the signed copy.
//!
//! The receipt is one optin signed, so it is read without verifying it again; a field
//! that is missing reads as empty rather than failing.

use serde_json::Value;

use crate::domain::StoredReceipt;

/// The facts of one receipt, as its payload and header state them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptSummary {
    /// `jti`: the receipt's own id.
    pub receipt_id: String,
    /// The key that signed it.
    pub kid: String,
    /// The opt-in (or renewal) event it belongs to. Left out of listings, which name the
    /// event themselves.
    #[serde(skip)]
    pub event_id: String,
    /// `iat`, RFC 3339.
    pub issued_at: String,
    /// The subscription type, by id and by the name the person saw.
    pub subscription_type: String,
    pub purpose: String,
    /// `given` or `renewed`.
    pub act: &'static str,
    /// When the consent was given, RFC 3339.
    pub consented_at: String,
    /// How: `same_browser`, `button`, `preference_center`, `renewal_link`, `import`, …
    pub method: String,
    /// When it lapses unless renewed; `None`: until withdrawn.
    pub expires_at: Option<String>,
    pub notice_version: String,
    pub notice_language: String,
    pub controller_name: String,
    pub controller_email: String,
    /// Where the person withdraws the consent.
    pub withdraw_url: String,
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl ReceiptSummary {
    /// Reads a stored receipt; `None` when its payload or header is not JSON.
    pub fn of(receipt: &StoredReceipt) -> Option<Self> {
        let header: Value = serde_json::from_str(receipt.header_json()).ok()?;
        let payload: Value = serde_json::from_str(receipt.payload_json()).ok()?;
        let record = "/dpv:hasRecordOfActivity";
        let status = format!("{record}/dpv:hasConsentStatus");
        let renewed = payload
            .pointer(&format!("{status}/@type"))
            .and_then(Value::as_array)
            .is_some_and(|types| types.iter().any(|t| t == "dpv:RenewedConsentGiven"));
        let duration = format!("{status}/dpv:hasDuration");
        let expires_at = (text(&payload, &format!("{duration}/@type")) == "dpv:UntilTimeDuration")
            .then(|| text(&payload, &format!("{duration}/rdf:value/@value")));
        let issued_at = payload
            .get("iat")
            .and_then(Value::as_i64)
            .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let purpose = format!("{record}/dpv:hasProcess/dpv:hasPurpose");
        let notice = format!("{record}/dpv:hasNotice");
        let entity = format!("{record}/dpv:hasEntity");
        Some(Self {
            receipt_id: text(&payload, "/jti"),
            kid: text(&header, "/kid"),
            event_id: text(&payload, "/event_id"),
            issued_at,
            subscription_type: text(&payload, &format!("{purpose}/dct:identifier")),
            purpose: text(&payload, &format!("{purpose}/dct:title")),
            act: if renewed { "renewed" } else { "given" },
            consented_at: text(&payload, &format!("{status}/dpv:isIndicatedAtTime/@value")),
            method: text(&payload, &format!("{status}/dpv:hasIndicationMethod")),
            expires_at,
            notice_version: text(&payload, &format!("{notice}/schema:version")),
            notice_language: text(&payload, &format!("{notice}/dct:language")),
            controller_name: text(&payload, &format!("{entity}/dpv:hasName")),
            controller_email: text(
                &payload,
                &format!("{entity}/schema:contactPoint/schema:email"),
            ),
            withdraw_url: text(
                &payload,
                &format!("{record}/dpv:hasConsentControl/dpv:isExercisedAt/@id"),
            ),
        })
    }
}
