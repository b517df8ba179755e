//! Storage: one trait, two backends (Redis for production, redb embedded by default).
//!
//! Stores hold no business rules. Every state change arrives as a [`ContactChange`]
//! computed by the domain, and the store writes all of it (contact, events, outbox jobs,
//! expiry index, counters, tombstone) in one atomic step, or none of it.

pub mod backup;
mod codec;
pub mod compact;
pub mod embedded;
pub mod redis;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use self::backup::{
    BackupView, Consistency, ContactRead, ContactRecord, JobRecord, JobState, MailAllowance,
    RecordPage, RestoreBatch, RestoreMark, StoreKind, UnreadableContact,
};
use crate::domain::{Contact, ContactChange, ContactId, Event, OutboxJob, Timer, Tombstone};

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or timed out. Maps to 503.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Someone else changed the contact since it was read; the caller re-reads and retries.
    #[error("the contact changed concurrently")]
    Conflict,
    /// Stored data could not be decoded: a bug or tampering, never the caller's fault.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutboxDepth {
    /// Jobs waiting to be sent or being sent.
    pub queued: u64,
    pub dead: u64,
}

/// What the store keeps about one webhook endpoint; the rest is configuration. Each
/// field is written on its own, so that two instances recording attempts at once never
/// undo each other's 410 (which sets `disabled_at`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EndpointState {
    /// Set by a 410 answer; cleared by `POST /v1/webhooks/{id}/enable`.
    pub disabled_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt; `None` when it got no answer.
    pub last_status: Option<u16>,
}

/// The result of one delivery attempt, as the endpoint's state records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointAttempt {
    Delivered {
        status: u16,
    },
    Failed {
        status: Option<u16>,
    },
    /// A 410: the endpoint is disabled until an admin enables it.
    Gone,
}

impl EndpointState {
    /// The state after `attempt` at `at`: the one rule both stores follow.
    #[must_use]
    pub fn after(mut self, attempt: EndpointAttempt, at: DateTime<Utc>) -> Self {
        match attempt {
            EndpointAttempt::Delivered { status } => {
                self.last_success_at = Some(at);
                self.last_status = Some(status);
            }
            EndpointAttempt::Failed { status } => {
                self.last_failure_at = Some(at);
                self.last_status = status;
            }
            EndpointAttempt::Gone => {
                self.last_failure_at = Some(at);
                self.last_status = Some(410);
                self.disabled_at = Some(at);
            }
        }
        self
    }
}

/// The fixed window of a rate-limit count that a moment fell in: the one of `secs`
/// seconds that holds `at` (see [`Store::count_hit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HitWindow {
    pub secs: u64,
    pub at: DateTime<Utc>,
}

pub type SharedStore = Arc<dyn Store>;

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the store is reachable; used by `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn load_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError>;

    /// Many contacts at once, in the order asked: one pipelined round trip per chunk on
    /// Redis, one read transaction on the embedded store.
    async fn load_contacts(&self, ids: &[ContactId]) -> Result<Vec<Option<Contact>>, StoreError>;

    /// Writes the whole change atomically. Fails with [`StoreError::Conflict`], writing
    /// nothing, when the stored contact's version is not `change.expected_version`.
    async fn apply(&self, change: ContactChange) -> Result<(), StoreError>;

    /// The contact's events, oldest first.
    async fn events(&self, id: &ContactId) -> Result<Vec<Event>, StoreError>;

    async fn tombstone(&self, id: &ContactId) -> Result<Option<Tombstone>, StoreError>;

    /// The statistics counters, summed over all shards.
    async fn counters(&self) -> Result<BTreeMap<String, i64>, StoreError>;

    /// The confirmation funnel's counters (`ContactChange::funnel`), summed over all
    /// shards.
    async fn funnel_counters(&self) -> Result<BTreeMap<String, i64>, StoreError>;

    /// Pending confirmations that expired at or before `now`, at most `limit` of them.
    async fn expired_pending(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(ContactId, Uuid)>, StoreError>;

    /// Contacts with no opt-in whose latest status change is older than `before`
    /// (the retention index, kept from `ContactChange::inactive_since`), at most `limit`.
    async fn inactive_contacts(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError>;

    /// Makes what erasures freed unreadable in the store's own files: the embedded store
    /// compacts its file, so that freed pages are overwritten or cut off; Redis is asked
    /// to rewrite its append-only file and its snapshot from what it holds now. Runs at
    /// most once per `privacy.erasure_purge_minutes` (see the service's purge).
    async fn purge_erased(&self) -> Result<(), StoreError>;

    /// Contacts whose `timer` is due at or before `until`, earliest first, at most `limit`
    /// (the due index, kept from `ContactChange::timers`).
    async fn due_contacts(
        &self,
        timer: Timer,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError>;

    /// Counts one hit for `key` in the current fixed window of `window_secs` and returns
    /// the count so far. Used for rate limits: on Redis the count is shared by every
    /// instance; the embedded store counts in memory.
    async fn count_hit(
        &self,
        key: &str,
        window_secs: u64,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Gives back one hit counted for `key` in `window`, when that window is still
    /// counted and its count is above zero (a signup that was confirmed no longer counts
    /// as unconfirmed). A window already gone is no error.
    async fn give_back_hit(&self, key: &str, window: HitWindow) -> Result<(), StoreError>;

    /// Takes one mail from the contact's allowance of mails that someone else's request
    /// caused: at most `limit` in any rolling `window_secs`. Returns false, taking nothing,
    /// when none is left. Kept apart from the contact record (a small entry that expires
    /// with the window), so that cancelling, expiry or erasure does not reset it.
    async fn take_mail_allowance(
        &self,
        id: &ContactId,
        limit: u32,
        window_secs: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Spends the single-use `key` (a solved signup challenge): true the first time, false
    /// while it stays spent. The record lasts until `expires_at`, then vanishes, on Redis by
    /// Redis's own expiry (shared by every instance), on the embedded store as seen at
    /// `now`, with expired records swept as new ones are written.
    async fn spend_once(
        &self,
        key: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Takes one job that is due at `now` and hides it from other workers until
    /// `lease_until`. A worker that dies leaves the job to be taken again after that.
    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<OutboxJob>, StoreError>;

    /// Removes a sent job. A job already removed (say, by an erasure) is not an error.
    async fn complete_job(&self, job: &OutboxJob) -> Result<(), StoreError>;

    /// Stores the job as given (attempts, last error) and makes it due again at `due`.
    async fn retry_job_later(&self, job: &OutboxJob, due: DateTime<Utc>) -> Result<(), StoreError>;

    /// Moves the job to the dead letters, where only an admin retry revives it.
    async fn dead_letter_job(&self, job: &OutboxJob) -> Result<(), StoreError>;

    /// The first `limit` dead letters, oldest job first: by the job's creation time to
    /// the millisecond, then by job id. The same order on every backend, and never by
    /// when a job died, so that no store needs a clock to dead-letter a job.
    async fn dead_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>, StoreError>;

    /// Puts a dead job back in the queue, due at `now`, with its attempts reset.
    /// Returns false when there is no dead job with that id.
    async fn revive_dead_job(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError>;

    async fn outbox_depth(&self) -> Result<OutboxDepth, StoreError>;

    /// The contact's jobs, queued, leased or dead, in no particular order.
    async fn contact_jobs(&self, id: &ContactId) -> Result<Vec<OutboxJob>, StoreError>;

    /// Queues a job that belongs to no contact change (a `webhook.test` delivery), due now.
    async fn queue_job(&self, job: &OutboxJob) -> Result<(), StoreError>;

    /// Webhook jobs per endpoint id: `queued` (waiting, leased or held by a disabled
    /// endpoint) and `dead`. Reads every job: its cost grows with the backlog, which is
    /// why only the admin listing asks for it.
    async fn webhook_backlog(&self) -> Result<BTreeMap<String, OutboxDepth>, StoreError>;

    /// The stored state of one endpoint; the default when nothing was recorded yet.
    async fn endpoint_state(&self, endpoint: &str) -> Result<EndpointState, StoreError>;

    /// Records one attempt's result (see [`EndpointState::after`]).
    async fn record_endpoint_attempt(
        &self,
        endpoint: &str,
        attempt: EndpointAttempt,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Clears `disabled_at`.
    async fn enable_endpoint(&self, endpoint: &str) -> Result<(), StoreError>;

    /// The contact that a member index key points at (see `ContactChange::member_index`).
    async fn find_member(&self, key: &str) -> Result<Option<ContactId>, StoreError>;

    /// One page of the ids of the stored contacts, for a walk over all of them (the
    /// member index backfill). Start with `None` and pass each page's `next` until it is
    /// `None`. A page may hold fewer or more than `limit` ids, and on Redis an id may come
    /// twice in one walk: what a walk does must be idempotent.
    async fn contact_ids_page(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<ContactPage, StoreError>;

    /// Adds the member index entry `key` → `id`, but only while the contact is stored at
    /// `version`: an entry computed from an address the contact no longer has is never
    /// written. Returns whether it was written.
    async fn index_member(
        &self,
        id: &ContactId,
        version: u64,
        key: &str,
    ) -> Result<bool, StoreError>;

    /// A view of every record, to read a dump from (see [`BackupView`]): one read
    /// transaction on the embedded store, so a snapshot; on Redis the live store.
    async fn backup_view(&self) -> Result<Box<dyn BackupView>, StoreError>;

    /// True when the store holds nothing at all: no contact, event, tombstone, job,
    /// allowance, endpoint state, counter, index entry or restore mark.
    async fn is_empty(&self) -> Result<bool, StoreError>;

    /// Writes records read from a dump (see [`RestoreBatch`]). On the embedded store the
    /// batch is one transaction; on Redis each record is its own atomic step.
    async fn restore(&self, batch: RestoreBatch) -> Result<(), StoreError>;

    /// The mark of a restore or copy into this store that has not finished.
    async fn restore_mark(&self) -> Result<Option<RestoreMark>, StoreError>;

    /// Sets the mark (before the first record of a restore), durably.
    async fn set_restore_mark(&self, mark: &RestoreMark) -> Result<(), StoreError>;

    /// Removes the mark (after the last record of a restore), durably.
    async fn clear_restore_mark(&self) -> Result<(), StoreError>;
}

/// One page of a walk over the stored contacts (see [`Store::contact_ids_page`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactPage {
    pub ids: Vec<ContactId>,
    /// Where the next page starts; `None` when the walk is over.
    pub next: Option<String>,
}

/// Redis over TLS. Not built in (it would pull a second TLS stack into the build), but
/// still a Redis URL: refused as such, never mistaken for a file path.
const REDIS_TLS_SCHEME: &str = "rediss://";

/// True when `url` names the embedded store (a file path), not Redis.
pub fn is_embedded(url: &str) -> bool {
    !["redis://", "redis+cluster://", REDIS_TLS_SCHEME]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

/// Refuses a store URL that `open` could never use, without contacting the store. The
/// only place that refuses `rediss://`: `check-config` and `open` both ask here.
pub fn check_url(url: &str) -> anyhow::Result<()> {
    if url.starts_with(REDIS_TLS_SCHEME) {
        anyhow::bail!("store.url: rediss:// is not supported; reach Redis over a private network or a TLS tunnel (stunnel, spiped) and use redis://");
    }
    Ok(())
}

/// Opens the store named by `url`: `redis://`, `redis+cluster://h1:p1,h2:p2`, or else a
/// file path for the embedded store.
pub async fn open(url: &str) -> anyhow::Result<SharedStore> {
    open_with_cache(url, None).await
}

/// The page cache of an embedded store opened by [`open_for_walk`].
const WALK_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Opens the store for a command that walks it once (backup, restore, migrate,
/// verify): as [`open`], with the embedded store's page cache kept small, so that the
/// command's memory does not grow with the store.
pub async fn open_for_walk(url: &str) -> anyhow::Result<SharedStore> {
    open_with_cache(url, Some(WALK_CACHE_BYTES)).await
}

async fn open_with_cache(url: &str, cache_bytes: Option<usize>) -> anyhow::Result<SharedStore> {
    check_url(url)?;
    if is_embedded(url) {
        let path = url.strip_prefix("file://").unwrap_or(url);
        Ok(Arc::new(embedded::EmbeddedStore::open_with_cache(
            std::path::Path::new(path),
            cache_bytes,
        )?))
    } else {
        Ok(Arc::new(redis::RedisStore::connect(url).await?))
    }
}
