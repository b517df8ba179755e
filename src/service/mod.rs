//! The operations of the service: each reads a contact, plans a transition with pure
//! domain code, and has the store write the result atomically (retrying on a concurrent
//! change). Routes call these and hold no business rules themselves.

mod admin;
mod confirm;
mod console;
mod eligibility;
mod expiry;
mod feedback;
mod link_access;
mod manage;
mod manual;
mod members;
mod notices;
mod preferences;
mod retention;
mod rights;
mod signup;
mod unsubscribe;
mod webhook_endpoints;
mod work_room;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, SemaphorePermit};

use self::work_room::WorkRoom;

pub use confirm::Confirmed;
pub use console::{MAX_SIGN_INS_PER_WINDOW, SIGN_IN_WINDOW_SECS};
pub use eligibility::{Eligibility, EligibilityError};
pub use expiry::PurgeReport;
pub use feedback::{FeedbackError, SnsClient};
pub use link_access::LinkError;
pub use manual::{
    ManualChange, ManualChangeError, ManualOutcome, ManualResult, MAX_EVIDENCE_CHARS,
};
pub use members::{is_subscriber_hash, subscriber_hash, ReindexReport};
pub use preferences::{PreferenceChoice, PreferencesView, TypeView};
pub use rights::{Export, Provenance, RightsError};
pub use signup::{NoticeVersions, SignupError, SignupRequest};
pub use unsubscribe::{ResubscribeRequested, UnsubscribeTarget, Unsubscribed};
pub use webhook_endpoints::EndpointView;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::{Contact, ContactChange, ContactId, EmailAddress, Event, OutboxJob, Tombstone};
use crate::links::Links;
use crate::store::{SharedStore, StoreError};

/// How often a change is retried when another request changed the contact meanwhile.
const MAX_CONFLICT_RETRIES: usize = 8;

/// What a transition wants written. `after: None` deletes the contact.
pub(crate) struct Plan<T> {
    after: Option<Contact>,
    events: Vec<Event>,
    jobs: Vec<OutboxJob>,
    tombstone: Option<Tombstone>,
    clear_tombstone: bool,
    value: T,
}

impl<T> Plan<T> {
    fn keep(after: Contact, events: Vec<Event>, value: T) -> Self {
        Self {
            after: Some(after),
            events,
            jobs: Vec::new(),
            tombstone: None,
            clear_tombstone: false,
            value,
        }
    }

    fn delete(value: T) -> Self {
        Self {
            after: None,
            events: Vec::new(),
            jobs: Vec::new(),
            tombstone: None,
            clear_tombstone: false,
            value,
        }
    }
}

/// The result of planning: write something, or answer without writing.
// One per planning step, never kept: boxing the plan would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Planned<T> {
    Write(Plan<T>),
    Nothing(T),
}

pub struct Subscriptions {
    store: SharedStore,
    config: Arc<Config>,
    clock: SharedClock,
    links: Links,
    outbox_wakeup: Arc<Notify>,
    /// For `POST /v1/feedback/ses` (issue 12).
    sns: SnsClient,
    /// Addresses of batch eligibility checks being worked on.
    read_room: Arc<WorkRoom>,
    /// Items of feedback batches being written.
    write_room: Arc<WorkRoom>,
}

/// Addresses of batch checks worked on at once: two full batches, one per core of a small
/// server. More would only split the same CPU and store finer and make every batch late.
const BATCH_ADDRESSES_AT_ONCE: usize = 20_000;
/// Feedback items written at once: two full calls of the providers' usual 1,000. A write
/// costs dozens of reads, so the room is smaller.
const FEEDBACK_ITEMS_AT_ONCE: usize = 2_000;

impl Subscriptions {
    pub fn new(
        store: SharedStore,
        config: Arc<Config>,
        clock: SharedClock,
        outbox_wakeup: Arc<Notify>,
    ) -> Self {
        let links = Links::from_config(&config);
        Self {
            store,
            config,
            clock,
            links,
            outbox_wakeup,
            sns: SnsClient::default(),
            read_room: Arc::new(WorkRoom::new(BATCH_ADDRESSES_AT_ONCE)),
            write_room: Arc::new(WorkRoom::new(FEEDBACK_ITEMS_AT_ONCE)),
        }
    }

    /// Waits for room for a batch check of `addresses` (see [`work_room`]); the caller
    /// holds the permit until its answer is built.
    pub async fn batch_room(&self, addresses: usize) -> SemaphorePermit<'_> {
        self.read_room.enter(addresses).await
    }

    /// The SES input's fetcher; tests point it at their own server through its hook.
    pub fn sns(&self) -> &SnsClient {
        &self.sns
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn links(&self) -> &Links {
        &self.links
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Lets the outbox worker know a job is due now.
    fn wake_outbox(&self) {
        self.outbox_wakeup.notify_one();
    }

    pub fn contact_id(&self, email: &EmailAddress) -> ContactId {
        self.config.index.contact_id(email)
    }

    pub async fn contact(&self, email: &EmailAddress) -> Result<Option<Contact>, StoreError> {
        self.store.load_contact(&self.contact_id(email)).await
    }

    /// Reads the contact, plans, writes; re-reads and re-plans when the contact changed
    /// in between, so concurrent requests never overwrite each other.
    ///
    /// The plan is told whether it may queue mails that someone else's request causes
    /// (see [`crate::domain::MailKind::is_requested_by_others`]). It is first asked as if
    /// it may; when its plan holds such a mail, one is taken from the address's rolling
    /// allowance, and when none is left the plan is asked again with `may_mail = false`.
    pub(crate) async fn change_contact<T, E>(
        &self,
        id: &ContactId,
        plan: impl Fn(Option<&Contact>, DateTime<Utc>, bool) -> Result<Planned<T>, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.change_contact_read(id, None, plan).await
    }

    /// [`Self::change_contact`], starting from a contact the caller already read (in a
    /// batched read of many, say). A conflict makes it read again as usual.
    pub(crate) async fn change_contact_read<T, E>(
        &self,
        id: &ContactId,
        mut already_read: Option<Option<Contact>>,
        plan: impl Fn(Option<&Contact>, DateTime<Utc>, bool) -> Result<Planned<T>, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        // Asked of the store at most once per request, and kept across conflict retries.
        let mut may_mail: Option<bool> = None;
        for _ in 0..MAX_CONFLICT_RETRIES {
            let before = match already_read.take() {
                Some(read) => read,
                None => self.store.load_contact(id).await?,
            };
            let now = self.clock.now();
            let mut planned = plan(before.as_ref(), now, may_mail.unwrap_or(true))?;
            if may_mail.is_none() && mails_others_requested(&planned) {
                let granted = self.take_mail_allowance(id, now).await?;
                may_mail = Some(granted);
                if !granted {
                    planned = plan(before.as_ref(), now, false)?;
                }
            }
            let plan = match planned {
                Planned::Nothing(value) => return Ok(value),
                Planned::Write(plan) => plan,
            };
            if before.is_none() && plan.after.is_none() && plan.tombstone.is_none() {
                return Ok(plan.value);
            }
            let mut change = match (before.as_ref(), plan.after) {
                (None, None) => ContactChange::tombstone_only(id.clone()),
                (before, after) => ContactChange::between(
                    before,
                    after,
                    plan.events,
                    plan.jobs,
                    &self.config.catalog,
                ),
            };
            change.member_index = self.member_index_change(before.as_ref(), &change.write);
            self.add_webhook_jobs(&mut change, before.as_ref(), plan.tombstone.as_ref(), now);
            change.set_tombstone = plan.tombstone;
            change.clear_tombstone = plan.clear_tombstone;
            let queues_work = !change.new_jobs.is_empty();
            match self.store.apply(change).await {
                Ok(()) => {
                    if queues_work {
                        self.outbox_wakeup.notify_one();
                    }
                    return Ok(plan.value);
                }
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    async fn take_mail_allowance(
        &self,
        id: &ContactId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let limit = self.config.settings.signup.max_confirmation_mails_per_day;
        self.store
            .take_mail_allowance(id, limit, MAIL_ALLOWANCE_WINDOW_SECS, now)
            .await
    }
}

/// The per-address mail cap counts over a rolling day. Backups keep an allowance until
/// this long after its newest mail.
pub const MAIL_ALLOWANCE_WINDOW_SECS: u64 = 24 * 3600;

fn mails_others_requested<T>(planned: &Planned<T>) -> bool {
    match planned {
        Planned::Write(plan) => plan.jobs.iter().any(OutboxJob::is_requested_by_others),
        Planned::Nothing(_) => false,
    }
}
