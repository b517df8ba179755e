//! The embedded store: one redb file, one write transaction per change.
//!
//! - [`jobs`]: the outbox on redb: queue, leases, group-committed completions, dead letters;
//! - [`webhooks`]: the webhook endpoints' delivery state and backlog.
//!
//! - [`group_commit`]: writers that arrive during a commit share the next one.
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

mod backup;
mod group_commit;
mod jobs;
mod member_index;
mod spent;
mod tables;
mod vacuum;
mod webhooks;

use self::group_commit::GroupCommit;
use self::jobs::{delete_jobs_of, insert_job, StoredJob};
use super::codec::{
    decode, encode, fixed_window, millis, parse_contact_member, parse_pending_member,
    pending_member, pending_members_prefix,
};
use super::{
    BackupView, ContactPage, EndpointAttempt, EndpointState, HitWindow, OutboxDepth, RestoreBatch,
    RestoreMark, Store, StoreError,
};
use crate::domain::{
    Contact, ContactChange, ContactId, ContactWrite, Event, OutboxJob, Timer, Tombstone,
};

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
/// The confirmation funnel's counters (see `domain::funnel`).
pub(super) const FUNNEL: TableDefinition<&str, i64> = TableDefinition::new("funnel");
/// (inactive since in ms, contact id) → (): contacts without an opt-in, for retention.
const INACTIVE: TableDefinition<(u64, &str), ()> = TableDefinition::new("inactive");
/// (timer, due in ms, contact id) → (): the due index, one range per timer.
pub(super) const TIMERS: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("timers");
/// (timer, contact id) → due in ms: to find an entry of `TIMERS` when it changes.
pub(super) const TIMERS_BY_CONTACT: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("timers_by_contact");
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

/// redb's settings for the file: its page cache held to `cache_bytes` when given.
fn builder(cache_bytes: Option<usize>) -> redb::Builder {
    let mut builder = redb::Builder::new();
    if let Some(bytes) = cache_bytes {
        builder.set_cache_size(bytes);
    }
    builder
}

/// The database, shared by every transaction (read side) and taken whole only to
/// write the file anew after erasures (write side), which needs no transaction open.
pub(super) type SharedDb = Arc<std::sync::RwLock<Database>>;

/// The database for one transaction's work; a panic elsewhere must not stop the store.
pub(super) fn shared(db: &SharedDb) -> std::sync::RwLockReadGuard<'_, Database> {
    db.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Clone)]
pub struct EmbeddedStore {
    db: SharedDb,
    /// Where the file is and how it was opened, to write it anew (see [`vacuum`]).
    path: Arc<std::path::PathBuf>,
    cache_bytes: Option<usize>,
    hits: Arc<HitCounts>,
    /// The durable writes of requests and of the outbox share commits through this.
    group: Arc<GroupCommit>,
}

impl EmbeddedStore {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_with_cache(path, None)
    }

    /// As [`Self::open`], with redb's page cache held to `cache_bytes` instead of its
    /// default (1 GiB): for commands that read or write every record once, which a cache
    /// does not speed up, and whose memory should not grow with the store.
    pub fn open_with_cache(path: &Path, cache_bytes: Option<usize>) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::private_files::create_folder(parent)?;
        }
        // The file holds every address: private before redb writes the first byte, and
        // tightened when an earlier release left it readable by others.
        if let Some(was) = crate::private_files::restrict_file(path)? {
            tracing::warn!(path = %path.display(), was = format!("{was:o}"), "the store file was readable by other users; its mode is now 0600");
        }
        let db = builder(cache_bytes).create(path).map_err(|e| {
            anyhow::anyhow!("cannot open the embedded store at {}: {e}", path.display())
        })?;
        let store = Self {
            db: Arc::new(std::sync::RwLock::new(db)),
            path: Arc::new(path.to_path_buf()),
            cache_bytes,
            hits: Arc::default(),
            group: Arc::default(),
        };
        store.create_tables()?;
        Ok(store)
    }

    /// Tables must exist before the first read transaction opens them.
    fn create_tables(&self) -> anyhow::Result<()> {
        struct Create<'a>(&'a WriteTransaction);
        impl tables::TableVisitor for Create<'_> {
            type Error = redb::TableError;
            fn visit<K: redb::Key + 'static, V: redb::Value + 'static>(
                &mut self,
                table: TableDefinition<'static, K, V>,
            ) -> Result<(), redb::TableError> {
                self.0.open_table(table).map(drop)
            }
        }
        let txn = shared(&self.db).begin_write()?;
        tables::for_every_table(&mut Create(&txn))?;
        index_jobs_by_contact(&txn)?;
        txn.commit()?;
        Ok(())
    }

    /// Runs a read of a few keys. On the calling thread when no purge holds the
    /// database: such a read takes microseconds from redb's page cache, less than handing
    /// it to a blocking thread and waking the request's thread again (which was most of
    /// an eligibility answer's cost). While a purge rewrites the file, off the executor,
    /// so that the server's threads keep answering what needs no store.
    pub(super) async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        {
            let free = match self.db.try_read() {
                Ok(db) => Some(db),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if let Some(db) = free {
                return work(&db);
            }
        }
        self.blocking(work).await
    }

    /// Runs blocking redb work off the async executor.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&shared(&db)))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

/// Every job has an entry in the index by contact, so an empty index beside jobs means a
/// store written before the index existed: it is built once from the jobs.
fn index_jobs_by_contact(txn: &WriteTransaction) -> anyhow::Result<()> {
    let jobs = txn.open_table(JOBS)?;
    let mut by_contact = txn.open_table(JOBS_BY_CONTACT)?;
    if !by_contact.is_empty()? || jobs.is_empty()? {
        return Ok(());
    }
    for entry in jobs.iter()? {
        let (job_id, value) = entry?;
        // A job that does not decode names no contact (and could never be sent); it
        // must not stop the start.
        match decode::<StoredJob>(value.value()) {
            Ok(stored) => {
                by_contact.insert((stored.job.contact_id.as_str(), job_id.value()), ())?;
            }
            Err(error) => {
                tracing::warn!(job = job_id.value(), %error, "a stored job does not decode; it is left out of the index by contact");
            }
        }
    }
    Ok(())
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
    let stored_version = read_contact(&contacts, &change.contact_id)?.map_or(0, |c| c.version());
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
    add_counters(txn, COUNTERS, &change.counters)?;
    add_counters(txn, FUNNEL, &change.funnel)?;
    index_inactive(
        txn,
        id,
        match &change.write {
            ContactWrite::Put(_) => change.inactive_since,
            ContactWrite::Delete => None,
        },
    )?;
    index_timers(txn, id, &change.timers)?;
    let mut tombstones = txn.open_table(TOMBSTONES).map_err(unavailable)?;
    if change.clear_tombstone {
        tombstones.remove(id).map_err(unavailable)?;
    }
    if let Some(tombstone) = &change.set_tombstone {
        tombstones
            .insert(id, encode(tombstone)?.as_slice())
            .map_err(unavailable)?;
    }
    member_index::apply_in(txn, change)
}

fn read_counters(
    db: &Database,
    table: TableDefinition<&str, i64>,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let txn = db.begin_read().map_err(unavailable)?;
    let table = txn.open_table(table).map_err(unavailable)?;
    let entries = table.iter().map_err(unavailable)?;
    entries
        .map(|entry| {
            entry
                .map(|(k, v)| (k.value().to_string(), v.value()))
                .map_err(unavailable)
        })
        .collect()
}

fn add_counters(
    txn: &WriteTransaction,
    table: TableDefinition<&str, i64>,
    deltas: &BTreeMap<String, i64>,
) -> Result<(), StoreError> {
    let mut counters = txn.open_table(table).map_err(unavailable)?;
    for (name, delta) in deltas {
        let current = counters
            .get(name.as_str())
            .map_err(unavailable)?
            .map_or(0, |v| v.value());
        counters
            .insert(name.as_str(), current + delta)
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Moves the contact's entries in the due index (or removes them, for `None`).
fn index_timers(
    txn: &WriteTransaction,
    id: &str,
    timers: &BTreeMap<Timer, Option<DateTime<Utc>>>,
) -> Result<(), StoreError> {
    let mut due = txn.open_table(TIMERS).map_err(unavailable)?;
    let mut by_contact = txn.open_table(TIMERS_BY_CONTACT).map_err(unavailable)?;
    for (timer, at) in timers {
        let kind = timer.as_str();
        if let Some(previous) = by_contact
            .remove((kind, id))
            .map_err(unavailable)?
            .map(|v| v.value())
        {
            due.remove((kind, previous, id)).map_err(unavailable)?;
        }
        if let Some(at) = at {
            due.insert((kind, millis(*at), id), ())
                .map_err(unavailable)?;
            by_contact
                .insert((kind, id), millis(*at))
                .map_err(unavailable)?;
        }
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

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|db| db.begin_read().map(drop).map_err(unavailable))
            .await
    }

    async fn load_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        let id = id.clone();
        self.read(move |db| {
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
        // A failed change writes nothing: see `group_commit` for how a shared commit
        // keeps that promise.
        self.group
            .write(&self.db, move |txn| apply_in(txn, &change))
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
        self.read(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(TOMBSTONES).map_err(unavailable)?;
            let value = table.get(id.as_str()).map_err(unavailable)?;
            value.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    async fn counters(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        self.blocking(|db| read_counters(db, COUNTERS)).await
    }

    async fn funnel_counters(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        self.blocking(|db| read_counters(db, FUNNEL)).await
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

    async fn purge_erased(&self) -> Result<(), StoreError> {
        let (db, path, cache_bytes) = (self.db.clone(), self.path.clone(), self.cache_bytes);
        tokio::task::spawn_blocking(move || {
            // Taken whole, so that no change lands in the old file during the copy;
            // requests wait meanwhile.
            let mut db = db
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *db = vacuum::rewrite(&db, &path, cache_bytes)?;
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }

    async fn due_contacts(
        &self,
        timer: Timer,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(TIMERS).map_err(unavailable)?;
            let kind = timer.as_str();
            let range = table
                .range((kind, 0, "")..=(kind, millis(until), "\u{10ffff}"))
                .map_err(unavailable)?;
            let mut found = Vec::new();
            for entry in range.take(limit) {
                let (key, _) = entry.map_err(unavailable)?;
                found.push(parse_contact_member(key.value().2)?);
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
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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

    async fn give_back_hit(&self, key: &str, window: HitWindow) -> Result<(), StoreError> {
        let window = fixed_window(window.at, window.secs);
        let mut hits = self
            .hits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((counted, count)) = hits.get_mut(key) {
            if *counted == window {
                *count = count.saturating_sub(1);
            }
        }
        Ok(())
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
        // Volatile: it reaches the disk with the next durable commit, which the change
        // that queues the mail makes right after. A crash in between forgets a grant for
        // a mail that was never queued, which costs nothing; one fsync less per signup.
        self.blocking(move |db| {
            write_volatile(db, |txn| {
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

    async fn spend_once(
        &self,
        key: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        spent::spend_once(self, key, expires_at, now).await
    }

    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<OutboxJob>, StoreError> {
        jobs::claim_job(self, now, lease_until).await
    }

    async fn complete_job(&self, job: &OutboxJob) -> Result<(), StoreError> {
        jobs::complete_job(self, job).await
    }

    async fn retry_job_later(&self, job: &OutboxJob, due: DateTime<Utc>) -> Result<(), StoreError> {
        jobs::retry_job_later(self, job, due).await
    }

    async fn dead_letter_job(&self, job: &OutboxJob) -> Result<(), StoreError> {
        jobs::dead_letter_job(self, job).await
    }

    async fn dead_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>, StoreError> {
        jobs::dead_jobs(self, limit).await
    }

    async fn revive_dead_job(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        jobs::revive_dead_job(self, id, now).await
    }

    async fn contact_jobs(&self, id: &ContactId) -> Result<Vec<OutboxJob>, StoreError> {
        jobs::contact_jobs(self, id).await
    }

    async fn queue_job(&self, job: &OutboxJob) -> Result<(), StoreError> {
        jobs::queue_job(self, job).await
    }

    async fn webhook_backlog(&self) -> Result<BTreeMap<String, OutboxDepth>, StoreError> {
        webhooks::webhook_backlog(self).await
    }

    async fn endpoint_state(&self, endpoint: &str) -> Result<EndpointState, StoreError> {
        webhooks::endpoint_state(self, endpoint).await
    }

    async fn record_endpoint_attempt(
        &self,
        endpoint: &str,
        attempt: EndpointAttempt,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        webhooks::record_endpoint_attempt(self, endpoint, attempt, at).await
    }

    async fn enable_endpoint(&self, endpoint: &str) -> Result<(), StoreError> {
        webhooks::enable_endpoint(self, endpoint).await
    }

    async fn outbox_depth(&self) -> Result<OutboxDepth, StoreError> {
        jobs::outbox_depth(self).await
    }

    async fn find_member(&self, key: &str) -> Result<Option<ContactId>, StoreError> {
        member_index::find(self, key).await
    }

    async fn contact_ids_page(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<ContactPage, StoreError> {
        // The cursor is the last id of the previous page: ids come in key order.
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(CONTACTS).map_err(unavailable)?;
            let after = match &cursor {
                Some(last) => std::ops::Bound::Excluded(last.as_str()),
                None => std::ops::Bound::Unbounded,
            };
            let mut ids = Vec::new();
            for entry in table
                .range::<&str>((after, std::ops::Bound::Unbounded))
                .map_err(unavailable)?
                .take(limit.max(1))
            {
                let (id, _) = entry.map_err(unavailable)?;
                ids.push(
                    ContactId::parse(id.value())
                        .map_err(|_| StoreError::Corrupt("a contact key".into()))?,
                );
            }
            let next = (ids.len() == limit.max(1))
                .then(|| ids.last().map(|id| id.as_str().to_string()))
                .flatten();
            Ok(ContactPage { ids, next })
        })
        .await
    }

    async fn index_member(
        &self,
        id: &ContactId,
        version: u64,
        key: &str,
    ) -> Result<bool, StoreError> {
        member_index::index(self, id, version, key).await
    }

    async fn backup_view(&self) -> Result<Box<dyn BackupView>, StoreError> {
        backup::view(self).await
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        backup::is_empty(self).await
    }

    async fn restore(&self, batch: RestoreBatch) -> Result<(), StoreError> {
        backup::restore(self, batch).await
    }

    async fn restore_mark(&self) -> Result<Option<RestoreMark>, StoreError> {
        backup::restore_mark(self).await
    }

    async fn set_restore_mark(&self, mark: &RestoreMark) -> Result<(), StoreError> {
        backup::set_restore_mark(self, Some(mark.clone())).await
    }

    async fn clear_restore_mark(&self) -> Result<(), StoreError> {
        backup::set_restore_mark(self, None).await
    }
}
