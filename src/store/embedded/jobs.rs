//! The outbox on redb: jobs by id, a queue by due time, an index by contact so that an
//! erasure touches only its own jobs, leases, dead letters, and completions that share
//! one disk sync.

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};
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

/// A completed job's id, and whom to tell once its removal is committed.
pub(super) type Completion = (String, tokio::sync::oneshot::Sender<Result<(), StoreError>>);

/// Completed jobs waiting for the commit that removes them.
pub(super) type Completions = std::sync::Mutex<Vec<Completion>>;

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

pub(super) fn lock_completions(
    completions: &Completions,
) -> std::sync::MutexGuard<'_, Vec<Completion>> {
    // Nothing panics while holding it; a poisoned list must not stop the outbox.
    completions
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes every queued completed job in one durable commit and tells each caller.
pub(super) fn commit_completions(db: &Database, completions: &Completions) {
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

/// Group commit: every fsync costs about a millisecond, and one per sent mail capped
/// the drain near that rate. Completions that arrive while a commit is under way
/// wait for the next one and share it; each call still returns only once its job's
/// removal is on disk.
pub(super) async fn complete_job(store: &EmbeddedStore, job: &OutboxJob) -> Result<(), StoreError> {
    let (done, result) = tokio::sync::oneshot::channel();
    let leads = {
        let mut pending = lock_completions(&store.completions);
        pending.push((job.id.to_string(), done));
        // The first to queue commits for everyone queued until its transaction starts.
        pending.len() == 1
    };
    if leads {
        let completions = store.completions.clone();
        store
            .blocking(move |db| {
                commit_completions(db, &completions);
                Ok(())
            })
            .await?;
    }
    result
        .await
        .map_err(|_| StoreError::Unavailable("the completing commit was abandoned".into()))?
}

pub(super) async fn retry_job_later(
    store: &EmbeddedStore,
    job: &OutboxJob,
    due: DateTime<Utc>,
) -> Result<(), StoreError> {
    let job = job.clone();
    store
        .blocking(move |db| {
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

pub(super) async fn dead_letter_job(
    store: &EmbeddedStore,
    job: &OutboxJob,
) -> Result<(), StoreError> {
    let job = job.clone();
    store
        .blocking(move |db| {
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
