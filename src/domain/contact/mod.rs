//! A contact's stored state and the transitions on it. No I/O: a transition takes the
//! contact as it was read, the service's [`Rules`](super::Rules) and what the request
//! asks, and returns the change to record as a [`Planned`](super::Planned) value; the
//! service writes all of it in one atomic step.
//!
//! The fields are private: only the transitions here change a contact. One file per kind
//! of transition:
//! - [`signup`]: a public signup;
//! - [`confirm`]: the click on a confirmation link;
//! - [`unsubscribe`]: one-click and the unsubscribe page, unsubscribe from all;
//! - [`preferences`]: the preference center;
//! - [`manual`]: changes by an admin or an import, and asking someone to confirm;
//! - [`membership`]: a Mailchimp list member's status;
//! - [`rights`]: restriction, export, erasure and rectification;
//! - [`reachability`]: bounces and complaints;
//! - [`expiry`]: confirmations not confirmed in time;
//! - [`reminder`]: the one reminder of a confirmation, and the mails the relay took;
//! - [`consent`]: consent that is renewed, or lapses;
//! - [`receipts`]: the receipts of a plan's consent, signed by the service;
//! - [`quarantine`]: signups the firewall held, released, dropped or expired.

mod confirm;
mod consent;
mod expiry;
mod manual;
mod membership;
mod preferences;
mod quarantine;
mod reachability;
mod receipts;
mod reminder;
mod rights;
mod signup;
mod unsubscribe;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::contact_id::ContactId;
use super::email::EmailAddress;
use super::event::{
    ChainHead, ConfirmedHow, Event, EventDraft, EventKind, RequestMeta, SignupEvidence, Source,
};
use super::funnel::{FunnelStage, FunnelStep};
use super::outbox_job::{MailKind, OutboxJob};
use super::plan::{Plan, Planned};
use super::rules::MailAllowance;
use super::status::{LawfulBasis, Status};
use super::subscription_type::{Catalog, NoticeRef, SubscriptionType, SubscriptionTypeId};

pub use confirm::{CodeAttempt, CodeOutcome, Confirmed, MAX_CODE_TRIES};
pub use consent::{ConsentSwept, Renewal};
pub use expiry::Purged;
pub use manual::{ManualChange, ManualChangeError, ManualOutcome, ManualResult, OptInRefused};
pub use membership::{MemberError, MemberStatus, MemberWrite, MemberWriteMode, Membership};
pub use preferences::{PreferenceChoice, PreferencesRefused};
pub use quarantine::{HeldSignup, InvalidQuarantineId, QuarantineId, QuarantineReason, Release};
pub use reachability::{
    BounceType, FeedbackKind, FeedbackNote, FeedbackPolicy, SeenFeedback, Unreachable,
    MAX_SEEN_FEEDBACK,
};
pub use receipts::ReceiptMail;
pub use reminder::{Reminded, SentMail};
pub use rights::{Erased, MoveTarget, Restriction};
pub use signup::SignupIntent;
pub use unsubscribe::{BlockRequests, UnsubscribeTarget, Unsubscribed};

/// The current status of one subscription type, and how it got there.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subscription {
    pub status: Status,
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lawful_basis: Option<LawfulBasis>,
    pub source: Source,
    /// When the consent this opt-in rests on was given, or last renewed, where that is
    /// not `since` (an import's `consented_at`, a renewal); read it through
    /// [`Subscription::consent_given_at`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented_at: Option<DateTime<Utc>>,
    /// When the person was asked to renew that consent: once per consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_asked_at: Option<DateTime<Utc>>,
}

impl Subscription {
    /// When the consent this subscription rests on was given or last renewed; `None`
    /// unless it is an opt-in on the basis of consent.
    pub fn consent_given_at(&self) -> Option<DateTime<Utc>> {
        let on_consent =
            self.status == Status::OptedIn && self.lawful_basis == Some(LawfulBasis::Consent);
        on_consent.then(|| self.consented_at.unwrap_or(self.since))
    }

    /// When that consent lapses unless renewed, by the type's `consent_valid_days`.
    pub fn consent_ends_at(&self, subscription_type: &SubscriptionType) -> Option<DateTime<Utc>> {
        self.consent_given_at()
            .and_then(|given| subscription_type.consent_expiry(given))
    }
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
    /// The confirmation funnel's source key (see [`crate::domain::funnel`]): set only
    /// when a public signup created this confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funnel: Option<String>,
    /// When its one reminder is due; cleared when the reminder is sent or skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_at: Option<DateTime<Utc>>,
    /// When the mail relay took its confirmation mail, and its reminder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminded_at: Option<DateTime<Utc>>,
    /// Wrong codes entered for it so far; at [`MAX_CODE_TRIES`] its code is dead.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code_tries: u8,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(count: &u8) -> bool {
    *count == 0
}

impl PendingConfirmation {
    /// The funnel step this confirmation reaches with `stage`, when it is counted.
    pub fn funnel_step(&self, stage: FunnelStage) -> Option<FunnelStep> {
        self.funnel
            .as_deref()
            .map(|source| FunnelStep::new(self.signup.at, source, stage))
    }
}

/// A signup that was confirmed, remembered while its link is still valid, so that a
/// second click can say what it confirmed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfirmedSignup {
    pub pending_id: Uuid,
    pub types: Vec<SubscriptionTypeId>,
    pub locale: String,
    pub link_expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Contact {
    id: ContactId,
    email: EmailAddress,
    locale: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    subscriptions: BTreeMap<SubscriptionTypeId, Subscription>,
    #[serde(default)]
    pending: Vec<PendingConfirmation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    restricted_since: Option<DateTime<Utc>>,
    #[serde(default)]
    head: ChainHead,
    /// Since when the person has asked not to be sent confirmation requests: public
    /// signups then store nothing and mail nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signup_blocked_since: Option<DateTime<Utc>>,
    /// Bumped by every write; the store refuses a write based on an older version.
    #[serde(default)]
    version: u64,
    /// Set by bounces: while set, no type is eligible (see [`reachability`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unreachable: Option<Unreachable>,
    /// When recent soft bounces arrived, toward `feedback.soft_bounce_limit`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    soft_bounces: Vec<DateTime<Utc>>,
    /// Provider events already applied, kept here so that the check is part of the same
    /// atomic write as the change and nothing is kept for an unknown address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    feedback_seen: Vec<SeenFeedback>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    confirmed: Vec<ConfirmedSignup>,
    /// Set while a rectification moves this contact to its new address. The contact is
    /// then frozen: whoever reads it finishes the move before changing anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    moving_to: Option<MoveTarget>,
    /// The ids this contact had before rectifications. Their links still reach it, and an
    /// erasure removes what points here from them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    forwarded_from: Vec<ContactId>,
    /// A signup the firewall held instead of mailing (see [`quarantine`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    held: Option<HeldSignup>,
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
    /// When to remind the person if it is still pending (see [`super::Rules`]).
    pub remind_after: Option<Duration>,
    /// The funnel's source key, for a public signup.
    pub funnel: Option<String>,
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
    /// For an opt-in by a confirmation: how, and how long after its mail.
    pub confirmed: Option<ConfirmedHow>,
    /// When the consent was given, where not now (an import's `consented_at`).
    pub consented_at: Option<DateTime<Utc>>,
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
            confirmed: None,
            consented_at: None,
        }
    }

    #[must_use]
    pub fn with_basis(mut self, basis: LawfulBasis) -> Self {
        self.lawful_basis = Some(basis);
        self
    }

    /// An opt-in on the basis of consent to the notice shown.
    pub fn consent(source: Source, notice: NoticeRef) -> Self {
        let mut change = Self::new(Status::OptedIn, source).with_basis(LawfulBasis::Consent);
        change.consent_notice = Some(notice);
        change
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
            confirmed: Vec::new(),
            moving_to: None,
            forwarded_from: Vec::new(),
            held: None,
        }
    }

    pub fn id(&self) -> &ContactId {
        &self.id
    }

    pub fn email(&self) -> &EmailAddress {
        &self.email
    }

    /// The language the person answered a mail in; pages and mails use it.
    pub fn locale(&self) -> &str {
        &self.locale
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    pub fn subscriptions(&self) -> &BTreeMap<SubscriptionTypeId, Subscription> {
        &self.subscriptions
    }

    pub fn subscription(&self, subscription_type: &SubscriptionTypeId) -> Option<&Subscription> {
        self.subscriptions.get(subscription_type)
    }

    pub fn status(&self, subscription_type: &SubscriptionTypeId) -> Status {
        self.subscriptions
            .get(subscription_type)
            .map_or(Status::NotSubscribed, |s| s.status)
    }

    pub fn pending(&self) -> &[PendingConfirmation] {
        &self.pending
    }

    pub fn pending_confirmation(&self, pending_id: Uuid) -> Option<&PendingConfirmation> {
        self.pending.iter().find(|p| p.id == pending_id)
    }

    /// A confirmation that was already used, while its link is still valid.
    pub fn confirmed_signup(&self, pending_id: Uuid) -> Option<&ConfirmedSignup> {
        self.confirmed.iter().find(|c| c.pending_id == pending_id)
    }

    pub fn restricted_since(&self) -> Option<DateTime<Utc>> {
        self.restricted_since
    }

    pub fn is_restricted(&self) -> bool {
        self.restricted_since.is_some()
    }

    pub fn head(&self) -> &ChainHead {
        &self.head
    }

    pub fn signup_blocked_since(&self) -> Option<DateTime<Utc>> {
        self.signup_blocked_since
    }

    pub fn is_signup_blocked(&self) -> bool {
        self.signup_blocked_since.is_some()
    }

    /// The version the store holds; it rises with every write.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The contact as the store writes it at `version`.
    #[must_use]
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    pub fn unreachable(&self) -> Option<&Unreachable> {
        self.unreachable.as_ref()
    }

    /// Where a rectification in progress moves this contact.
    pub fn moving_to(&self) -> Option<&MoveTarget> {
        self.moving_to.as_ref()
    }

    /// The ids this contact had before rectifications.
    pub fn forwarded_from(&self) -> &[ContactId] {
        &self.forwarded_from
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

    /// True when nothing but the address and its pending signups is held: such a contact
    /// is removed entirely when its last pending confirmation goes.
    pub fn holds_only_pending(&self) -> bool {
        self.subscriptions.is_empty()
            && self.head.events == 0
            && self.restricted_since.is_none()
            && self.signup_blocked_since.is_none()
    }

    /// True when nothing is left on the contact but its address (no status, history,
    /// pending or held signup): it is then removed entirely.
    pub fn holds_nothing_but_the_address(&self) -> bool {
        self.holds_only_pending() && self.pending.is_empty() && self.held.is_none()
    }

    /// When this contact's timed work is next due, per timer; the stores index contacts
    /// by it (see [`crate::domain::timer`]).
    pub fn due_times(&self, catalog: &Catalog) -> crate::domain::DueTimes {
        let mut due = crate::domain::DueTimes::new();
        if let Some(at) = self.pending.iter().filter_map(|p| p.remind_at).min() {
            due.insert(crate::domain::Timer::Reminder, at);
        }
        if let Some(at) = self.next_consent_work(catalog) {
            due.insert(crate::domain::Timer::Consent, at);
        }
        if let Some(held) = &self.held {
            due.insert(crate::domain::Timer::Quarantine, held.expires_at);
        }
        due
    }

    /// The funnel steps of the pending confirmations of `before` that this contact no
    /// longer holds: each one was withdrawn as `stage`.
    pub(crate) fn funnel_removed(
        &self,
        before: &[PendingConfirmation],
        stage: FunnelStage,
    ) -> Vec<FunnelStep> {
        before
            .iter()
            .filter(|p| self.pending_confirmation(p.id).is_none())
            .filter_map(|p| p.funnel_step(stage))
            .collect()
    }

    /// Whether any type of the given set is opted in: the "marketing contact" test.
    pub fn is_opted_in_to_any(&self, mut matches: impl FnMut(&SubscriptionTypeId) -> bool) -> bool {
        self.subscriptions
            .iter()
            .any(|(t, s)| s.status == Status::OptedIn && matches(t))
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

    /// Sets a status and records why: the one primitive every status transition uses.
    /// Returns `None` when the status is already `to`.
    pub fn change_status(
        &mut self,
        subscription_type: &SubscriptionTypeId,
        change: StatusChange,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        self.record_status(
            EventKind::StatusChanged,
            subscription_type,
            change,
            meta,
            now,
        )
    }

    /// [`Self::change_status`], recorded as an event of `kind`: a status change that has
    /// a name of its own (a lapse).
    fn record_status(
        &mut self,
        kind: EventKind,
        subscription_type: &SubscriptionTypeId,
        change: StatusChange,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        let from = self.status(subscription_type);
        if from == change.to {
            return None;
        }
        let on_consent =
            change.to == Status::OptedIn && change.lawful_basis == Some(LawfulBasis::Consent);
        self.subscriptions.insert(
            subscription_type.clone(),
            Subscription {
                status: change.to,
                since: now,
                lawful_basis: change.lawful_basis,
                source: change.source,
                // Absent when it is `since`: a contact's bytes are what the store holds
                // for every contact, and most consent is given when it is recorded.
                consented_at: change.consented_at.filter(|_| on_consent),
                renewal_asked_at: None,
            },
        );
        let mut draft = EventDraft::new(kind, change.source, meta);
        draft.subscription_type = Some(subscription_type.clone());
        draft.from = Some(from);
        draft.to = Some(change.to);
        draft.lawful_basis = change.lawful_basis;
        draft.explanation = change.explanation;
        draft.consent_notice = change.consent_notice;
        draft.consent_evidence = change.consent_evidence;
        draft.signup = change.signup;
        draft.confirmed = change.confirmed;
        draft.consented_at = change.consented_at;
        Some(self.record(draft, now))
    }

    /// Starts a double opt-in: stores a pending confirmation and returns the confirmation
    /// mail to queue in the same write. No status changes until the link is clicked.
    pub fn request_confirmation(
        &mut self,
        request: ConfirmationRequest,
        now: DateTime<Utc>,
    ) -> OutboxJob {
        let expires_at = crate::clock::later(now, request.ttl);
        let pending = PendingConfirmation {
            id: Uuid::now_v7(),
            types: request.types,
            notices: request.notices,
            locale: request.locale,
            expires_at,
            signup: request.signup,
            funnel: request.funnel,
            // A reminder that would come after the link expired is none at all.
            remind_at: request
                .remind_after
                .map(|after| crate::clock::later(now, after))
                .filter(|at| *at < expires_at),
            mailed_at: None,
            reminded_at: None,
            code_tries: 0,
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

    /// Plans a "here is your preferences link" mail, asked for on a manage, unsubscribe
    /// or aged preferences page; only when the per-address cap allows.
    pub fn send_preferences_link(self, mail: MailAllowance, now: DateTime<Utc>) -> Planned<()> {
        if mail == MailAllowance::Spent {
            return Planned::Nothing(());
        }
        let job = self.preferences_link_mail(now);
        Planned::Write(Plan::keep(self, Vec::new(), ()).with_jobs([job]))
    }

    /// Records the person's wish not to be asked again. `None` when already blocked.
    pub fn block_signups(
        &mut self,
        source: Source,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        if self.signup_blocked_since.is_some() {
            return None;
        }
        self.signup_blocked_since = Some(now);
        Some(self.record(EventDraft::new(EventKind::SignupBlocked, source, meta), now))
    }

    /// Lifts the block as a change of its own (an admin's explicit request). Answers the
    /// contact afterwards.
    pub fn allow_signups(
        mut self,
        source: Source,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Planned<Contact> {
        match self.lift_signup_block(source, meta, now) {
            Some(event) => Planned::Write(Plan::keep(self.clone(), vec![event], self)),
            None => Planned::Nothing(self),
        }
    }

    /// Allows signups again: only the person (a preferences link) or an admin's explicit
    /// `DELETE …/signup-block` does this. `None` when they were not blocked.
    pub fn lift_signup_block(
        &mut self,
        source: Source,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        self.signup_blocked_since.take()?;
        Some(self.record(
            EventDraft::new(EventKind::SignupBlockLifted, source, meta),
            now,
        ))
    }
}
