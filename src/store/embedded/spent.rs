//! Single-use records on redb: a key spent until its expiry (a solved signup challenge),
//! with the expired ones swept as new ones are written.

use chrono::{DateTime, Utc};
use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{unavailable, write_volatile, EmbeddedStore};
use crate::store::codec::millis;
use crate::store::StoreError;

/// key → expiry in ms.
pub(super) const SPENT: TableDefinition<&str, u64> = TableDefinition::new("spent");
/// (expiry in ms, key) → (): the records by expiry, for the sweep.
pub(super) const SPENT_BY_EXPIRY: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("spent_by_expiry");

/// Expired records removed per write: each write removes more than it adds, so the table
/// stays as small as the records that are still live, and no write does much work.
const SWEEP_PER_WRITE: usize = 16;

pub(super) async fn spend_once(
    store: &EmbeddedStore,
    key: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let key = key.to_string();
    let now_ms = millis(now);
    let expires_ms = millis(expires_at);
    // Volatile: the record reaches the disk with the next durable commit (the signup's
    // own). A crash in between forgets it, which lets one more use of the same solution
    // through before it expires anyway; it saves an fsync per signup.
    store
        .blocking(move |db| {
            write_volatile(db, |txn| {
                sweep(txn, now_ms)?;
                let mut spent = txn.open_table(SPENT).map_err(unavailable)?;
                let mut by_expiry = txn.open_table(SPENT_BY_EXPIRY).map_err(unavailable)?;
                let previous = spent
                    .get(key.as_str())
                    .map_err(unavailable)?
                    .map(|v| v.value());
                if let Some(previous) = previous {
                    if previous > now_ms {
                        return Ok(false);
                    }
                    by_expiry
                        .remove((previous, key.as_str()))
                        .map_err(unavailable)?;
                }
                if expires_ms <= now_ms {
                    // Already expired: spent and gone at once, as on Redis.
                    spent.remove(key.as_str()).map_err(unavailable)?;
                    return Ok(true);
                }
                spent
                    .insert(key.as_str(), expires_ms)
                    .map_err(unavailable)?;
                by_expiry
                    .insert((expires_ms, key.as_str()), ())
                    .map_err(unavailable)?;
                Ok(true)
            })
        })
        .await
}

/// Removes up to [`SWEEP_PER_WRITE`] records that expired at or before `now_ms`.
fn sweep(txn: &WriteTransaction, now_ms: u64) -> Result<(), StoreError> {
    let mut spent = txn.open_table(SPENT).map_err(unavailable)?;
    let mut by_expiry = txn.open_table(SPENT_BY_EXPIRY).map_err(unavailable)?;
    let expired: Vec<(u64, String)> = by_expiry
        .range((0, "")..=(now_ms, "\u{10FFFF}"))
        .map_err(unavailable)?
        .take(SWEEP_PER_WRITE)
        .map(|entry| {
            entry
                .map(|(k, _)| (k.value().0, k.value().1.to_string()))
                .map_err(unavailable)
        })
        .collect::<Result<_, _>>()?;
    for (expires, key) in expired {
        by_expiry
            .remove((expires, key.as_str()))
            .map_err(unavailable)?;
        spent.remove(key.as_str()).map_err(unavailable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use redb::{ReadableDatabase, ReadableTableMetadata};

    use super::*;

    fn records(store: &EmbeddedStore) -> (u64, u64) {
        let txn = super::super::shared(&store.db).begin_read().unwrap();
        (
            txn.open_table(SPENT).unwrap().len().unwrap(),
            txn.open_table(SPENT_BY_EXPIRY).unwrap().len().unwrap(),
        )
    }

    #[tokio::test]
    async fn expired_records_are_swept_by_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("optin.redb")).unwrap();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for n in 0..40 {
            let key = format!("old-{n}");
            assert!(spend_once(&store, &key, now + Duration::seconds(60), now)
                .await
                .unwrap());
        }
        assert_eq!(records(&store), (40, 40));

        // Past their expiry, each write sweeps a few, until none is left.
        let later = now + Duration::seconds(61);
        for n in 0..3 {
            let key = format!("new-{n}");
            assert!(
                spend_once(&store, &key, later + Duration::seconds(60), later)
                    .await
                    .unwrap()
            );
        }
        assert_eq!(records(&store), (3, 3), "only the live records remain");
        assert!(
            spend_once(&store, "old-0", later + Duration::seconds(60), later)
                .await
                .unwrap(),
            "an expired key can be spent again"
        );
        assert!(
            !spend_once(&store, "new-0", later + Duration::seconds(60), later)
                .await
                .unwrap()
        );
    }
}
