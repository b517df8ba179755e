//! A contact's stored state and the transitions on it. No I/O: each transition changes the
//! contact in memory and appends the event that proves it; the store then writes the
//! whole change in one atomic step.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::contact_id::ContactId;
use super::email::EmailAddress;
use super::event::{ChainHead, Event, EventDraft, EventKind, SignupEvidence, Source};
use super::outbox_job::{MailKind, OutboxJob};
use super::reachability::{SeenFeedback, Unreachable};
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
    /// Since when the person has asked not to be sent confirmation requests: public
    /// signups then store nothing and mail nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signup_blocked_since: Option<DateTime<Utc>>,
    /// Bumped by every write; the store refuses a write based on an older version.
    #[serde(default)]
    pub version: u64,
    /// Set by bounces: while set, no type is eligible (see [`super::reachability`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<Unreachable>,
    /// When recent soft bounces arrived, toward `feedback.soft_bounce_limit`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub soft_bounces: Vec<DateTime<Utc>>,
    /// Provider events already applied, kept here so that the check is part of the same
    /// atomic write as the change and nothing is kept for an unknown address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feedback_seen: Vec<SeenFeedback>,
}

/// What a double opt-in asks the person to confirm, and the evidence of the request.
#[derive(Clone, Debug)]
pub struct ConfirmationRequest {
    pub types: Vec<SubscriptionTypeId>,
    /// The notice shown for each type, in the order of `types`.
    pub notices: Vec<NoticeRef>,
    /// The language of the mail, and of the pages its links open.
    pub locale: String,
    pub ttl: Duration,
    pub signup: SignupEvidence,
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
            signup_blocked_since: None,
            version: 0,
            unreachable: None,
            soft_bounces: Vec::new(),
            feedback_seen: Vec::new(),
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

    /// A contact with statuses but no opt-in has been inactive since its latest change.
    /// The stores index contacts by this; retention reads it through
    /// [`Self::is_inactive_before`].
    pub fn inactive_since(&self) -> Option<DateTime<Utc>> {
        if self
            .subscriptions
            .values()
            .any(|s| s.status == Status::OptedIn)
        {
            return None;
        }
        self.subscriptions.values().map(|s| s.since).max()
    }

    /// Retention may remove the contact: inactive since before `cutoff`, no signup in
    /// progress and no restriction (a restriction is itself a request to hold the data).
    pub fn is_inactive_before(&self, cutoff: DateTime<Utc>) -> bool {
        self.pending.is_empty()
            && !self.is_restricted()
            && self.inactive_since().is_some_and(|at| at < cutoff)
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

    /// Starts a double opt-in: stores a pending confirmation and returns the confirmation
    /// mail to queue in the same write. No status changes until the link is clicked.
    pub fn request_confirmation(
        &mut self,
        request: ConfirmationRequest,
        now: DateTime<Utc>,
    ) -> OutboxJob {
        let pending = PendingConfirmation {
            id: Uuid::now_v7(),
            types: request.types,
            notices: request.notices,
            locale: request.locale,
            expires_at: crate::clock::later(now, request.ttl),
            signup: request.signup,
        };
        let mail = MailKind::Confirmation {
            pending_id: pending.id,
            types: pending.types.clone(),
            expires_at: pending.expires_at,
        };
        let job = OutboxJob::mail(
            self.id.clone(),
            self.email.clone(),
            &pending.locale,
            mail,
            now,
        );
        self.pending.push(pending);
        job
    }

    /// A "here is your preferences link" mail, in the contact's language.
    pub fn preferences_link_mail(&self, now: DateTime<Utc>) -> OutboxJob {
        OutboxJob::mail(
            self.id.clone(),
            self.email.clone(),
            &self.locale,
            MailKind::PreferencesLink,
            now,
        )
    }

    /// Records the person's wish not to be asked again. `None` when already blocked.
    pub fn block_signups(
        &mut self,
        source: Source,
        meta: &super::event::RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        if self.signup_blocked_since.is_some() {
            return None;
        }
        self.signup_blocked_since = Some(now);
        Some(self.record(EventDraft::new(EventKind::SignupBlocked, source, meta), now))
    }

    /// Allows signups again. `None` when they were not blocked.
    pub fn lift_signup_block(
        &mut self,
        source: Source,
        meta: &super::event::RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        self.signup_blocked_since.take()?;
        Some(self.record(
            EventDraft::new(EventKind::SignupBlockLifted, source, meta),
            now,
        ))
    }

    /// True when nothing but the address and its pending signups is held: such a contact
    /// is removed entirely when its last pending confirmation expires.
    pub fn holds_only_pending(&self) -> bool {
        self.subscriptions.is_empty()
            && self.head.events == 0
            && self.restricted_since.is_none()
            && self.signup_blocked_since.is_none()
    }

    /// Whether any type of the given purpose set is opted in: the "marketing contact" test.
    pub fn is_opted_in_to_any(&self, mut matches: impl FnMut(&SubscriptionTypeId) -> bool) -> bool {
        self.subscriptions
            .iter()
            .any(|(t, s)| s.status == Status::OptedIn && matches(t))
    }
}
