//! Whether mail reaches the address: the unreachable mark that bounces set, the recent
//! soft bounces that count toward it, and complaints. Statuses are facts about consent
//! and a bounce never changes them; a complaint does (it unsubscribes every marketing
//! type), because pressing "spam" is the person saying no.
//!
//! Pure, like the rest of the domain: each transition changes the contact in memory and
//! returns the events that prove it.

use chrono::{DateTime, Duration, Utc};

use super::{Contact, StatusChange};
use crate::domain::plan::{Plan, Planned};
use crate::domain::rules::Rules;
use crate::domain::{
    Event, EventDraft, EventKind, RequestMeta, Source, Status, SubscriptionTypeId,
};

/// Why an address became unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceType {
    /// A provider or DSN said the mailbox does not exist.
    HardBounce,
    /// `feedback.soft_bounce_limit` soft bounces within `feedback.soft_bounce_days`.
    SoftBounce,
    /// Our own SMTP send got a permanent `5.1.x` answer.
    SmtpRejection,
}

/// What a feedback item means for the contact, whatever input it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedbackKind {
    /// The mailbox does not exist: the contact becomes unreachable at once.
    HardBounce,
    /// A temporary failure: counted toward the soft bounce limit.
    SoftBounce,
    /// The person pressed "spam".
    Complaint,
}

impl FeedbackKind {
    /// The name used in optin's own JSON and in events.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::HardBounce => "hard_bounce",
            FeedbackKind::SoftBounce => "soft_bounce",
            FeedbackKind::Complaint => "complaint",
        }
    }

    /// The kind for one of the names [`FeedbackKind::as_str`] gives.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hard_bounce" => Some(FeedbackKind::HardBounce),
            "soft_bounce" => Some(FeedbackKind::SoftBounce),
            "complaint" => Some(FeedbackKind::Complaint),
            _ => None,
        }
    }
}

/// The mark a bounce sets: while it is there, no type is eligible.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unreachable {
    pub since: DateTime<Utc>,
    pub reason: BounceType,
    /// The provider's or mail server's words, cleaned of addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A provider event already applied to this contact, so that a redelivery counts once.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeenFeedback {
    pub id: String,
    pub at: DateTime<Utc>,
}

/// How many provider event ids a contact keeps. Providers redeliver within minutes to
/// hours; more distinct events than this within the window mean the address is long
/// unreachable or unsubscribed anyway, so a forgotten id can do no harm.
pub const MAX_SEEN_FEEDBACK: usize = 32;

/// The settings the transitions need, from `[feedback]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedbackPolicy {
    /// Soft bounces within `window` that make the contact unreachable.
    pub soft_bounce_limit: u32,
    /// How long a soft bounce, and a seen provider event id, is remembered.
    pub window: Duration,
}

/// One piece of feedback about this contact, as the transition needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedbackNote {
    pub kind: FeedbackKind,
    /// Cleaned of addresses by the parser.
    pub reason: Option<String>,
    /// The provider's id of the event (namespaced by input); `None`: not deduplicated.
    pub event_id: Option<String>,
}

impl Contact {
    /// Applies the feedback items about this contact in order, as one change.
    pub fn take_feedback_notes(
        mut self,
        notes: &[FeedbackNote],
        rules: &Rules,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Planned<()> {
        let mut changed = false;
        let mut events = Vec::new();
        for note in notes {
            if let Some(new) =
                self.take_feedback(note, rules.feedback(), rules.marketing_types(), meta, now)
            {
                changed = true;
                events.extend(new);
            }
        }
        if changed {
            Planned::Write(Plan::keep(self, events, ()))
        } else {
            Planned::Nothing(())
        }
    }

    /// Our own mail got a permanent `5.1.x` answer: the mailbox does not exist.
    pub fn note_smtp_rejection(
        mut self,
        detail: Option<String>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Planned<()> {
        match self.mark_unreachable(BounceType::SmtpRejection, detail, meta, now) {
            Some(event) => Planned::Write(Plan::keep(self, vec![event], ())),
            None => Planned::Nothing(()),
        }
    }

    /// An admin says the address works. Answers the contact afterwards.
    pub fn clear_unreachable_mark(
        mut self,
        source: Source,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Planned<Contact> {
        match self.clear_unreachable(source, meta, now) {
            Some(event) => Planned::Write(Plan::keep(self.clone(), vec![event], self)),
            None => Planned::Nothing(self),
        }
    }

    pub fn is_unreachable(&self) -> bool {
        self.unreachable.is_some()
    }

    /// Soft bounces still inside the window.
    pub fn recent_soft_bounces(&self, policy: &FeedbackPolicy, now: DateTime<Utc>) -> usize {
        self.soft_bounces
            .iter()
            .filter(|at| **at > crate::clock::earlier(now, policy.window))
            .count()
    }

    /// Applies one feedback item. `None` when it changes nothing: a redelivery of an
    /// event already applied, or a bounce on an address already marked. `Some` with no
    /// events when only the soft bounce count moved.
    pub fn take_feedback(
        &mut self,
        note: &FeedbackNote,
        policy: &FeedbackPolicy,
        marketing_types: &[SubscriptionTypeId],
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Vec<Event>> {
        self.forget_old_feedback(policy, now);
        if let Some(id) = &note.event_id {
            if self.feedback_seen.iter().any(|seen| &seen.id == id) {
                return None;
            }
        }
        let events = match note.kind {
            FeedbackKind::HardBounce => self
                .mark_unreachable(BounceType::HardBounce, note.reason.clone(), meta, now)
                .map(|event| vec![event]),
            FeedbackKind::SoftBounce => self.count_soft_bounce(note, policy, meta, now),
            FeedbackKind::Complaint => Some(self.complain(note, marketing_types, meta, now)),
        }?;
        if let Some(id) = &note.event_id {
            if self.feedback_seen.len() >= MAX_SEEN_FEEDBACK {
                self.feedback_seen.remove(0);
            }
            self.feedback_seen.push(SeenFeedback {
                id: id.clone(),
                at: now,
            });
        }
        Some(events)
    }

    /// Sets the mark, with an event whose source is `bounce`. `None` when already set:
    /// the first reason stands.
    pub fn mark_unreachable(
        &mut self,
        reason: BounceType,
        detail: Option<String>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        if self.is_unreachable() {
            return None;
        }
        self.unreachable = Some(Unreachable {
            since: now,
            reason,
            detail: detail.clone(),
        });
        self.soft_bounces.clear();
        let mut draft = EventDraft::new(EventKind::MarkedUnreachable, Source::Bounce, meta);
        draft.bounce_type = Some(reason);
        draft.explanation = detail;
        Some(self.record(draft, now))
    }

    /// Clears the mark (and the soft bounce count: the mailbox works again). `None` when
    /// there was no mark.
    pub fn clear_unreachable(
        &mut self,
        source: Source,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        self.unreachable.take()?;
        self.soft_bounces.clear();
        Some(self.record(
            EventDraft::new(EventKind::UnreachableCleared, source, meta),
            now,
        ))
    }

    fn count_soft_bounce(
        &mut self,
        note: &FeedbackNote,
        policy: &FeedbackPolicy,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Vec<Event>> {
        if self.is_unreachable() {
            return None;
        }
        self.soft_bounces.push(now);
        if self.recent_soft_bounces(policy, now) < policy.soft_bounce_limit as usize {
            return Some(Vec::new());
        }
        let event = self.mark_unreachable(BounceType::SoftBounce, note.reason.clone(), meta, now);
        Some(event.into_iter().collect())
    }

    /// The `complained` event first, then every marketing type that is not already
    /// unsubscribed becomes `unsubscribed` with source `complaint`.
    fn complain(
        &mut self,
        note: &FeedbackNote,
        marketing_types: &[SubscriptionTypeId],
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Vec<Event> {
        let mut draft = EventDraft::new(EventKind::Complained, Source::Complaint, meta);
        draft.explanation.clone_from(&note.reason);
        let mut events = vec![self.record(draft, now)];
        for type_id in marketing_types {
            let mut change = StatusChange::new(Status::Unsubscribed, Source::Complaint);
            change.explanation.clone_from(&note.reason);
            events.extend(self.change_status(type_id, change, meta, now));
        }
        events
    }

    /// Drops soft bounces and seen event ids older than the window.
    fn forget_old_feedback(&mut self, policy: &FeedbackPolicy, now: DateTime<Utc>) {
        let cutoff = crate::clock::earlier(now, policy.window);
        self.soft_bounces.retain(|at| *at > cutoff);
        self.feedback_seen.retain(|seen| seen.at > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::verify_chain;
    use crate::domain::{ContactId, EmailAddress};

    const POLICY: FeedbackPolicy = FeedbackPolicy {
        soft_bounce_limit: 3,
        window: Duration::days(14),
    };

    fn contact(now: DateTime<Utc>) -> Contact {
        let email = EmailAddress::parse("ann@example.com").unwrap();
        let id = ContactId::parse(&"c1".repeat(16)).unwrap();
        Contact::new(id, email, "en", now)
    }

    fn note(kind: FeedbackKind, id: Option<&str>) -> FeedbackNote {
        FeedbackNote {
            kind,
            reason: Some("550 5.1.1 unknown".into()),
            event_id: id.map(str::to_string),
        }
    }

    fn types(names: &[&str]) -> Vec<SubscriptionTypeId> {
        names
            .iter()
            .map(|n| SubscriptionTypeId::parse(n).unwrap())
            .collect()
    }

    #[test]
    fn a_hard_bounce_marks_once_and_a_redelivery_changes_nothing() {
        let now = Utc::now();
        let mut c = contact(now);
        let meta = RequestMeta::default();
        let events = c
            .take_feedback(
                &note(FeedbackKind::HardBounce, Some("ses:1")),
                &POLICY,
                &[],
                &meta,
                now,
            )
            .expect("a change");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::MarkedUnreachable);
        assert_eq!(events[0].bounce_type, Some(BounceType::HardBounce));
        assert_eq!(events[0].source, Source::Bounce);
        assert!(c.is_unreachable());
        let again = c.take_feedback(
            &note(FeedbackKind::HardBounce, Some("ses:1")),
            &POLICY,
            &[],
            &meta,
            now,
        );
        assert_eq!(again, None);
    }

    #[test]
    fn soft_bounces_mark_at_the_limit_within_the_window_only() {
        let start = Utc::now();
        let mut c = contact(start);
        let meta = RequestMeta::default();
        let soft = |id: &str| note(FeedbackKind::SoftBounce, Some(id));
        assert_eq!(
            c.take_feedback(&soft("a"), &POLICY, &[], &meta, start),
            Some(vec![])
        );
        // The first one falls out of the window before the third arrives.
        let later = start + Duration::days(10);
        assert_eq!(
            c.take_feedback(&soft("b"), &POLICY, &[], &meta, later),
            Some(vec![])
        );
        let much_later = start + Duration::days(15);
        assert_eq!(
            c.take_feedback(&soft("c"), &POLICY, &[], &meta, much_later),
            Some(vec![])
        );
        assert_eq!(c.recent_soft_bounces(&POLICY, much_later), 2);
        assert!(!c.is_unreachable());
        let events = c
            .take_feedback(&soft("d"), &POLICY, &[], &meta, much_later)
            .expect("a change");
        assert_eq!(events[0].bounce_type, Some(BounceType::SoftBounce));
        assert!(c.is_unreachable());
        assert_eq!(c.recent_soft_bounces(&POLICY, much_later), 0);
    }

    #[test]
    fn a_complaint_unsubscribes_marketing_types_after_its_own_event() {
        let now = Utc::now();
        let mut c = contact(now);
        let meta = RequestMeta::default();
        let news = SubscriptionTypeId::parse("news").unwrap();
        c.change_status(
            &news,
            StatusChange::new(Status::OptedIn, Source::AdminApi),
            &meta,
            now,
        );
        let events = c
            .take_feedback(
                &note(FeedbackKind::Complaint, None),
                &POLICY,
                &types(&["news"]),
                &meta,
                now,
            )
            .expect("a change");
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Complained, EventKind::StatusChanged]);
        assert_eq!(c.status(&news), Status::Unsubscribed);
        assert_eq!(c.subscriptions[&news].source, Source::Complaint);
        assert!(!c.is_unreachable());
    }

    #[test]
    fn clearing_the_mark_is_an_event_and_the_chain_verifies() {
        let now = Utc::now();
        let mut c = contact(now);
        let meta = RequestMeta::default();
        let mut events = vec![c
            .mark_unreachable(BounceType::SmtpRejection, None, &meta, now)
            .unwrap()];
        assert_eq!(
            c.mark_unreachable(BounceType::HardBounce, None, &meta, now),
            None
        );
        events.push(c.clear_unreachable(Source::AdminApi, &meta, now).unwrap());
        assert_eq!(c.clear_unreachable(Source::AdminApi, &meta, now), None);
        assert!(verify_chain(&events, &c.head).chain_valid);
    }
}
