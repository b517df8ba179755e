//! The one commit path every write takes, rectification included: read the contact,
//! plan with a domain transition, and write the plan as one atomic, version-checked
//! store change, with what follows from it (the member index, the webhook notices, the
//! tombstone, the outbox's wake-up). A write based on a version that is no longer stored
//! is refused by the store and planned again from a fresh read, so concurrent requests
//! never overwrite each other. Just before a plan is written, its consent gets its
//! receipts (see [`super::receipts`]).
//!
//! A contact that a rectification is moving is frozen: whoever reads it finishes the
//! move first (see [`crate::domain::contact`], rights), then goes on as [`Reach`] says.

use chrono::{DateTime, Utc};

use super::Subscriptions;
use crate::domain::{
    Contact, ContactChange, ContactId, MailAllowance, Plan, Planned, Tombstone,
    MAIL_ALLOWANCE_WINDOW_SECS,
};
use crate::store::StoreError;

/// How often a change is planned again when another request changed the contact meanwhile.
const MAX_ATTEMPTS: usize = 8;

/// How a request names its contact, which decides what a moved contact means to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// By address, on the authenticated API: a contact that a rectification moved away
    /// is refused with [`Moved`], so a change made at the same moment fails rather than
    /// landing on an address that is no longer the person's.
    Address,
    /// By address, from a public signup (or by a held signup's id): the address is
    /// whoever owns it now; a contact that moved away is simply no longer there.
    Signup,
    /// By a link's contact id: a link mailed before a rectification reaches the
    /// contact where it moved.
    Link,
}

/// The contact was moved to another address by a rectification while (or before) the
/// request ran; the request is refused and changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("this address was rectified to another; repeat the request with the new address")]
pub struct Moved;

/// The contact whose mailbox a plan would mail: as the plan leaves it, else as read.
fn allowance_owner<'a, T>(
    before: Option<&'a Contact>,
    planned: &'a Planned<T>,
) -> Option<&'a Contact> {
    planned.plan().and_then(Plan::after).or(before)
}

impl From<Moved> for StoreError {
    // For the service's own housekeeping (expiry, retention, feedback), which reaches
    // contacts by signup or link and so is never refused as moved; were it ever, its
    // next run would find the contact where it moved.
    fn from(_: Moved) -> Self {
        StoreError::Conflict
    }
}

/// What a plan is given: the contact as read (with the tombstone at its id when it is
/// absent), the time, and what the per-address mail cap allows.
pub(crate) struct Found<'a> {
    pub contact: Option<&'a Contact>,
    /// Only read when the contact is absent: an erasure's record, never a move's.
    pub erased: Option<&'a Tombstone>,
    pub now: DateTime<Utc>,
    pub mail: MailAllowance,
}

impl Subscriptions {
    /// Reads, plans, writes; see the module documentation.
    ///
    /// The plan is first asked as if the per-address mail cap allowed a mail that someone
    /// else's request causes; when its plan holds one, one is taken from the address's
    /// rolling allowance, and when none is left it is asked again with the cap spent.
    pub(crate) async fn commit<T, E>(
        &self,
        id: &ContactId,
        reach: Reach,
        plan: impl Fn(&Found) -> Result<Planned<T>, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError> + From<Moved>,
    {
        self.commit_read(id, reach, None, plan).await
    }

    /// [`Self::commit`], starting from a contact the caller already read (in a batched
    /// read of many, say): `Some(None)` is a read that found nothing. A conflict makes it
    /// read again as usual.
    #[expect(
        clippy::option_option,
        reason = "a read that found nothing is still a read, unlike no read"
    )]
    pub(crate) async fn commit_read<T, E>(
        &self,
        id: &ContactId,
        reach: Reach,
        mut already_read: Option<Option<Contact>>,
        plan: impl Fn(&Found) -> Result<Planned<T>, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError> + From<Moved>,
    {
        let mut id = id.clone();
        // Asked of the store at most once per request, and kept across attempts.
        let mut allowance: Option<MailAllowance> = None;
        for _ in 0..MAX_ATTEMPTS {
            let before = match already_read.take() {
                Some(read) => read,
                None => self.store.load_contact(&id).await?,
            };
            if let Some(moving) = before.as_ref().filter(|c| c.moving_to().is_some()) {
                match (self.finish_move(moving).await?, reach) {
                    // Abandoned, or finished by a signup's read: read the address again.
                    (None, _) | (Some(_), Reach::Signup) => {}
                    (Some(_), Reach::Address) => return Err(Moved.into()),
                    (Some(to), Reach::Link) => id = to,
                }
                continue;
            }
            let tombstone = match (&before, reach) {
                (None, Reach::Address | Reach::Link) => self.store.tombstone(&id).await?,
                _ => None,
            };
            if let Some(to) = tombstone.as_ref().and_then(|t| t.moved_to.clone()) {
                if reach == Reach::Link {
                    id = to;
                    continue;
                }
                return Err(Moved.into());
            }
            let now = self.clock.now();
            let found = |mail| Found {
                contact: before.as_ref(),
                erased: tombstone.as_ref(),
                now,
                mail,
            };
            let mut planned = plan(&found(allowance.unwrap_or(MailAllowance::Available)))?;
            if allowance.is_none() {
                let mailbox = allowance_owner(before.as_ref(), &planned);
                if planned.mails_others_requested() {
                    let taken = self.take_mail_allowance(mailbox, now).await?;
                    allowance = Some(taken);
                    if taken == MailAllowance::Spent {
                        planned = plan(&found(taken))?;
                    }
                } else if reach == Reach::Signup {
                    // The same store work as taking one, so that a public signup takes the
                    // same time whatever the address's state.
                    self.look_at_mail_allowance(mailbox, now).await?;
                    allowance = Some(MailAllowance::Available);
                }
            }
            let plan = match (planned, before.as_ref(), reach) {
                // A public signup that changes nothing still writes the contact as it
                // is, so that it costs what a signup that changes something costs: the
                // time of the answer must not tell who is subscribed.
                (Planned::Nothing(value), Some(unchanged), Reach::Signup) => {
                    Plan::keep(unchanged.clone(), Vec::new(), value)
                }
                (Planned::Nothing(value), _, _) => return Ok(value),
                (Planned::Write(plan), _, _) => plan,
            };
            match self.write(&id, before.as_ref(), plan, now).await {
                Ok(value) => return Ok(value),
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// The contact a link reaches, for a page that only shows it: where a rectification
    /// moved it (a contact still moving is shown as it was frozen).
    pub(crate) async fn read_link(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        let mut id = id.clone();
        for _ in 0..MAX_ATTEMPTS {
            if let Some(contact) = self.store.load_contact(&id).await? {
                return Ok(Some(contact));
            }
            match self.store.tombstone(&id).await?.and_then(|t| t.moved_to) {
                Some(to) => id = to,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Writes one plan against the contact as read: the store refuses it with
    /// [`StoreError::Conflict`] when the stored version moved on.
    pub(crate) async fn write<T>(
        &self,
        id: &ContactId,
        before: Option<&Contact>,
        plan: Plan<T>,
        now: DateTime<Utc>,
    ) -> Result<T, StoreError> {
        let plan = self.sign_receipts(id, plan);
        let Plan {
            after,
            carried,
            events,
            jobs,
            tombstone,
            clear_tombstone,
            announcement,
            funnel,
            value,
        } = plan;
        if before.is_none() && after.is_none() && tombstone.is_none() && !clear_tombstone {
            return Ok(value);
        }
        let carried_count = carried.len();
        let mut written_events = carried;
        written_events.extend(events);
        let mut change = ContactChange::between(
            id.clone(),
            before,
            after,
            written_events,
            jobs,
            self.rules.catalog(),
        )
        .with_funnel(&funnel);
        change.member_index = self.member_index_change(before, &change.write);
        let notices = self.webhook_notices(
            before,
            &change.write,
            &change.new_events[carried_count..],
            tombstone.as_ref(),
            announcement,
        );
        let notice_jobs = self.webhook_jobs(id, notices, now);
        change.new_jobs.extend(notice_jobs);
        change.set_tombstone = tombstone;
        change.clear_tombstone = clear_tombstone;
        let queues_work = !change.new_jobs.is_empty();
        self.store.apply(change).await?;
        if queues_work {
            self.wake_outbox();
        }
        Ok(value)
    }

    /// Finishes the move of a contact that a rectification marked: writes it at its new
    /// id, then removes it here, leaving where it went. Safe to run by several requests
    /// at once. Answers the new id, or `None` when the move had to be abandoned because
    /// someone else's data appeared at the new address meanwhile.
    pub(crate) async fn finish_move(
        &self,
        moving: &Contact,
    ) -> Result<Option<ContactId>, StoreError> {
        let Some(target) = moving.moving_to().map(|t| t.id.clone()) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let history = self.store.events(moving.id()).await?;
        // Undelivered webhook notices move with the contact; its mail goes, like its
        // pending confirmations (a notice delivered in between may arrive twice).
        let carried_jobs: Vec<_> = self
            .store
            .contact_jobs(moving.id())
            .await?
            .iter()
            .filter(|job| job.as_webhook().is_some())
            .map(|job| job.moved_to(target.clone()))
            .collect();
        if let Some(Planned::Write(plan)) = moving.moved(history, now) {
            match self
                .write(&target, None, plan.with_jobs(carried_jobs), now)
                .await
            {
                Ok(()) => {}
                Err(StoreError::Conflict) => {
                    let there = self.store.load_contact(&target).await?;
                    if !there.is_some_and(|c| c.was_moved_from(moving.id())) {
                        self.abandon_move(moving, now).await?;
                        return Ok(None);
                    }
                }
                Err(other) => return Err(other),
            }
        }
        if let Some(Planned::Write(plan)) = moving.finish_move(now) {
            match self.write(moving.id(), Some(moving), plan, now).await {
                // The old address went from the store: from its files too, in time.
                Ok(()) => self.note_erasure(),
                // A conflict: another request finished it first.
                Err(StoreError::Conflict) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(Some(target))
    }

    async fn abandon_move(&self, moving: &Contact, now: DateTime<Utc>) -> Result<(), StoreError> {
        tracing::warn!(contact = %moving.id(), "a rectification found other data at the new address; abandoned");
        if let Planned::Write(plan) = moving.clone().abandon_move() {
            match self.write(moving.id(), Some(moving), plan, now).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// Takes one mail from the allowance of the mailbox the contact's address reaches:
    /// the address without its `+tag`, so that tags share one cap.
    async fn take_mail_allowance(
        &self,
        mailbox: Option<&Contact>,
        now: DateTime<Utc>,
    ) -> Result<MailAllowance, StoreError> {
        let Some(key) = mailbox.map(|c| self.allowance_key(c)) else {
            return Ok(MailAllowance::Spent);
        };
        let limit = self.config.settings.signup.max_confirmation_mails_per_day;
        let granted = self
            .store
            .take_mail_allowance(&key, limit, MAIL_ALLOWANCE_WINDOW_SECS, now)
            .await?;
        Ok(if granted {
            MailAllowance::Available
        } else {
            MailAllowance::Spent
        })
    }

    /// Reads and writes the allowance as taking one would, taking nothing.
    async fn look_at_mail_allowance(
        &self,
        mailbox: Option<&Contact>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(key) = mailbox.map(|c| self.allowance_key(c)) {
            self.store
                .take_mail_allowance(&key, 0, MAIL_ALLOWANCE_WINDOW_SECS, now)
                .await?;
        }
        Ok(())
    }

    fn allowance_key(&self, contact: &Contact) -> ContactId {
        self.config.index.contact_id(&contact.email().without_tag())
    }
}
