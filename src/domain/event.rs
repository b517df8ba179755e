//! Provenance events: append-only records of every change, chained by SHA-256 per contact.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::contact::BounceType;
use super::receipt::StoredReceipt;
use super::status::{LawfulBasis, Status};
use super::subscription_type::{NoticeRef, SubscriptionTypeId};

/// `prev_hash` of a contact's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where a change came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    SignupForm,
    SignupApi,
    ConfirmLink,
    OneClick,
    UnsubscribePage,
    PreferenceCenter,
    AdminApi,
    Import,
    Expiry,
    Erasure,
    Rectification,
    Restriction,
    /// A bounce (from a provider, a DSN or our own SMTP send) set or counted toward the
    /// unreachable mark.
    Bounce,
    /// The person reported our mail as spam.
    Complaint,
    /// The button on the page of a consent renewal link.
    RenewalLink,
}

/// What an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    StatusChanged,
    Restricted,
    RestrictionLifted,
    Rectified,
    /// Personal data was exported to the person (Art. 15/20).
    Exported,
    /// The person asked not to be sent confirmation requests again.
    SignupBlocked,
    /// The person (through a preferences link) or an admin allowed them again.
    SignupBlockLifted,
    /// Bounces made the address unreachable; the event's `bounce_type` says which.
    MarkedUnreachable,
    /// A confirmed signup or an admin cleared the unreachable mark.
    UnreachableCleared,
    /// A spam complaint; recorded before the status changes it causes.
    Complained,
    /// The person renewed a consent that was to lapse; the status stays `opted_in`.
    ConsentRenewed,
    /// A consent lapsed unrenewed: a status change to `not_subscribed`, with source
    /// `expiry`.
    ConsentLapsed,
}

/// How a person confirmed a signup: the auto-submitted page of the browser that signed
/// up, the confirmation page's button, or the code from the mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmMethod {
    SameBrowser,
    Button,
    Code,
}

impl ConfirmMethod {
    pub const ALL: [ConfirmMethod; 3] = [
        ConfirmMethod::SameBrowser,
        ConfirmMethod::Button,
        ConfirmMethod::Code,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmMethod::SameBrowser => "same_browser",
            ConfirmMethod::Button => "button",
            ConfirmMethod::Code => "code",
        }
    }
}

/// How a confirmation was made and how long after its mail: recorded in the opt-in
/// event it caused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfirmedHow {
    pub method: ConfirmMethod,
    pub seconds_since_sent: u64,
}

/// Who asked for a change, from where. Filled from the request; IP and user agent are
/// left empty when `privacy.record_ip` is off.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// How a signup reached us: kept with the pending confirmation and copied into the
/// consent event, so the proof shows both the signup and the click.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignupEvidence {
    pub at: DateTime<Utc>,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
}

impl SignupEvidence {
    /// Evidence of a request with no form behind it (an API call, a page button).
    pub fn from_request(source: Source, meta: &RequestMeta, now: DateTime<Utc>) -> Self {
        Self {
            at: now,
            source,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            form_id: None,
            page_url: None,
        }
    }
}

/// Everything about a change except its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventDraft {
    pub kind: EventKind,
    pub subscription_type: Option<SubscriptionTypeId>,
    pub from: Option<Status>,
    pub to: Option<Status>,
    pub source: Source,
    pub lawful_basis: Option<LawfulBasis>,
    pub explanation: Option<String>,
    pub consent_notice: Option<NoticeRef>,
    pub consent_evidence: Option<String>,
    pub signup: Option<SignupEvidence>,
    pub bounce_type: Option<BounceType>,
    pub confirmed: Option<ConfirmedHow>,
    /// When consent was given, where an import or a manual change says it was not now.
    pub consented_at: Option<DateTime<Utc>>,
    pub meta: RequestMeta,
}

impl EventDraft {
    pub fn new(kind: EventKind, source: Source, meta: &RequestMeta) -> Self {
        Self {
            kind,
            subscription_type: None,
            from: None,
            to: None,
            source,
            lawful_basis: None,
            explanation: None,
            consent_notice: None,
            consent_evidence: None,
            signup: None,
            bounce_type: None,
            confirmed: None,
            consented_at: None,
            meta: meta.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub id: Uuid,
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub subscription_type: Option<SubscriptionTypeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Status>,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lawful_basis: Option<LawfulBasis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_notice: Option<NoticeRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_evidence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signup: Option<SignupEvidence>,
    /// Only on `marked_unreachable`. Absent fields are not serialized, so the hash of
    /// every event written before this field existed stays the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_type: Option<BounceType>,
    /// Only on an opt-in by a confirmation: how it was confirmed, and how many seconds
    /// after its mail was sent. Absent elsewhere, like `bounce_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_method: Option<ConfirmMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_since_sent: Option<u64>,
    /// When consent was given, where it was not at the event's time (an import's or a
    /// manual change's `consented_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented_at: Option<DateTime<Utc>>,
    /// The hex SHA-256 of the consent receipt issued for this opt-in or renewal, so that
    /// the chain covers the receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_sha256: Option<String>,
    #[serde(flatten)]
    pub meta: RequestMeta,
    pub prev_hash: String,
    /// The receipt itself, kept with its event. Not part of the event's hash: the
    /// receipt names the event and its `prev_hash`, so it is made after them, and
    /// `receipt_sha256`, which is hashed, binds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<StoredReceipt>,
}

impl Event {
    pub fn from_draft(draft: EventDraft, seq: u64, at: DateTime<Utc>, prev_hash: String) -> Self {
        Self {
            id: Uuid::now_v7(),
            seq,
            at,
            kind: draft.kind,
            subscription_type: draft.subscription_type,
            from: draft.from,
            to: draft.to,
            source: draft.source,
            lawful_basis: draft.lawful_basis,
            explanation: draft.explanation,
            consent_notice: draft.consent_notice,
            consent_evidence: draft.consent_evidence,
            signup: draft.signup,
            bounce_type: draft.bounce_type,
            confirm_method: draft.confirmed.map(|how| how.method),
            seconds_since_sent: draft.confirmed.map(|how| how.seconds_since_sent),
            consented_at: draft.consented_at,
            receipt_sha256: None,
            meta: draft.meta,
            prev_hash,
            receipt: None,
        }
    }

    /// SHA-256 of the event's canonical JSON, its receipt left out: the link the next
    /// event (or the contact's chain head) points at.
    pub fn hash(&self) -> String {
        let canonical = match self.receipt {
            None => serde_json::to_vec(self),
            Some(_) => serde_json::to_vec(&self.without_receipt()),
        }
        .expect("events always serialize");
        hex::encode(Sha256::digest(canonical))
    }

    /// The event as its hash sees it, for answers that show the receipt apart.
    #[must_use]
    pub fn without_receipt(&self) -> Self {
        Self {
            receipt: None,
            ..self.clone()
        }
    }

    /// Whether this event records consent that gets a receipt: an opt-in on the basis
    /// of consent to a notice, or the renewal of one.
    pub fn records_consent(&self) -> bool {
        let consent = self.lawful_basis == Some(LawfulBasis::Consent)
            && self.subscription_type.is_some()
            && self.consent_notice.is_some();
        let opt_in = match self.kind {
            EventKind::StatusChanged => self.to == Some(Status::OptedIn),
            EventKind::ConsentRenewed => true,
            _ => false,
        };
        consent && opt_in
    }

    /// A receipt kept with the event that is not the one its hash names, or a hash
    /// whose receipt is gone.
    fn receipt_mismatch(&self) -> bool {
        match (&self.receipt, &self.receipt_sha256) {
            (Some(receipt), Some(sha256)) => receipt.sha256() != *sha256,
            (Some(_), None) | (None, Some(_)) => true,
            (None, None) => false,
        }
    }
}

/// The end of a contact's chain, stored with the contact so that an altered or removed
/// last event is detected too.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChainHead {
    pub events: u64,
    pub hash: String,
}

impl Default for ChainHead {
    fn default() -> Self {
        Self {
            events: 0,
            hash: GENESIS_HASH.to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChainCheck {
    pub chain_valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken_event: Option<Uuid>,
}

/// Checks that each event is the one its successor (or the head) recorded.
///
/// The event reported is the earliest whose stored content no longer matches its link:
/// the one that was altered, or the one after a gap where events were removed.
pub fn verify_chain(events: &[Event], head: &ChainHead) -> ChainCheck {
    let broken = |event: &Event| ChainCheck {
        chain_valid: false,
        first_broken_event: Some(event.id),
    };
    let mut expected_prev = GENESIS_HASH.to_string();
    for (index, event) in events.iter().enumerate() {
        if event.seq != index as u64 + 1 {
            return broken(event);
        }
        if event.prev_hash != expected_prev {
            // The previous event's content changed, or this event's own link was edited.
            return broken(index.checked_sub(1).map_or(event, |i| &events[i]));
        }
        if event.receipt_mismatch() {
            return broken(event);
        }
        expected_prev = event.hash();
    }
    match events.last() {
        Some(last) if last.hash() != head.hash || head.events != events.len() as u64 => {
            broken(last)
        }
        None if head.events != 0 => ChainCheck {
            chain_valid: false,
            first_broken_event: None,
        },
        _ => ChainCheck {
            chain_valid: true,
            first_broken_event: None,
        },
    }
}
