//! Backups of the embedded store: a view on one read transaction (a snapshot: redb keeps
//! what it sees while writers go on), and restores written one transaction per batch.

use std::ops::Bound;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTableMetadata, TableDefinition,
    TableHandle, WriteTransaction,
};

use super::jobs::StoredJob;
use super::{
    apply_in, unavailable, write, EmbeddedStore, CONTACTS, COUNTERS, ENDPOINTS, EVENTS, EXPIRY,
    EXPIRY_BY_PENDING, INACTIVE, INACTIVE_BY_CONTACT, JOBS, JOBS_BY_CONTACT, MAIL_ALLOWANCE, QUEUE,
    TOMBSTONES,
};
use crate::domain::{Contact, ContactId, Event, Tombstone};
use crate::store::codec::{decode, encode, millis};
use crate::store::{
    BackupView, Consistency, ContactRead, ContactRecord, EndpointState, JobRecord, JobState,
    MailAllowance, RecordPage, RestoreBatch, RestoreMark, StoreError, StoreKind, UnreadableContact,
};

/// The one entry of [`RESTORE_MARK`].
const MARK_KEY: &str = "restore";
/// [`MARK_KEY`] → [`RestoreMark`] JSON, while a restore into this file runs.
pub(super) const RESTORE_MARK: TableDefinition<&str, &[u8]> = TableDefinition::new("restore_mark");

pub(super) struct EmbeddedView {
    txn: Arc<ReadTransaction>,
}

impl EmbeddedView {
    pub(super) fn open(db: &Database) -> Result<Self, StoreError> {
        Ok(Self {
            txn: Arc::new(db.begin_read().map_err(unavailable)?),
        })
    }

    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let txn = self.txn.clone();
        tokio::task::spawn_blocking(move || work(&txn))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

/// The keys after `cursor` (the last key of the previous page), and the cursor of the
/// page after this one.
fn page_after<V: redb::Value + 'static, T>(
    table: &redb::ReadOnlyTable<&'static str, V>,
    cursor: Option<&str>,
    limit: usize,
    mut read: impl FnMut(&str, redb::AccessGuard<'_, V>) -> Result<T, StoreError>,
) -> Result<RecordPage<T>, StoreError> {
    let after = cursor.map_or(Bound::Unbounded, Bound::Excluded);
    let limit = limit.max(1);
    let mut items = Vec::new();
    let mut last = None;
    for entry in table
        .range::<&str>((after, Bound::Unbounded))
        .map_err(unavailable)?
        .take(limit)
    {
        let (key, value) = entry.map_err(unavailable)?;
        items.push(read(key.value(), value)?);
        last = Some(key.value().to_string());
    }
    let next = if items.len() == limit { last } else { None };
    Ok(RecordPage { items, next })
}

fn contact_id(raw: &str) -> Result<ContactId, StoreError> {
    ContactId::parse(raw).map_err(|_| StoreError::Corrupt("a contact key".into()))
}

fn read_contact_record(
    events: &redb::ReadOnlyTable<(&'static str, u64), &'static [u8]>,
    id: &str,
    body: &[u8],
) -> Result<ContactRead, StoreError> {
    let unreadable = |reason: String| {
        Ok(Err(UnreadableContact {
            id: contact_id(id)?,
            reason,
        }))
    };
    let contact: Contact = match decode(body) {
        Ok(contact) => contact,
        Err(error) => return unreadable(format!("the contact: {error}")),
    };
    let mut read = Vec::new();
    for entry in events
        .range((id, 0)..=(id, u64::MAX))
        .map_err(unavailable)?
    {
        let (key, value) = entry.map_err(unavailable)?;
        match decode::<Event>(value.value()) {
            Ok(event) => read.push(event),
            Err(error) => return unreadable(format!("event {}: {error}", key.value().1)),
        }
    }
    Ok(Ok(ContactRecord {
        contact,
        events: read,
    }))
}

#[async_trait::async_trait]
impl BackupView for EmbeddedView {
    fn kind(&self) -> StoreKind {
        StoreKind::Embedded
    }

    fn consistency(&self) -> Consistency {
        Consistency::Snapshot
    }

    async fn contacts(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<ContactRead>, StoreError> {
        self.read(move |txn| {
            let contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
            let events = txn.open_table(EVENTS).map_err(unavailable)?;
            page_after(&contacts, cursor.as_deref(), limit, |id, body| {
                read_contact_record(&events, id, body.value())
            })
        })
        .await
    }

    async fn tombstones(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<(ContactId, Tombstone)>, StoreError> {
        self.read(move |txn| {
            let table = txn.open_table(TOMBSTONES).map_err(unavailable)?;
            page_after(&table, cursor.as_deref(), limit, |id, body| {
                Ok((contact_id(id)?, decode(body.value())?))
            })
        })
        .await
    }

    async fn mail_allowances(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<MailAllowance>, StoreError> {
        self.read(move |txn| {
            let table = txn.open_table(MAIL_ALLOWANCE).map_err(unavailable)?;
            page_after(&table, cursor.as_deref(), limit, |id, body| {
                let taken: Vec<u64> = decode(body.value())?;
                Ok(MailAllowance {
                    contact_id: contact_id(id)?,
                    taken_at: taken
                        .into_iter()
                        .map(from_millis)
                        .collect::<Result<_, _>>()?,
                })
            })
        })
        .await
    }

    async fn jobs(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<JobRecord>, StoreError> {
        self.read(move |txn| {
            let table = txn.open_table(JOBS).map_err(unavailable)?;
            page_after(&table, cursor.as_deref(), limit, |_, body| {
                let stored: StoredJob = decode(body.value())?;
                let state = if stored.dead {
                    JobState::Dead
                } else {
                    JobState::Queued {
                        due: from_millis(stored.due_ms)?,
                    }
                };
                Ok(JobRecord {
                    job: stored.job,
                    state,
                })
            })
        })
        .await
    }

    async fn endpoint_states(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<(String, EndpointState)>, StoreError> {
        self.read(move |txn| {
            let table = txn.open_table(ENDPOINTS).map_err(unavailable)?;
            page_after(&table, cursor.as_deref(), limit, |id, body| {
                Ok((id.to_string(), decode(body.value())?))
            })
        })
        .await
    }
}

fn from_millis(ms: u64) -> Result<DateTime<Utc>, StoreError> {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| StoreError::Corrupt(format!("a stored time of {ms} ms")))
}

/// Every table of the store, to tell whether it is empty.
fn is_empty_in(txn: &ReadTransaction) -> Result<bool, StoreError> {
    fn empty<K: redb::Key + 'static, V: redb::Value + 'static>(
        txn: &ReadTransaction,
        table: TableDefinition<K, V>,
    ) -> Result<bool, StoreError> {
        match txn.open_table(table) {
            Ok(table) => table.is_empty().map_err(unavailable),
            // Created at open; a table that is missing holds nothing either.
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(true),
            Err(error) => Err(StoreError::Unavailable(format!(
                "table {}: {error}",
                table.name()
            ))),
        }
    }
    let checks = [
        empty(txn, CONTACTS)?,
        empty(txn, EVENTS)?,
        empty(txn, TOMBSTONES)?,
        empty(txn, JOBS)?,
        empty(txn, JOBS_BY_CONTACT)?,
        empty(txn, QUEUE)?,
        empty(txn, EXPIRY)?,
        empty(txn, EXPIRY_BY_PENDING)?,
        empty(txn, COUNTERS)?,
        empty(txn, super::FUNNEL)?,
        empty(txn, INACTIVE)?,
        empty(txn, INACTIVE_BY_CONTACT)?,
        empty(txn, MAIL_ALLOWANCE)?,
        empty(txn, ENDPOINTS)?,
        empty(txn, super::member_index::MEMBER_INDEX)?,
        empty(txn, RESTORE_MARK)?,
    ];
    Ok(checks.iter().all(|empty| *empty))
}

fn restore_in(txn: &WriteTransaction, batch: &RestoreBatch) -> Result<(), StoreError> {
    for change in &batch.contacts {
        apply_in(txn, change)?;
    }
    {
        let mut tombstones = txn.open_table(TOMBSTONES).map_err(unavailable)?;
        for (id, tombstone) in &batch.tombstones {
            tombstones
                .insert(id.as_str(), encode(tombstone)?.as_slice())
                .map_err(unavailable)?;
        }
    }
    {
        let mut allowances = txn.open_table(MAIL_ALLOWANCE).map_err(unavailable)?;
        for (allowance, _) in &batch.mail_allowances {
            // The embedded store drops old entries when the next mail is taken, so the
            // expiry needs no entry of its own here.
            let taken: Vec<u64> = allowance.taken_at.iter().map(|at| millis(*at)).collect();
            allowances
                .insert(allowance.contact_id.as_str(), encode(&taken)?.as_slice())
                .map_err(unavailable)?;
        }
    }
    {
        let mut jobs = txn.open_table(JOBS).map_err(unavailable)?;
        let mut by_contact = txn.open_table(JOBS_BY_CONTACT).map_err(unavailable)?;
        let mut queue = txn.open_table(QUEUE).map_err(unavailable)?;
        for record in &batch.jobs {
            let job_id = record.job.id.to_string();
            let (due_ms, dead) = match record.state {
                JobState::Queued { due } => (millis(due), false),
                JobState::Dead => (millis(record.job.created_at), true),
            };
            let stored = StoredJob {
                job: record.job.clone(),
                due_ms,
                dead,
            };
            jobs.insert(job_id.as_str(), encode(&stored)?.as_slice())
                .map_err(unavailable)?;
            by_contact
                .insert((record.job.contact_id.as_str(), job_id.as_str()), ())
                .map_err(unavailable)?;
            if !dead {
                queue
                    .insert((due_ms, job_id.as_str()), ())
                    .map_err(unavailable)?;
            }
        }
    }
    let mut endpoints = txn.open_table(ENDPOINTS).map_err(unavailable)?;
    for (endpoint, state) in &batch.endpoint_states {
        endpoints
            .insert(endpoint.as_str(), encode(state)?.as_slice())
            .map_err(unavailable)?;
    }
    Ok(())
}

pub(super) async fn view(store: &EmbeddedStore) -> Result<Box<dyn BackupView>, StoreError> {
    store
        .blocking(|db| Ok(Box::new(EmbeddedView::open(db)?) as Box<dyn BackupView>))
        .await
}

pub(super) async fn is_empty(store: &EmbeddedStore) -> Result<bool, StoreError> {
    store
        .blocking(|db| is_empty_in(&db.begin_read().map_err(unavailable)?))
        .await
}

pub(super) async fn restore(store: &EmbeddedStore, batch: RestoreBatch) -> Result<(), StoreError> {
    store
        .blocking(move |db| write(db, |txn| restore_in(txn, &batch)))
        .await
}

pub(super) async fn restore_mark(store: &EmbeddedStore) -> Result<Option<RestoreMark>, StoreError> {
    store
        .blocking(|db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = match txn.open_table(RESTORE_MARK) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(error) => return Err(unavailable(error)),
            };
            let value = table.get(MARK_KEY).map_err(unavailable)?;
            value.map(|v| decode(v.value())).transpose()
        })
        .await
}

pub(super) async fn set_restore_mark(
    store: &EmbeddedStore,
    mark: Option<RestoreMark>,
) -> Result<(), StoreError> {
    store
        .blocking(move |db| {
            write(db, |txn| {
                let mut table = txn.open_table(RESTORE_MARK).map_err(unavailable)?;
                match &mark {
                    Some(mark) => {
                        table
                            .insert(MARK_KEY, encode(mark)?.as_slice())
                            .map_err(unavailable)?;
                    }
                    None => {
                        table.remove(MARK_KEY).map_err(unavailable)?;
                    }
                }
                Ok(())
            })
        })
        .await
}
