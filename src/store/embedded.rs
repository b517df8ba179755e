//! The embedded store: one redb file, one write transaction per change.
//!
//! redb serializes write transactions and commits durably (fsync) before returning, so a
//! change is acknowledged only once it is on disk, and two workers can never claim the
//! same outbox job. It is meant for a single service instance: the file is locked.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use uuid::Uuid;

use super::codec::{
    dead_letter_order, decode, encode, fixed_window, millis, parse_contact_member,
    parse_pending_member, pending_member, pending_members_prefix,
};
use super::{EndpointAttempt, EndpointState, OutboxDepth, Store, StoreError};
use crate::domain::{Contact, ContactChange, ContactId, ContactWrite, Event, OutboxJob, Tombstone};

const CONTACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("contacts");
/// (contact id, sequence number) → event JSON.
const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
const TOMBSTONES: TableDefinition<&str, &[u8]> = TableDefinition::new("tombstones");
/// job id → [`StoredJob`] JSON.
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
/// (contact id, job id) → (): a contact's jobs, so an erasure touches only those.
const JOBS_BY_CONTACT: TableDefinition<(&str, &str), ()> = TableDefinition::new("jobs_by_contact");
/// (due in ms, job id) → (): the queue of live jobs, earliest first.
const QUEUE: TableDefinition<(u64, &str), ()> = TableDefinition::new("queue");
/// (expiry in ms, [`pending_member`]) → (): pending confirmations by expiry.
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");
/// [`pending_member`] → expiry in ms: to find an entry of `EXPIRY` when it is removed.
const EXPIRY_BY_PENDING: TableDefinition<&str, u64> = TableDefinition::new("expiry_by_pending");
const COUNTERS: TableDefinition<&str, i64> = TableDefinition::new("counters");
/// (inactive since in ms, contact id) → (): contacts without an opt-in, for retention.
const INACTIVE: TableDefinition<(u64, &str), ()> = TableDefinition::new("inactive");
/// contact id → inactive since in ms: to find an entry of `INACTIVE` when it changes.
const INACTIVE_BY_CONTACT: TableDefinition<&str, u64> = TableDefinition::new("inactive_by_contact");

/// contact id → JSON list of the times (ms) mails were caused for it by others' requests.
const MAIL_ALLOWANCE: TableDefinition<&str, &[u8]> = TableDefinition::new("mail_allowance");

/// webhook endpoint id → [`EndpointState`] JSON.
const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("webhook_endpoints");

/// Rate-limit windows are kept in memory: one process owns the file anyway.
type HitCounts = std::sync::Mutex<std::collections::HashMap<String, (u64, u64)>>;
/// Past this many tracked keys, stale windows are dropped.
const MAX_TRACKED_HIT_KEYS: usize = 100_000;

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredJob {
    job: OutboxJob,
    due_ms: u64,
    dead: bool,
}

/// A completed job's id, and whom to tell once its removal is committed.
type Completion = (String, tokio::sync::oneshot::Sender<Result<(), StoreError>>);
/// Completed jobs waiting for the commit that removes them.
type Completions = std::sync::Mutex<Vec<Completion>>;

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    hits: Arc<HitCounts>,
    completions: Arc<Completions>,
}

impl EmbeddedStore {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let db = Database::create(path).map_err(|e| {
            anyhow::anyhow!("cannot open the embedded store at {}: {e}", path.display())
        })?;
        let store = Self {
            db: Arc::new(db),
            hits: Arc::default(),
            completions: Arc::default(),
        };
        store.create_tables()?;
        Ok(store)
    }

    /// Tables must exist before the first read transaction opens them.
    fn create_tables(&self) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(CONTACTS)?;
        txn.open_table(EVENTS)?;
        txn.open_table(TOMBSTONES)?;
        {
            let jobs = txn.open_table(JOBS)?;
            let mut by_contact = txn.open_table(JOBS_BY_CONTACT)?;
            // Every job has an entry in the index, so an empty index beside jobs means a
            // store written before the index existed: build it once from the jobs.
            if by_contact.is_empty()? && !jobs.is_empty()? {
                for entry in jobs.iter()? {
                    let (job_id, value) = entry?;
                    // A job that does not decode names no contact (and could never be
                    // sent); it must not stop the start.
                    match decode::<StoredJob>(value.value()) {
                        Ok(stored) => {
                            by_contact
                                .insert((stored.job.contact_id.as_str(), job_id.value()), ())?;
                        }
                        Err(error) => {
                            tracing::warn!(job = job_id.value(), %error, "a stored job does not decode; it is left out of the index by contact");
                        }
                    }
                }
            }
        }
        txn.open_table(QUEUE)?;
        txn.open_table(EXPIRY)?;
        txn.open_table(EXPIRY_BY_PENDING)?;
        txn.open_table(COUNTERS)?;
        txn.open_table(INACTIVE)?;
        txn.open_table(INACTIVE_BY_CONTACT)?;
        txn.open_table(MAIL_ALLOWANCE)?;
        txn.open_table(ENDPOINTS)?;
        txn.commit()?;
        Ok(())
    }

    /// Runs blocking redb work off the async executor.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn read_contact(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &ContactId,
) -> Result<Option<Contact>, StoreError> {
    match table.get(id.as_str()).map_err(unavailable)? {
        Some(bytes) => decode(bytes.value()).map(Some),
        None => Ok(None),
    }
}

fn apply_in(txn: &WriteTransaction, change: &ContactChange) -> Result<(), StoreError> {
    let id = change.contact_id.as_str();
    let mut contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
    let stored_version = read_contact(&contacts, &change.contact_id)?.map_or(0, |c| c.version);
    if stored_version != change.expected_version {
        return Err(StoreError::Conflict);
    }
    let mut events = txn.open_table(EVENTS).map_err(unavailable)?;
    let mut jobs = txn.open_table(JOBS).map_err(unavailable)?;
    let mut jobs_by_contact = txn.open_table(JOBS_BY_CONTACT).map_err(unavailable)?;
    let mut queue = txn.open_table(QUEUE).map_err(unavailable)?;
    let mut expiry = txn.open_table(EXPIRY).map_err(unavailable)?;
    let mut expiry_by_pending = txn.open_table(EXPIRY_BY_PENDING).map_err(unavailable)?;

    let mut removed_pending: Vec<String> = change
        .pending_removed
        .iter()
        .map(|p| pending_member(&change.contact_id, *p))
        .collect();
    match &change.write {
        ContactWrite::Put(contact) => {
            contacts
                .insert(id, encode(contact)?.as_slice())
                .map_err(unavailable)?;
        }
        ContactWrite::Delete => {
            contacts.remove(id).map_err(unavailable)?;
            events
                .extract_from_if((id, 0)..=(id, u64::MAX), |_, _| true)
                .map_err(unavailable)?
                .for_each(drop);
            delete_jobs_of(
                &mut jobs,
                &mut jobs_by_contact,
                &mut queue,
                &change.contact_id,
            )?;
            let prefix = pending_members_prefix(&change.contact_id);
            let all: Vec<String> = expiry_by_pending
                .range(prefix.as_str()..)
                .map_err(unavailable)?
                .map_while(|entry| entry.ok().map(|(k, _)| k.value().to_string()))
                .take_while(|k| k.starts_with(&prefix))
                .collect();
            removed_pending.extend(all);
        }
    }
    for key in &removed_pending {
        if let Some(expires) = expiry_by_pending
            .remove(key.as_str())
            .map_err(unavailable)?
            .map(|v| v.value())
        {
            expiry
                .remove((expires, key.as_str()))
                .map_err(unavailable)?;
        }
    }
    for (pending, expires_at) in &change.pending_added {
        let key = pending_member(&change.contact_id, *pending);
        expiry
            .insert((millis(*expires_at), key.as_str()), ())
            .map_err(unavailable)?;
        expiry_by_pending
            .insert(key.as_str(), millis(*expires_at))
            .map_err(unavailable)?;
    }
    for event in &change.new_events {
        events
            .insert((id, event.seq), encode(event)?.as_slice())
            .map_err(unavailable)?;
    }
    for job in &change.new_jobs {
        insert_job(&mut jobs, &mut jobs_by_contact, &mut queue, job)?;
    }
    let mut counters = txn.open_table(COUNTERS).map_err(unavailable)?;
    for (name, delta) in &change.counters {
        let current = counters
            .get(name.as_str())
            .map_err(unavailable)?
            .map_or(0, |v| v.value());
        counters
            .insert(name.as_str(), current + delta)
            .map_err(unavailable)?;
    }
    index_inactive(
        txn,
        id,
        match &change.write {
            ContactWrite::Put(_) => change.inactive_since,
            ContactWrite::Delete => None,
        },
    )?;
    let mut tombstones = txn.open_table(TOMBSTONES).map_err(unavailable)?;
    if change.clear_tombstone {
        tombstones.remove(id).map_err(unavailable)?;
    }
    if let Some(tombstone) = &change.set_tombstone {
        tombstones
            .insert(id, encode(tombstone)?.as_slice())
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Moves the contact's entry in the retention index (or removes it for `None`).
fn index_inactive(
    txn: &WriteTransaction,
    id: &str,
    since: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let mut inactive = txn.open_table(INACTIVE).map_err(unavailable)?;
    let mut by_contact = txn.open_table(INACTIVE_BY_CONTACT).map_err(unavailable)?;
    if let Some(previous) = by_contact
        .remove(id)
        .map_err(unavailable)?
        .map(|v| v.value())
    {
        inactive.remove((previous, id)).map_err(unavailable)?;
    }
    if let Some(since) = since {
        inactive
            .insert((millis(since), id), ())
            .map_err(unavailable)?;
        by_contact.insert(id, millis(since)).map_err(unavailable)?;
    }
    Ok(())
}

/// Removes the contact's jobs (queued, leased or dead), found through its index entries.
/// Queues a new job, due at its creation time.
fn insert_job(
    jobs: &mut redb::Table<&str, &[u8]>,
    jobs_by_contact: &mut redb::Table<(&str, &str), ()>,
    queue: &mut redb::Table<(u64, &str), ()>,
    job: &OutboxJob,
) -> Result<(), StoreError> {
    let due_ms = millis(job.created_at);
    let job_id = job.id.to_string();
    let stored = StoredJob {
        job: job.clone(),
        due_ms,
        dead: false,
    };
    jobs.insert(job_id.as_str(), encode(&stored)?.as_slice())
        .map_err(unavailable)?;
    jobs_by_contact
        .insert((job.contact_id.as_str(), job_id.as_str()), ())
        .map_err(unavailable)?;
    queue
        .insert((due_ms, job_id.as_str()), ())
        .map_err(unavailable)?;
    Ok(())
}

fn read_endpoint_state(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    endpoint: &str,
) -> Result<EndpointState, StoreError> {
    match table.get(endpoint).map_err(unavailable)? {
        Some(bytes) => decode(bytes.value()),
        None => Ok(EndpointState::default()),
    }
}

/// Rewrites one endpoint's state in a write transaction: one process owns the file, so
/// read-modify-write cannot interleave with another writer.
fn update_endpoint_state(
    db: &Database,
    durability: Durability,
    endpoint: &str,
    update: impl FnOnce(EndpointState) -> EndpointState,
) -> Result<(), StoreError> {
    write_with(db, durability, |txn| {
        let mut table = txn.open_table(ENDPOINTS).map_err(unavailable)?;
        let state = update(read_endpoint_state(&table, endpoint)?);
        table
            .insert(endpoint, encode(&state)?.as_slice())
            .map_err(unavailable)?;
        Ok(())
    })
}

fn delete_jobs_of(
    jobs: &mut redb::Table<&str, &[u8]>,
    jobs_by_contact: &mut redb::Table<(&str, &str), ()>,
    queue: &mut redb::Table<(u64, &str), ()>,
    contact: &ContactId,
) -> Result<(), StoreError> {
    let id = contact.as_str();
    // Job ids are hyphenated UUIDs, so every one sorts between "" and "~".
    let doomed: Vec<String> = jobs_by_contact
        .extract_from_if((id, "")..=(id, "~"), |_, _| true)
        .map_err(unavailable)?
        .map(|entry| entry.map(|(key, _)| key.value().1.to_string()))
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    for job_id in doomed {
        let removed = jobs
            .remove(job_id.as_str())
            .map_err(unavailable)?
            .map(|v| decode::<StoredJob>(v.value()))
            .transpose()?;
        if let Some(stored) = removed.filter(|s| !s.dead) {
            queue
                .remove((stored.due_ms, job_id.as_str()))
                .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// Re-queues a stored job at `due_ms`, or marks it dead; `None` when the job is gone.
fn move_job(
    txn: &WriteTransaction,
    job: &OutboxJob,
    update: impl FnOnce(&mut StoredJob),
) -> Result<bool, StoreError> {
    let job_id = job.id.to_string();
    let mut jobs = txn.open_table(JOBS).map_err(unavailable)?;
    let mut queue = txn.open_table(QUEUE).map_err(unavailable)?;
    let Some(mut stored) = jobs
        .get(job_id.as_str())
        .map_err(unavailable)?
        .map(|v| decode::<StoredJob>(v.value()))
        .transpose()?
    else {
        return Ok(false);
    };
    if !stored.dead {
        queue
            .remove((stored.due_ms, job_id.as_str()))
            .map_err(unavailable)?;
    }
    update(&mut stored);
    if !stored.dead {
        queue
            .insert((stored.due_ms, job_id.as_str()), ())
            .map_err(unavailable)?;
    }
    jobs.insert(job_id.as_str(), encode(&stored)?.as_slice())
        .map_err(unavailable)?;
    Ok(true)
}

fn write<T>(
    db: &Database,
    work: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    write_with(db, Durability::Immediate, work)
}

/// A write that reaches the disk with the next durable commit rather than its own. Only
/// for changes whose loss in a crash is harmless; it saves an fsync.
fn write_volatile<T>(
    db: &Database,
    work: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    write_with(db, Durability::None, work)
}

fn write_with<T>(
    db: &Database,
    durability: Durability,
    work: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut txn = db.begin_write().map_err(unavailable)?;
    txn.set_durability(durability).map_err(unavailable)?;
    let result = work(&txn)?;
    txn.commit().map_err(unavailable)?;
    Ok(result)
}

fn lock_completions(completions: &Completions) -> std::sync::MutexGuard<'_, Vec<Completion>> {
    // Nothing panics while holding it; a poisoned list must not stop the outbox.
    completions
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes every queued completed job in one durable commit and tells each caller.
fn commit_completions(db: &Database, completions: &Completions) {
    let txn = db.begin_write().map_err(unavailable);
    // Taken once the write lock is ours, so jobs completed meanwhile share this commit.
    let batch = std::mem::take(&mut *lock_completions(completions));
    let txn = match txn {
        Ok(txn) => txn,
        Err(error) => {
            for (_, done) in batch {
                let _ = done.send(Err(error.clone()));
            }
            return;
        }
    };
    // A job that fails to decode fails alone; the others are still removed.
    let outcomes: Vec<_> = batch
        .iter()
        .map(|(job_id, _)| remove_job(&txn, job_id))
        .collect();
    let committed = txn.commit().map_err(unavailable);
    for ((_, done), outcome) in batch.into_iter().zip(outcomes) {
        let _ = done.send(committed.clone().and(outcome));
    }
}

/// Removes a job and its queue entry (a dead-lettered job has none).
fn remove_job(txn: &WriteTransaction, job_id: &str) -> Result<(), StoreError> {
    let mut jobs = txn.open_table(JOBS).map_err(unavailable)?;
    let removed = jobs
        .remove(job_id)
        .map_err(unavailable)?
        .map(|v| decode::<StoredJob>(v.value()))
        .transpose()?;
    if let Some(stored) = &removed {
        txn.open_table(JOBS_BY_CONTACT)
            .map_err(unavailable)?
            .remove((stored.job.contact_id.as_str(), job_id))
            .map_err(unavailable)?;
    }
    if let Some(stored) = removed.filter(|s| !s.dead) {
        txn.open_table(QUEUE)
            .map_err(unavailable)?
            .remove((stored.due_ms, job_id))
            .map_err(unavailable)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|db| db.begin_read().map(drop).map_err(unavailable))
            .await
    }

    async fn load_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        let id = id.clone();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            read_contact(&txn.open_table(CONTACTS).map_err(unavailable)?, &id)
        })
        .await
    }

    async fn load_contacts(&self, ids: &[ContactId]) -> Result<Vec<Option<Contact>>, StoreError> {
        let ids = ids.to_vec();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(CONTACTS).map_err(unavailable)?;
            ids.iter().map(|id| read_contact(&table, id)).collect()
        })
        .await
    }

    async fn apply(&self, change: ContactChange) -> Result<(), StoreError> {
        // Dropping a write transaction without commit aborts it: a failed change writes nothing.
        self.blocking(move |db| write(db, |txn| apply_in(txn, &change)))
            .await
    }

    async fn events(&self, id: &ContactId) -> Result<Vec<Event>, StoreError> {
        let id = id.clone();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(EVENTS).map_err(unavailable)?;
            let range = table
                .range((id.as_str(), 0)..=(id.as_str(), u64::MAX))
                .map_err(unavailable)?;
            range
                .map(|entry| decode(entry.map_err(unavailable)?.1.value()))
                .collect()
        })
        .await
    }

    async fn tombstone(&self, id: &ContactId) -> Result<Option<Tombstone>, StoreError> {
        let id = id.clone();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(TOMBSTONES).map_err(unavailable)?;
            let value = table.get(id.as_str()).map_err(unavailable)?;
            value.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    async fn counters(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(COUNTERS).map_err(unavailable)?;
            let entries = table.iter().map_err(unavailable)?;
            entries
                .map(|entry| {
                    entry
                        .map(|(k, v)| (k.value().to_string(), v.value()))
                        .map_err(unavailable)
                })
                .collect()
        })
        .await
    }

    async fn expired_pending(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(ContactId, Uuid)>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(EXPIRY).map_err(unavailable)?;
            let range = table
                .range((0, "")..=(millis(now), "\u{10FFFF}"))
                .map_err(unavailable)?;
            let mut expired = Vec::new();
            for entry in range.take(limit) {
                let (key, _) = entry.map_err(unavailable)?;
                expired.push(parse_pending_member(key.value().1)?);
            }
            Ok(expired)
        })
        .await
    }

    async fn inactive_contacts(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(INACTIVE).map_err(unavailable)?;
            let range = table
                .range((0, "")..(millis(before), ""))
                .map_err(unavailable)?;
            let mut found = Vec::new();
            for entry in range.take(limit) {
                let (key, _) = entry.map_err(unavailable)?;
                found.push(parse_contact_member(key.value().1)?);
            }
            Ok(found)
        })
        .await
    }

    async fn count_hit(
        &self,
        key: &str,
        window_secs: u64,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let window = fixed_window(now, window_secs);
        let mut hits = self
            .hits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if hits.len() > MAX_TRACKED_HIT_KEYS {
            hits.retain(|_, (w, _)| *w == window);
        }
        let entry = hits.entry(key.to_string()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 += 1;
        Ok(entry.1)
    }

    async fn take_mail_allowance(
        &self,
        id: &ContactId,
        limit: u32,
        window_secs: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        let now_ms = millis(now);
        let oldest_kept = now_ms.saturating_sub(window_secs.saturating_mul(1000));
        self.blocking(move |db| {
            write(db, |txn| {
                let mut table = txn.open_table(MAIL_ALLOWANCE).map_err(unavailable)?;
                let mut sent: Vec<u64> = match table.get(id.as_str()).map_err(unavailable)? {
                    Some(bytes) => decode(bytes.value())?,
                    None => Vec::new(),
                };
                sent.retain(|at| *at > oldest_kept);
                let granted = sent.len() < limit as usize;
                if granted {
                    sent.push(now_ms);
                }
                if sent.is_empty() {
                    table.remove(id.as_str()).map_err(unavailable)?;
                } else {
                    table
                        .insert(id.as_str(), encode(&sent)?.as_slice())
                        .map_err(unavailable)?;
                }
                Ok(granted)
            })
        })
        .await
    }

    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<OutboxJob>, StoreError> {
        // A claim lost in a crash leaves the job due, as the end of its lease would: the
        // process that held it is gone either way. So it need not wait for the disk.
        self.blocking(move |db| {
            write_volatile(db, |txn| {
                let first_due = {
                    let queue = txn.open_table(QUEUE).map_err(unavailable)?;
                    let mut range = queue
                        .range((0, "")..=(millis(now), "\u{10FFFF}"))
                        .map_err(unavailable)?;
                    let first = match range.next() {
                        Some(entry) => Some(entry.map_err(unavailable)?.0.value().1.to_string()),
                        None => None,
                    };
                    first
                };
                let Some(job_id) = first_due else {
                    return Ok(None);
                };
                let jobs = txn.open_table(JOBS).map_err(unavailable)?;
                let stored: StoredJob = match jobs.get(job_id.as_str()).map_err(unavailable)? {
                    Some(v) => decode(v.value())?,
                    None => {
                        return Err(StoreError::Corrupt(format!(
                            "queued job {job_id} has no body"
                        )))
                    }
                };
                drop(jobs);
                move_job(txn, &stored.job, |s| s.due_ms = millis(lease_until))?;
                Ok(Some(stored.job))
            })
        })
        .await
    }

    /// Group commit: every fsync costs about a millisecond, and one per sent mail capped
    /// the drain near that rate. Completions that arrive while a commit is under way
    /// wait for the next one and share it; each call still returns only once its job's
    /// removal is on disk.
    async fn complete_job(&self, job: &OutboxJob) -> Result<(), StoreError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let leads = {
            let mut pending = lock_completions(&self.completions);
            pending.push((job.id.to_string(), done));
            // The first to queue commits for everyone queued until its transaction starts.
            pending.len() == 1
        };
        if leads {
            let completions = self.completions.clone();
            self.blocking(move |db| {
                commit_completions(db, &completions);
                Ok(())
            })
            .await?;
        }
        result
            .await
            .map_err(|_| StoreError::Unavailable("the completing commit was abandoned".into()))?
    }

    async fn retry_job_later(&self, job: &OutboxJob, due: DateTime<Utc>) -> Result<(), StoreError> {
        let job = job.clone();
        self.blocking(move |db| {
            write(db, |txn| {
                move_job(txn, &job, |s| {
                    s.job = job.clone();
                    s.due_ms = millis(due);
                })
                .map(drop)
            })
        })
        .await
    }

    async fn dead_letter_job(&self, job: &OutboxJob) -> Result<(), StoreError> {
        let job = job.clone();
        self.blocking(move |db| {
            write(db, |txn| {
                move_job(txn, &job, |s| {
                    s.job = job.clone();
                    s.dead = true;
                })
                .map(drop)
            })
        })
        .await
    }

    async fn dead_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(JOBS).map_err(unavailable)?;
            let mut dead = Vec::new();
            for entry in table.iter().map_err(unavailable)? {
                let stored: StoredJob = decode(entry.map_err(unavailable)?.1.value())?;
                if stored.dead {
                    dead.push(stored.job);
                }
            }
            dead.sort_by_key(dead_letter_order);
            dead.truncate(limit);
            Ok(dead)
        })
        .await
    }

    async fn revive_dead_job(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.blocking(move |db| {
            write(db, |txn| {
                let stored = {
                    let jobs = txn.open_table(JOBS).map_err(unavailable)?;
                    let value = jobs.get(id.to_string().as_str()).map_err(unavailable)?;
                    value.map(|v| decode::<StoredJob>(v.value())).transpose()?
                };
                match stored {
                    Some(stored) if stored.dead => move_job(txn, &stored.job, |s| {
                        s.dead = false;
                        s.job.attempts = 0;
                        s.due_ms = millis(now);
                    }),
                    _ => Ok(false),
                }
            })
        })
        .await
    }

    async fn contact_jobs(&self, id: &ContactId) -> Result<Vec<OutboxJob>, StoreError> {
        let id = id.clone();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let by_contact = txn.open_table(JOBS_BY_CONTACT).map_err(unavailable)?;
            let jobs = txn.open_table(JOBS).map_err(unavailable)?;
            let cid = id.as_str();
            let mut found = Vec::new();
            // Job ids are hyphenated UUIDs, so every one sorts between "" and "~".
            for entry in by_contact
                .range((cid, "")..=(cid, "~"))
                .map_err(unavailable)?
            {
                let (key, _) = entry.map_err(unavailable)?;
                if let Some(value) = jobs.get(key.value().1).map_err(unavailable)? {
                    found.push(decode::<StoredJob>(value.value())?.job);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn queue_job(&self, job: &OutboxJob) -> Result<(), StoreError> {
        let job = job.clone();
        self.blocking(move |db| {
            write(db, |txn| {
                let mut jobs = txn.open_table(JOBS).map_err(unavailable)?;
                let mut by_contact = txn.open_table(JOBS_BY_CONTACT).map_err(unavailable)?;
                let mut queue = txn.open_table(QUEUE).map_err(unavailable)?;
                insert_job(&mut jobs, &mut by_contact, &mut queue, &job)
            })
        })
        .await
    }

    async fn webhook_backlog(&self) -> Result<BTreeMap<String, OutboxDepth>, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(JOBS).map_err(unavailable)?;
            let mut backlog: BTreeMap<String, OutboxDepth> = BTreeMap::new();
            for entry in table.iter().map_err(unavailable)? {
                let stored: StoredJob = decode(entry.map_err(unavailable)?.1.value())?;
                if let Some(webhook) = stored.job.as_webhook() {
                    let depth = backlog.entry(webhook.endpoint.clone()).or_default();
                    if stored.dead {
                        depth.dead += 1;
                    } else {
                        depth.queued += 1;
                    }
                }
            }
            Ok(backlog)
        })
        .await
    }

    async fn endpoint_state(&self, endpoint: &str) -> Result<EndpointState, StoreError> {
        let endpoint = endpoint.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(ENDPOINTS).map_err(unavailable)?;
            read_endpoint_state(&table, &endpoint)
        })
        .await
    }

    async fn record_endpoint_attempt(
        &self,
        endpoint: &str,
        attempt: EndpointAttempt,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let endpoint = endpoint.to_string();
        self.blocking(move |db| {
            // Not worth a disk sync per delivery: a crash loses at most the latest
            // attempt's timestamps, and a lost 410 is answered again by the endpoint.
            update_endpoint_state(db, Durability::None, &endpoint, |state| {
                state.after(attempt, at)
            })
        })
        .await
    }

    async fn enable_endpoint(&self, endpoint: &str) -> Result<(), StoreError> {
        let endpoint = endpoint.to_string();
        self.blocking(move |db| {
            update_endpoint_state(db, Durability::Immediate, &endpoint, |state| {
                EndpointState {
                    disabled_at: None,
                    ..state
                }
            })
        })
        .await
    }

    async fn outbox_depth(&self) -> Result<OutboxDepth, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let queued = txn
                .open_table(QUEUE)
                .map_err(unavailable)?
                .len()
                .map_err(unavailable)?;
            let all = txn
                .open_table(JOBS)
                .map_err(unavailable)?
                .len()
                .map_err(unavailable)?;
            Ok(OutboxDepth {
                queued,
                dead: all.saturating_sub(queued),
            })
        })
        .await
    }
}
