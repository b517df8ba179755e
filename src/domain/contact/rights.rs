//! The data subject's rights as transitions: restriction (Art. 18), the record of an
//! export (Art. 15, 20), erasure (Art. 17) and rectification (Art. 16).
//!
//! A rectification moves the contact to the id of its new address. The two ids live in
//! different shards, so the move is three atomic steps: the old contact is marked with
//! where it goes (from then on it is frozen: whoever reads it finishes the move before
//! changing anything), the new contact is written, and the old one is removed. A change
//! that races the move therefore lands before the mark, and is carried over, or after
//! it, and is made on the moved contact: none is lost.

use chrono::{DateTime, Utc};

use super::Contact;
use crate::domain::plan::{Announcement, Plan, Planned};
use crate::domain::{
    ContactId, EmailAddress, ErasureReason, Event, EventDraft, EventKind, RequestMeta, Source,
    Tombstone,
};

/// What an erasure leaves for the service: its tombstone, and the ids that earlier
/// rectifications left forwarding to the erased contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erased {
    pub tombstone: Tombstone,
    pub forwarded_from: Vec<ContactId>,
}

/// Art. 18: restrict processing, or lift the restriction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restriction {
    Restrict,
    Lift,
}

/// Where a rectification moves a contact, and who asked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MoveTarget {
    pub id: ContactId,
    pub email: EmailAddress,
    pub meta: RequestMeta,
}

impl Contact {
    /// While restricted, nothing is eligible. Answers the contact afterwards.
    pub fn set_restriction(
        mut self,
        to: Restriction,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Planned<Contact> {
        let restrict = to == Restriction::Restrict;
        if self.is_restricted() == restrict {
            return Planned::Nothing(self);
        }
        self.restricted_since = restrict.then_some(now);
        let kind = if restrict {
            EventKind::Restricted
        } else {
            EventKind::RestrictionLifted
        };
        let event = self.record(EventDraft::new(kind, Source::Restriction, meta), now);
        Planned::Write(Plan::keep(self.clone(), vec![event], self))
    }

    /// The person downloaded their own data: recorded, so the log shows who saw it.
    pub fn record_export(mut self, meta: &RequestMeta, now: DateTime<Utc>) -> Planned<()> {
        let event = self.record(
            EventDraft::new(EventKind::Exported, Source::PreferenceCenter, meta),
            now,
        );
        Planned::Write(Plan::keep(self, vec![event], ()))
    }

    /// Art. 17: everything goes; a tombstone keyed by the contact id stays, so that an
    /// import cannot quietly re-add the person. Answers what the erasure leaves to do at
    /// the person's earlier ids.
    pub fn erase(
        &self,
        reason: ErasureReason,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Planned<Erased> {
        let tombstone = Tombstone::new(reason, meta, now);
        let erased = Erased {
            tombstone: tombstone.clone(),
            forwarded_from: self.forwarded_from.clone(),
        };
        Planned::Write(Plan::delete(erased).with_tombstone(tombstone))
    }

    /// The first step of a rectification: the mark that freezes this contact until it
    /// has moved. A contact already moving keeps its first target.
    pub fn start_move(mut self, target: MoveTarget) -> Planned<MoveTarget> {
        if let Some(moving) = &self.moving_to {
            return Planned::Nothing(moving.clone());
        }
        self.moving_to = Some(target.clone());
        Planned::Write(Plan::keep(self, Vec::new(), target))
    }

    /// The second step: the contact under its new id and address, with its whole
    /// history (`history`, as stored) and a `rectified` event. Pending confirmations are
    /// dropped (their links were mailed to the old address), and bounces were about the
    /// old mailbox, not the new one. `None` when the contact is not moving.
    pub fn moved(&self, history: Vec<Event>, now: DateTime<Utc>) -> Option<Planned<()>> {
        let target = self.moving_to.clone()?;
        let mut moved = self.clone();
        moved.id = target.id.clone();
        moved.email = target.email.clone();
        moved.version = 0;
        moved.moving_to = None;
        moved.pending.clear();
        moved.confirmed.clear();
        // Held for the old address: nobody asked for the new one.
        moved.held = None;
        moved.forwarded_from.push(self.id.clone());
        let mut events = vec![moved.record(
            EventDraft::new(EventKind::Rectified, Source::Rectification, &target.meta),
            now,
        )];
        events.extend(moved.clear_unreachable(Source::Rectification, &target.meta, now));
        moved.soft_bounces.clear();
        moved.feedback_seen.clear();
        let mut plan = Plan::keep(moved, events, ());
        plan.carried = history;
        plan.announcement = Some(Announcement::Rectified {
            previous: self.email.clone(),
        });
        Some(Planned::Write(plan))
    }

    /// Whether this contact is the one a move from `old` wrote.
    pub fn was_moved_from(&self, old: &ContactId) -> bool {
        self.forwarded_from.contains(old)
    }

    /// The last step: the old contact goes, leaving only where it went, since the
    /// person's data lives on under the new address and links mailed before must still
    /// reach it. `None` when the contact is not moving.
    pub fn finish_move(&self, now: DateTime<Utc>) -> Option<Planned<()>> {
        let target = self.moving_to.as_ref()?;
        Some(Planned::Write(Plan::delete(()).with_tombstone(
            Tombstone::moved(target.id.clone(), &target.meta, now),
        )))
    }

    /// The record a move left at this earlier id, once the person it pointed to is
    /// erased: it becomes the record of that same erasure, since the earlier address
    /// was the person's too (a restore of an older backup then erases it again). A
    /// contact living here now signed up after the move on its own; it stays, and the
    /// record goes.
    pub fn forward_erased(contact: Option<&Contact>, erasure: &Tombstone) -> Planned<()> {
        Planned::Write(match contact {
            Some(contact) => Plan::keep(contact.clone(), Vec::new(), ()).clearing_tombstone(),
            None => Plan::delete(()).with_tombstone(erasure.clone()),
        })
    }

    /// A move that cannot be made (someone else's data appeared at the new address in the
    /// meantime): the mark goes and the contact is as before.
    pub fn abandon_move(mut self) -> Planned<()> {
        if self.moving_to.take().is_none() {
            return Planned::Nothing(());
        }
        Planned::Write(Plan::keep(self, Vec::new(), ()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{contact, contact_id, notice, type_id, META};
    use super::super::{BounceType, StatusChange};
    use super::*;
    use crate::domain::event::verify_chain;
    use crate::domain::Status;

    #[test]
    fn restricting_twice_records_once_and_lifting_records_again() {
        let now = Utc::now();
        let Planned::Write(plan) = contact(now).set_restriction(Restriction::Restrict, &META, now)
        else {
            panic!("a write")
        };
        assert_eq!(plan.events[0].kind, EventKind::Restricted);
        let restricted = plan.value;
        assert!(matches!(
            restricted
                .clone()
                .set_restriction(Restriction::Restrict, &META, now),
            Planned::Nothing(_)
        ));
        let Planned::Write(plan) = restricted.set_restriction(Restriction::Lift, &META, now) else {
            panic!("a write")
        };
        assert_eq!(plan.events[0].kind, EventKind::RestrictionLifted);
    }

    #[test]
    fn a_move_carries_the_whole_history_and_the_chain_still_verifies() {
        let now = Utc::now();
        let mut old = contact(now);
        let mut history = Vec::new();
        history.extend(old.change_status(
            &type_id("news"),
            StatusChange::consent(Source::ConfirmLink, notice("news")),
            &META,
            now,
        ));
        history.extend(old.mark_unreachable(BounceType::HardBounce, None, &META, now));
        let target = MoveTarget {
            id: contact_id("d2"),
            email: EmailAddress::parse("ann@new.example").unwrap(),
            meta: META.clone(),
        };
        let Planned::Write(marked) = old.start_move(target.clone()) else {
            panic!("a write")
        };
        let marked = marked.after.unwrap();
        assert_eq!(marked.moving_to(), Some(&target));
        let other = MoveTarget {
            id: contact_id("e3"),
            ..target.clone()
        };
        assert!(
            matches!(marked.clone().start_move(other), Planned::Nothing(t) if t == target),
            "the first target stands"
        );

        let Some(Planned::Write(plan)) = marked.moved(history.clone(), now) else {
            panic!("a write")
        };
        let moved = plan.after.as_ref().unwrap();
        assert_eq!(moved.id(), &target.id);
        assert_eq!(moved.email(), &target.email);
        assert_eq!(moved.status(&type_id("news")), Status::OptedIn);
        assert!(moved.moving_to().is_none());
        assert!(
            !moved.is_unreachable(),
            "bounces were about the old mailbox"
        );
        assert!(moved.was_moved_from(marked.id()));
        assert_eq!(plan.carried, history);
        let kinds: Vec<_> = plan.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Rectified, EventKind::UnreachableCleared]);
        let all: Vec<_> = plan.carried.iter().chain(&plan.events).cloned().collect();
        assert!(verify_chain(&all, moved.head()).chain_valid);
        assert!(
            matches!(plan.announcement, Some(Announcement::Rectified { ref previous }) if previous == marked.email())
        );
    }

    #[test]
    fn an_abandoned_move_leaves_the_contact_as_before() {
        let now = Utc::now();
        let before = contact(now);
        let target = MoveTarget {
            id: contact_id("d2"),
            email: EmailAddress::parse("b@example.com").unwrap(),
            meta: META.clone(),
        };
        let Planned::Write(marked) = before.clone().start_move(target) else {
            panic!("a write")
        };
        let Planned::Write(plan) = marked.after.unwrap().abandon_move() else {
            panic!("a write")
        };
        assert_eq!(plan.after.unwrap(), before);
    }
}
