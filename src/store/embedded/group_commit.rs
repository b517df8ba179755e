//! Group commit: writers that arrive while a durable commit is under way share the next
//! one, so one fsync (about a millisecond here) serves many changes instead of capping
//! the store at one change per fsync.
//!
//! Each caller is still answered only once its own write is on disk: "acknowledged"
//! keeps meaning "durable". The first writer to queue leads: it waits for redb's write
//! lock, takes everything queued by then, applies it in one transaction and commits.
//!
//! A failed write must write nothing, and redb cannot take a savepoint inside a
//! transaction that has written. So when any write of a group fails (a version
//! conflict, say), the group's transaction is dropped unwritten and each of its writes
//! runs again alone, in its own transaction, and gets its own answer.

use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;

use super::unavailable;
use crate::store::StoreError;

/// One queued write. `Fn`, not `FnOnce`: it may run twice (in a group, then alone).
type Write = Box<dyn Fn(&WriteTransaction) -> Result<(), StoreError> + Send>;

struct Queued {
    write: Write,
    done: oneshot::Sender<Result<(), StoreError>>,
}

#[derive(Default)]
pub(super) struct GroupCommit {
    queue: Mutex<Vec<Queued>>,
}

impl GroupCommit {
    /// Runs `write` in a durable transaction, possibly shared with other writers, and
    /// answers what it returned once that transaction is on disk.
    pub(super) async fn write<T, F>(
        self: &Arc<Self>,
        db: &super::SharedDb,
        write: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let output: Arc<Mutex<Option<T>>> = Arc::default();
        let slot = output.clone();
        let write: Write = Box::new(move |txn| {
            let value = write(txn)?;
            *lock(&slot) = Some(value);
            Ok(())
        });
        let (done, answer) = oneshot::channel();
        let leads = {
            let mut queue = lock(&self.queue);
            queue.push(Queued { write, done });
            queue.len() == 1
        };
        if leads {
            let group = self.clone();
            let db = db.clone();
            tokio::task::spawn_blocking(move || group.commit_queued(&super::shared(&db)))
                .await
                .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?;
        }
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the shared commit was abandoned".into()))??;
        let value = lock(&output).take();
        value.ok_or_else(|| StoreError::Corrupt("a committed write left no answer".into()))
    }

    /// Commits every write queued by the time the write lock is ours, and answers each.
    fn commit_queued(&self, db: &Database) {
        let txn = db.begin_write().map_err(unavailable);
        // Taken once the write lock is ours, so writes queued meanwhile share this commit.
        let group = std::mem::take(&mut *lock(&self.queue));
        let together = txn.and_then(|txn| {
            for queued in &group {
                (queued.write)(&txn)?;
            }
            txn.commit().map_err(unavailable)
        });
        match together {
            Ok(()) => group.into_iter().for_each(|q| answer(q.done, Ok(()))),
            Err(error) if group.len() == 1 => group
                .into_iter()
                .for_each(|q| answer(q.done, Err(error.clone()))),
            Err(_) => {
                for queued in group {
                    let alone = db.begin_write().map_err(unavailable).and_then(|txn| {
                        (queued.write)(&txn)?;
                        txn.commit().map_err(unavailable)
                    });
                    answer(queued.done, alone);
                }
            }
        }
    }
}

/// A caller that gave up waiting no longer needs its answer.
fn answer(done: oneshot::Sender<Result<(), StoreError>>, result: Result<(), StoreError>) {
    let _ = done.send(result);
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one must not stop writes.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
