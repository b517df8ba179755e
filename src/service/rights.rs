//! The data subject's rights: access and portability (Art. 15, 20), rectification
//! (Art. 16), erasure (Art. 17) and restriction (Art. 18), plus the provenance log.

use chrono::{DateTime, Utc};

use super::{Plan, Planned, Subscriptions};
use crate::domain::event::verify_chain;
use crate::domain::{
    ChainCheck, Contact, ContactChange, ContactId, ContactWrite, EmailAddress, Event, EventDraft,
    EventKind, RequestMeta, Source,
};
use crate::domain::{ErasureReason, Tombstone};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RightsError {
    #[error("nothing is held for this address")]
    NotFound,
    #[error("new_email: the new address already has its own data; erase or merge it first")]
    TargetExists,
    #[error("new_email: the new address is the same as the old one")]
    SameAddress,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The provenance of one contact, and whether its hash chain verifies.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Provenance {
    pub events: Vec<Event>,
    #[serde(flatten)]
    pub chain: ChainCheck,
}

/// Everything held on one person, as one JSON document (Art. 15 and 20).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Export {
    pub exported_at: DateTime<Utc>,
    pub contact: Contact,
    pub events: Vec<Event>,
    pub chain_valid: bool,
}

impl Subscriptions {
    async fn existing(&self, email: &EmailAddress) -> Result<Contact, RightsError> {
        self.contact(email).await?.ok_or(RightsError::NotFound)
    }

    pub async fn provenance(&self, email: &EmailAddress) -> Result<Provenance, RightsError> {
        let contact = self.existing(email).await?;
        let events = self.store.events(&contact.id).await?;
        let chain = verify_chain(&events, &contact.head);
        Ok(Provenance { events, chain })
    }

    pub async fn export(&self, email: &EmailAddress) -> Result<Export, RightsError> {
        let contact = self.existing(email).await?;
        let events = self.store.events(&contact.id).await?;
        let chain_valid = verify_chain(&events, &contact.head).chain_valid;
        Ok(Export {
            exported_at: self.now(),
            contact,
            events,
            chain_valid,
        })
    }

    /// Art. 18: while restricted, nothing is eligible. `restricted = false` lifts it.
    pub async fn set_restriction(
        &self,
        email: &EmailAddress,
        restricted: bool,
        meta: &RequestMeta,
    ) -> Result<Contact, RightsError> {
        let id = self.contact_id(email);
        self.change_contact(&id, |before, now, _| {
            let before = before.ok_or(RightsError::NotFound)?;
            if before.is_restricted() == restricted {
                return Ok(Planned::Nothing(before.clone()));
            }
            let mut contact = before.clone();
            contact.restricted_since = restricted.then_some(now);
            let kind = if restricted {
                EventKind::Restricted
            } else {
                EventKind::RestrictionLifted
            };
            let event = contact.record(EventDraft::new(kind, Source::Restriction, meta), now);
            Ok(Planned::Write(Plan::keep(
                contact.clone(),
                vec![event],
                contact,
            )))
        })
        .await
    }

    /// The person's own export from the preference center; recorded as an event.
    pub async fn export_for_person(
        &self,
        email: &EmailAddress,
        meta: &RequestMeta,
    ) -> Result<Export, RightsError> {
        let id = self.contact_id(email);
        self.change_contact(&id, |before, now, _| {
            let mut contact = before.ok_or(RightsError::NotFound)?.clone();
            let event = contact.record(
                EventDraft::new(EventKind::Exported, Source::PreferenceCenter, meta),
                now,
            );
            Ok::<_, RightsError>(Planned::Write(Plan::keep(contact, vec![event], ())))
        })
        .await?;
        self.export(email).await
    }

    /// Art. 17: every piece of personal data goes; a tombstone keyed by the contact id
    /// stays, so that an import cannot quietly re-add the person.
    pub async fn erase(&self, email: &EmailAddress, meta: &RequestMeta) -> Result<(), RightsError> {
        self.erase_contact(&self.contact_id(email), ErasureReason::Erasure, meta)
            .await
    }

    /// Erases by contact id; `reason` is kept in the tombstone.
    pub async fn erase_contact(
        &self,
        id: &ContactId,
        reason: ErasureReason,
        meta: &RequestMeta,
    ) -> Result<(), RightsError> {
        self.change_contact(id, |before, now, _| {
            before.ok_or(RightsError::NotFound)?;
            let mut plan = Plan::delete(());
            plan.tombstone = Some(Tombstone::new(reason, meta, now));
            Ok(Planned::Write(plan))
        })
        .await
    }

    /// Art. 16: moves the contact and its history to a new address. The history is
    /// copied unchanged (the chain still verifies) and a `rectified` event is added.
    /// Pending confirmations are dropped: their links were sent to the old address.
    pub async fn rectify(
        &self,
        old: &EmailAddress,
        new: &EmailAddress,
        meta: &RequestMeta,
    ) -> Result<(), RightsError> {
        if old == new {
            return Err(RightsError::SameAddress);
        }
        let before = self.existing(old).await?;
        let new_id = self.contact_id(new);
        let history = self.store.events(&before.id).await?;
        if self.store.load_contact(&new_id).await?.is_some() {
            let target_history = self.store.events(&new_id).await?;
            if !is_half_done_move(&history, &target_history) {
                return Err(RightsError::TargetExists);
            }
            // An earlier request wrote the new contact and failed before removing the
            // old one: finish that move instead of refusing it.
            return self.remove_moved_contact(&before.id).await;
        }
        let now = self.now();
        let mut moved = before.clone();
        moved.id = new_id.clone();
        moved.email = new.clone();
        moved.pending.clear();
        moved.version = 0;
        let rectified = moved.record(
            EventDraft::new(EventKind::Rectified, Source::Rectification, meta),
            now,
        );
        // Bounces were about the old mailbox, not the new one. Recorded after the
        // `rectified` event, where a half-done move is still recognized.
        let cleared = moved.clear_unreachable(Source::Rectification, meta, now);
        moved.soft_bounces.clear();
        moved.feedback_seen.clear();
        let mut events = history;
        events.push(rectified.clone());
        events.extend(cleared);
        // Two contacts live in different shards, so the move is two atomic steps: the
        // new one is written first, then the old one removed. A failure in between
        // leaves both, never neither; repeating the request finishes it.
        let mut create = ContactChange::between(
            None,
            Some(moved),
            events,
            Vec::new(),
            &self.config().catalog,
        );
        create.member_index = self.member_index_change(None, &create.write);
        // Removing the old contact removes its jobs: its undelivered webhook notices
        // move to the new one (a notice delivered in between may arrive twice, under
        // two ids). Its mail jobs go, like its pending confirmations.
        let undelivered = self.store.contact_jobs(&before.id).await?;
        create.new_jobs.extend(
            undelivered
                .iter()
                .filter(|job| job.as_webhook().is_some())
                .map(|job| job.moved_to(new_id.clone())),
        );
        if let ContactWrite::Put(written) = &create.write {
            let notices = self.rectification_jobs(written, old, &rectified);
            create.new_jobs.extend(notices);
        }
        let queues_work = !create.new_jobs.is_empty();
        self.store.apply(create).await?;
        if queues_work {
            self.wake_outbox();
        }
        self.remove_moved_contact(&before.id).await
    }

    /// The second step of a rectification: the old contact goes, without a tombstone,
    /// since the person's data lives on under the new address.
    async fn remove_moved_contact(&self, old_id: &ContactId) -> Result<(), RightsError> {
        self.change_contact(old_id, |old, _, _| {
            Ok::<_, RightsError>(if old.is_some() {
                Planned::Write(Plan::delete(()))
            } else {
                Planned::Nothing(())
            })
        })
        .await
    }
}

/// Whether the target holds exactly the old contact's history followed by a
/// `rectified` event: the trace of a move that wrote the new contact but did not get to
/// remove the old one. Anything else at the target is someone else's data.
fn is_half_done_move(old_history: &[Event], target_history: &[Event]) -> bool {
    target_history.len() > old_history.len()
        && target_history[..old_history.len()] == *old_history
        && target_history[old_history.len()].kind == EventKind::Rectified
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event::from_draft(
            EventDraft::new(kind, Source::Rectification, &RequestMeta::default()),
            0,
            Utc::now(),
            String::new(),
        )
    }

    #[test]
    fn only_the_old_history_plus_rectified_counts_as_a_half_done_move() {
        let old = vec![
            event(EventKind::Restricted),
            event(EventKind::RestrictionLifted),
        ];
        let mut moved = old.clone();
        moved.push(event(EventKind::Rectified));
        assert!(is_half_done_move(&old, &moved));

        let mut later = moved.clone();
        later.push(event(EventKind::Restricted));
        assert!(
            is_half_done_move(&old, &later),
            "changes at the new address after the move keep it finishable"
        );

        assert!(!is_half_done_move(&old, &old), "no rectified event");
        let other = vec![event(EventKind::Restricted), event(EventKind::Rectified)];
        assert!(!is_half_done_move(&old, &other), "a different history");
        let mut diverged = old.clone();
        diverged.push(event(EventKind::Restricted));
        assert!(
            !is_half_done_move(&diverged, &moved),
            "the old contact changed after the copy"
        );
    }
}
