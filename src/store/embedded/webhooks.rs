//! The webhook endpoints' delivery state (one row per endpoint) and the webhook backlog.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};

use super::jobs::StoredJob;
use super::{unavailable, write_with, EmbeddedStore, ENDPOINTS, JOBS};
use crate::store::codec::{decode, encode};
use crate::store::{EndpointAttempt, EndpointState, OutboxDepth, StoreError};

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

pub(super) async fn webhook_backlog(
    store: &EmbeddedStore,
) -> Result<BTreeMap<String, OutboxDepth>, StoreError> {
    store
        .blocking(|db| {
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

pub(super) async fn endpoint_state(
    store: &EmbeddedStore,
    endpoint: &str,
) -> Result<EndpointState, StoreError> {
    let endpoint = endpoint.to_string();
    store
        .blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(ENDPOINTS).map_err(unavailable)?;
            read_endpoint_state(&table, &endpoint)
        })
        .await
}

pub(super) async fn record_endpoint_attempt(
    store: &EmbeddedStore,
    endpoint: &str,
    attempt: EndpointAttempt,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let endpoint = endpoint.to_string();
    store
        .blocking(move |db| {
            // Not worth a disk sync per delivery: a crash loses at most the latest
            // attempt's timestamps, and a lost 410 is answered again by the endpoint.
            update_endpoint_state(db, Durability::None, &endpoint, |state| {
                state.after(attempt, at)
            })
        })
        .await
}

pub(super) async fn enable_endpoint(
    store: &EmbeddedStore,
    endpoint: &str,
) -> Result<(), StoreError> {
    let endpoint = endpoint.to_string();
    store
        .blocking(move |db| {
            update_endpoint_state(db, Durability::Immediate, &endpoint, |state| {
                EndpointState {
                    disabled_at: None,
                    ..state
                }
            })
        })
        .await
}
