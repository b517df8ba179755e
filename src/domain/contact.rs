//! A contact's stored state and the transitions on it. No I/O: each transition changes the
//! contact in memory and appends the event that proves it; the store then writes the
//! whole change in one atomic step.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::contact_id::ContactId;
use super::email::EmailAddress;
use super::event::{ChainHead, Event, EventDraft, EventKind, SignupEvidence, Source};
use super::status::{LawfulBasis, Status};
use super::subscription_type::{NoticeRef, SubscriptionTypeId};

/// The current status of one subscription type, and how it got there.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subscription {
    pub status: Status,
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lawful_basis: Option<LawfulBasis>,
    pub source: Source,
}

/// A signup waiting for its link to be clicked. Until then no status changes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingConfirmation {
    pub id: Uuid,
    pub types: Vec<SubscriptionTypeId>,
    pub notices: Vec<NoticeRef>,
    pub locale: String,
    pub expires_at: DateTime<Utc>,
    pub signup: SignupEvidence,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub email: EmailAddress,
    pub locale: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub subscriptions: BTreeMap<SubscriptionTypeId, Subscription>,
    #[serde(default)]
    pub pending: Vec<PendingConfirmation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted_since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub head: ChainHead,
    /// When confirmation mails were queued, for the per-address limit. Pruned as it goes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirmation_mails: Vec<DateTime<Utc>>,
    /// Bumped by every write; the store refuses a write based on an older version.
    #[serde(default)]
    pub version: u64,
}

/// A status change to make, with the evidence that justifies it.
#[derive(Clone, Debug)]
pub struct StatusChange {
    pub to: Status,
    pub source: Source,
    pub lawful_basis: Option<LawfulBasis>,
    pub explanation: Option<String>,
    pub consent_notice: Option<NoticeRef>,
    pub consent_evidence: Option<String>,
    pub signup: Option<SignupEvidence>,
}

impl StatusChange {
    pub fn new(to: Status, source: Source) -> Self {
        Self {
            to,
            source,
            lawful_basis: None,
            explanation: None,
            consent_notice: None,
            consent_evidence: None,
            signup: None,
        }
    }

    pub fn with_basis(mut self, basis: LawfulBasis) -> Self {
        self.lawful_basis = Some(basis);
        self
    }
}

impl Contact {
    pub fn new(id: ContactId, email: EmailAddress, locale: &str, now: DateTime<Utc>) -> Self {
        Self {
            id,
            email,
            locale: locale.to_string(),
            created_at: now,
            subscriptions: BTreeMap::new(),
            pending: Vec::new(),
            restricted_since: None,
            head: ChainHead::default(),
            confirmation_mails: Vec::new(),
            version: 0,
        }
    }

    pub fn status(&self, subscription_type: &SubscriptionTypeId) -> Status {
        self.subscriptions
            .get(subscription_type)
            .map_or(Status::NotSubscribed, |s| s.status)
    }

    pub fn is_restricted(&self) -> bool {
        self.restricted_since.is_some()
    }

    /// May this contact be mailed this type? Only when opted in and not restricted.
    pub fn is_eligible(&self, subscription_type: &SubscriptionTypeId) -> bool {
        !self.is_restricted() && self.status(subscription_type) == Status::OptedIn
    }

    pub fn pending(&self, pending_id: Uuid) -> Option<&PendingConfirmation> {
        self.pending.iter().find(|p| p.id == pending_id)
    }

    /// Appends an event to the chain and moves the head.
    pub fn record(&mut self, draft: EventDraft, now: DateTime<Utc>) -> Event {
        let event = Event::from_draft(draft, self.head.events + 1, now, self.head.hash.clone());
        self.head = ChainHead {
            events: event.seq,
            hash: event.hash(),
        };
        event
    }

    /// Sets a status and records why. Returns `None` when the status is already `to`.
    pub fn change_status(
        &mut self,
        subscription_type: &SubscriptionTypeId,
        change: StatusChange,
        meta: &super::event::RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        let from = self.status(subscription_type);
        if from == change.to {
            return None;
        }
        self.subscriptions.insert(
            subscription_type.clone(),
            Subscription {
                status: change.to,
                since: now,
                lawful_basis: change.lawful_basis,
                source: change.source,
            },
        );
        let mut draft = EventDraft::new(EventKind::StatusChanged, change.source, meta);
        draft.subscription_type = Some(subscription_type.clone());
        draft.from = Some(from);
        draft.to = Some(change.to);
        draft.lawful_basis = change.lawful_basis;
        draft.explanation = change.explanation;
        draft.consent_notice = change.consent_notice;
        draft.consent_evidence = change.consent_evidence;
        draft.signup = change.signup;
        Some(self.record(draft, now))
    }

    /// Confirmation mails queued within the last `window`.
    pub fn confirmation_mails_within(&self, window: Duration, now: DateTime<Utc>) -> usize {
        self.confirmation_mails
            .iter()
            .filter(|at| **at > now - window)
            .count()
    }

    /// Drops mail timestamps older than `window` so the list stays small.
    pub fn prune_confirmation_mails(&mut self, window: Duration, now: DateTime<Utc>) {
        self.confirmation_mails.retain(|at| *at > now - window);
    }

    /// True when nothing but the address and its pending signups is held: such a contact
    /// is removed entirely when its last pending confirmation expires.
    pub fn holds_only_pending(&self) -> bool {
        self.subscriptions.is_empty() && self.head.events == 0 && self.restricted_since.is_none()
    }

    /// Whether any type of the given purpose set is opted in: the "marketing contact" test.
    pub fn is_opted_in_to_any(&self, mut matches: impl FnMut(&SubscriptionTypeId) -> bool) -> bool {
        self.subscriptions
            .iter()
            .any(|(t, s)| s.status == Status::OptedIn && matches(t))
    }
}
