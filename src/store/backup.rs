//! What a store offers backups: every record read page by page from one view, and the
//! same records written back as they were. No rules live here: which records to write,
//! and the indexes a contact needs, come from the caller (the backup module).

use chrono::{DateTime, Utc};

use super::{EndpointState, StoreError};
use crate::domain::{Contact, ContactChange, ContactId, Event, OutboxJob, Tombstone};

/// One page of a walk over one kind of record. Start with `None` and pass each page's
/// `next` until it is `None`. A page may hold fewer or more items than asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordPage<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A contact with its events, oldest first, exactly as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactRecord {
    pub contact: Contact,
    pub events: Vec<Event>,
}

/// A contact whose stored contact or events do not decode: a bug or tampering. A walk
/// names it instead of failing as a whole, so `optin verify` can report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableContact {
    pub id: ContactId,
    pub reason: String,
}

pub type ContactRead = Result<ContactRecord, UnreadableContact>;

/// The mails that others' requests caused for one contact (see
/// `Store::take_mail_allowance`): the times they were taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailAllowance {
    pub contact_id: ContactId,
    pub taken_at: Vec<DateTime<Utc>>,
}

/// Where an outbox job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Waiting, due at this time (a leased job: when its lease ends).
    Queued { due: DateTime<Utc> },
    /// Dead-lettered: only an admin retry revives it.
    Dead,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRecord {
    pub job: OutboxJob,
    pub state: JobState,
}

/// Which kind of store a view reads, for the dump's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    Embedded,
    Redis,
    RedisCluster,
}

/// How far the records of one view agree with each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Every record as of one moment (a redb read transaction).
    Snapshot,
    /// Each contact with its events as of one moment, read atomically in its slot; the
    /// contacts, and the other records, each as of the moment they were read.
    PerRecord,
}

/// A view of every record of a store, for a dump, a copy or a check. Each record comes
/// once per walk.
#[async_trait::async_trait]
pub trait BackupView: Send + Sync {
    fn kind(&self) -> StoreKind;

    fn consistency(&self) -> Consistency;

    /// Contacts with their events.
    async fn contacts(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<ContactRead>, StoreError>;

    async fn tombstones(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<(ContactId, Tombstone)>, StoreError>;

    async fn mail_allowances(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<MailAllowance>, StoreError>;

    /// Outbox jobs, queued, leased and dead.
    async fn jobs(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<JobRecord>, StoreError>;

    /// The stored state of each webhook endpoint that has one.
    async fn endpoint_states(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<(String, EndpointState)>, StoreError>;
}

/// Records to write back as they were read. Each contact comes as the change that
/// creates it (its own version, its events, its indexes, as the restore derives them)
/// and is written like [`super::Store::apply`]: atomically, or refused with
/// [`StoreError::Conflict`] when the contact exists. The other records are written as
/// given, over anything already there.
#[derive(Clone, Debug, Default)]
pub struct RestoreBatch {
    pub contacts: Vec<ContactChange>,
    pub tombstones: Vec<(ContactId, Tombstone)>,
    /// With the time the allowance expires (the newest mail plus the window).
    pub mail_allowances: Vec<(MailAllowance, DateTime<Utc>)>,
    pub jobs: Vec<JobRecord>,
    pub endpoint_states: Vec<(String, EndpointState)>,
}

impl RestoreBatch {
    pub fn len(&self) -> usize {
        self.contacts.len()
            + self.tombstones.len()
            + self.mail_allowances.len()
            + self.jobs.len()
            + self.endpoint_states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Left in a store while a restore or a copy into it runs: written before the first
/// record, removed after the last. A store that still has one is incomplete, and
/// `optin serve` refuses to start on it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestoreMark {
    pub started_at: DateTime<Utc>,
    /// What filled the store: `restore` or `migrate`.
    pub by: String,
}
