//! What a transition asks to be written. Transitions return a [`Planned`] value; the
//! service turns a [`Plan`] into one atomic store write (see [`super::ContactChange`]),
//! adding the secondary parts (member index, webhook notices) that follow from it.

use super::contact::{Contact, HeldSignup};
use super::email::EmailAddress;
use super::event::Event;
use super::funnel::FunnelStep;
use super::outbox_job::OutboxJob;
use super::tombstone::Tombstone;

/// A notice that the events alone cannot tell: the previous address of a rectified
/// contact is no longer stored anywhere, so the move says it once, here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    Rectified {
        previous: EmailAddress,
    },
    /// A signup was held instead of mailed; no event records it, since nothing about
    /// the person's subscriptions changed.
    Quarantined(Box<HeldSignup>),
}

/// A write: the contact after the transition (`None` deletes it), the events that prove
/// it, the jobs it queues, and the value the caller is answered with.
#[derive(Debug)]
pub struct Plan<T> {
    pub(crate) after: Option<Contact>,
    /// History carried over from another contact (a rectification): written before
    /// `events`, announced to nobody, since it was announced when it happened.
    pub(crate) carried: Vec<Event>,
    pub(crate) events: Vec<Event>,
    pub(crate) jobs: Vec<OutboxJob>,
    pub(crate) tombstone: Option<Tombstone>,
    pub(crate) clear_tombstone: bool,
    pub(crate) announcement: Option<Announcement>,
    /// The confirmation funnel's stages this change reaches (see [`super::funnel`]).
    pub(crate) funnel: Vec<FunnelStep>,
    pub(crate) value: T,
}

impl<T> Plan<T> {
    pub fn keep(after: Contact, events: Vec<Event>, value: T) -> Self {
        Self::writing(Some(after), events, value)
    }

    pub fn delete(value: T) -> Self {
        Self::writing(None, Vec::new(), value)
    }

    fn writing(after: Option<Contact>, events: Vec<Event>, value: T) -> Self {
        Self {
            after,
            carried: Vec::new(),
            events,
            jobs: Vec::new(),
            tombstone: None,
            clear_tombstone: false,
            announcement: None,
            funnel: Vec::new(),
            value,
        }
    }

    #[must_use]
    pub fn with_jobs(mut self, jobs: impl IntoIterator<Item = OutboxJob>) -> Self {
        self.jobs.extend(jobs);
        self
    }

    #[must_use]
    pub fn with_funnel(mut self, steps: impl IntoIterator<Item = FunnelStep>) -> Self {
        self.funnel.extend(steps);
        self
    }

    #[must_use]
    pub fn with_tombstone(mut self, tombstone: Tombstone) -> Self {
        self.tombstone = Some(tombstone);
        self
    }

    #[must_use]
    pub fn announcing(mut self, announcement: Announcement) -> Self {
        self.announcement = Some(announcement);
        self
    }

    /// The person is back by their own act or with evidence of new consent: an erasure's
    /// tombstone no longer stands against them.
    #[must_use]
    pub fn clearing_tombstone(mut self) -> Self {
        self.clear_tombstone = true;
        self
    }

    pub fn value(&self) -> &T {
        &self.value
    }

    pub fn jobs(&self) -> &[OutboxJob] {
        &self.jobs
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// History carried over from another contact, written before [`Self::events`].
    pub fn carried(&self) -> &[Event] {
        &self.carried
    }

    pub fn after(&self) -> Option<&Contact> {
        self.after.as_ref()
    }

    pub fn tombstone(&self) -> Option<&Tombstone> {
        self.tombstone.as_ref()
    }

    pub fn funnel(&self) -> &[FunnelStep] {
        &self.funnel
    }
}

/// The result of a transition: something to write, or an answer with nothing to write.
// One per transition, never kept: boxing the plan would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Planned<T> {
    Write(Plan<T>),
    Nothing(T),
}

impl<T> Planned<T> {
    /// The answer, whether or not something is written.
    pub fn value(&self) -> &T {
        match self {
            Planned::Write(plan) => &plan.value,
            Planned::Nothing(value) => value,
        }
    }

    /// The same plan answering `f(value)`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Planned<U> {
        match self {
            Planned::Nothing(value) => Planned::Nothing(f(value)),
            Planned::Write(plan) => Planned::Write(Plan {
                after: plan.after,
                carried: plan.carried,
                events: plan.events,
                jobs: plan.jobs,
                tombstone: plan.tombstone,
                clear_tombstone: plan.clear_tombstone,
                announcement: plan.announcement,
                funnel: plan.funnel,
                value: f(plan.value),
            }),
        }
    }

    /// The plan, for tests and callers that must look at what would be written.
    pub fn plan(&self) -> Option<&Plan<T>> {
        match self {
            Planned::Write(plan) => Some(plan),
            Planned::Nothing(_) => None,
        }
    }

    /// Whether the plan queues a mail that someone else's request causes, which the
    /// per-address cap must allow first.
    pub fn mails_others_requested(&self) -> bool {
        self.plan()
            .is_some_and(|plan| plan.jobs.iter().any(OutboxJob::is_requested_by_others))
    }
}
