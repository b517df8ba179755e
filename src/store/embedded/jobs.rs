//! The outbox on redb: jobs by id, a queue by due time, an index by contact so that an
//! erasure touches only its own jobs, leases and dead letters.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};
use uuid::Uuid;

use super::{unavailable, write, write_volatile, EmbeddedStore, JOBS, JOBS_BY_CONTACT, QUEUE};
use crate::domain::{ContactId, OutboxJob};
use crate::store::codec::{dead_letter_order, decode, encode, millis};
use crate::store::{OutboxDepth, StoreError};

#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct StoredJob {
    pub(super) job: OutboxJob,
    pub(super) due_ms: u64,
    pub(super) dead: bool,
}

/// Removes the contact's jobs (queued, leased or dead), found through its index entries.
/// Queues a new job, due at its creation time.
pub(super) fn insert_job(
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

pub(super) fn delete_jobs_of(
    jobs: &mut redb::Table<&str, &[u8]>,
    jobs_by_contact: &mut redb::Table<(&str, &str), ()>,
    queue: &mut redb::Table<(u64, &str), ()>,
    contact: &ContactId,
) -> Result<(), StoreError> {
    let id = contact.as_str();
    // Job ids are hyphenated UUIDs, so every one sorts between "" and "~".
    let doomed: Vec<String> = jobs_by_contact
        .extract_from_if((id, "")..=(id, "~"), |_, ()| true)
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
pub(super) fn move_job(
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

/// Removes a job and its queue entry (a dead-lettered job has none).
pub(super) fn remove_job(txn: &WriteTransaction, job_id: &str) -> Result<(), StoreError> {
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

pub(super) async fn claim_job(
    store: &EmbeddedStore,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<OutboxJob>, StoreError> {
    // A claim lost in a crash leaves the job due, as the end of its lease would: the
    // process that held it is gone either way. So it need not wait for the disk.
    store
        .blocking(move |db| {
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

/// Shares its commit with other writers (see [`super::group_commit`]): one fsync per
/// sent mail once capped the drain near a thousand mails a second. Returns only once
/// the job's removal is on disk.
pub(super) async fn complete_job(store: &EmbeddedStore, job: &OutboxJob) -> Result<(), StoreError> {
    let job_id = job.id.to_string();
    store
        .group
        .write(&store.db, move |txn| remove_job(txn, &job_id))
        .await
}

pub(super) async fn retry_job_later(
    store: &EmbeddedStore,
    job: &OutboxJob,
    due: DateTime<Utc>,
) -> Result<(), StoreError> {
    store_job_as(store, job, move |s| s.due_ms = millis(due)).await
}

pub(super) async fn dead_letter_job(
    store: &EmbeddedStore,
    job: &OutboxJob,
) -> Result<(), StoreError> {
    store_job_as(store, job, |s| s.dead = true).await
}

/// Stores the job as given (attempts, last error), then `update` says where it goes.
async fn store_job_as(
    store: &EmbeddedStore,
    job: &OutboxJob,
    update: impl FnOnce(&mut StoredJob) + Send + 'static,
) -> Result<(), StoreError> {
    let job = job.clone();
    store
        .blocking(move |db| {
            write(db, |txn| {
                move_job(txn, &job, |s| {
                    s.job = job.clone();
                    update(s);
                })
                .map(drop)
            })
        })
        .await
}

pub(super) async fn dead_jobs(
    store: &EmbeddedStore,
    limit: usize,
) -> Result<Vec<OutboxJob>, StoreError> {
    store
        .blocking(move |db| {
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

pub(super) async fn revive_dead_job(
    store: &EmbeddedStore,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    store
        .blocking(move |db| {
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

pub(super) async fn contact_jobs(
    store: &EmbeddedStore,
    id: &ContactId,
) -> Result<Vec<OutboxJob>, StoreError> {
    let id = id.clone();
    store
        .blocking(move |db| {
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

pub(super) async fn queue_job(store: &EmbeddedStore, job: &OutboxJob) -> Result<(), StoreError> {
    let job = job.clone();
    store
        .blocking(move |db| {
            write(db, |txn| {
                let mut jobs = txn.open_table(JOBS).map_err(unavailable)?;
                let mut by_contact = txn.open_table(JOBS_BY_CONTACT).map_err(unavailable)?;
                let mut queue = txn.open_table(QUEUE).map_err(unavailable)?;
                insert_job(&mut jobs, &mut by_contact, &mut queue, &job)
            })
        })
        .await
}

pub(super) async fn outbox_depth(store: &EmbeddedStore) -> Result<OutboxDepth, StoreError> {
    store
        .blocking(|db| {
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
