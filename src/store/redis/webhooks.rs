//! Webhook bookkeeping on Redis: queueing a job outside a contact change, one contact's
//! jobs, the backlog per endpoint, and each endpoint's delivery state (one small hash per endpoint).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use ::redis::Script;
use chrono::{DateTime, TimeZone, Utc};

use super::connection::{parse, Redis};
use super::keys::{self, Shard};
use crate::domain::{ContactId, OutboxJob};
use crate::store::codec::{decode, encode, millis};
use crate::store::{EndpointAttempt, EndpointState, OutboxDepth, StoreError};

static QUEUE_JOB: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("queue_job.lua")));

const DISABLED_AT: &str = "disabled_at";
const LAST_SUCCESS_AT: &str = "last_success_at";
const LAST_FAILURE_AT: &str = "last_failure_at";
const LAST_STATUS: &str = "last_status";

pub(super) async fn queue_job(redis: &Redis, job: &OutboxJob) -> Result<(), StoreError> {
    let shard = Shard::of(&job.contact_id);
    let mut invocation = QUEUE_JOB.prepare_invoke();
    invocation
        .key(shard.jobs())
        .key(shard.queue())
        .key(shard.contact_jobs(&job.contact_id))
        .arg(job.id.to_string())
        .arg(encode(job)?)
        .arg(millis(job.created_at));
    let _: i64 = redis.invoke(invocation).await?;
    Ok(())
}

pub(super) async fn contact_jobs(
    redis: &Redis,
    id: &ContactId,
) -> Result<Vec<OutboxJob>, StoreError> {
    let shard = Shard::of(id);
    let mut members = ::redis::cmd("SMEMBERS");
    members.arg(shard.contact_jobs(id));
    let job_ids: Vec<String> = redis.query(members).await?;
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut hmget = ::redis::cmd("HMGET");
    hmget.arg(shard.jobs()).arg(&job_ids);
    let bodies: Vec<Option<Vec<u8>>> = redis.query(hmget).await?;
    bodies
        .into_iter()
        .flatten()
        .map(|json| decode(&json))
        .collect()
}

pub(super) async fn backlog(redis: &Redis) -> Result<BTreeMap<String, OutboxDepth>, StoreError> {
    let bodies = redis
        .query_every_shard(|shard| {
            let mut hvals = ::redis::cmd("HVALS");
            hvals.arg(shard.jobs());
            hvals
        })
        .await?;
    let dead = redis
        .query_every_shard(|shard| {
            let mut members = ::redis::cmd("ZRANGE");
            members.arg(shard.dead()).arg(0).arg(-1);
            members
        })
        .await?;
    let mut dead_ids = HashSet::new();
    for (_, ids) in dead {
        dead_ids.extend(parse::<Vec<String>>(ids)?);
    }
    let mut backlog: BTreeMap<String, OutboxDepth> = BTreeMap::new();
    for (_, values) in bodies {
        for json in parse::<Vec<Vec<u8>>>(values)? {
            let job: OutboxJob = decode(&json)?;
            if let Some(webhook) = job.as_webhook() {
                let depth = backlog.entry(webhook.endpoint.clone()).or_default();
                if dead_ids.contains(&job.id.to_string()) {
                    depth.dead += 1;
                } else {
                    depth.queued += 1;
                }
            }
        }
    }
    Ok(backlog)
}

pub(super) async fn state(redis: &Redis, endpoint: &str) -> Result<EndpointState, StoreError> {
    let mut hgetall = ::redis::cmd("HGETALL");
    hgetall.arg(keys::webhook_endpoint(endpoint));
    let fields: HashMap<String, String> = redis.query(hgetall).await?;
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        fields
            .get(name)
            .map(|ms| {
                ms.parse::<i64>()
                    .ok()
                    .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                    .ok_or_else(|| StoreError::Corrupt(format!("webhook state field {name}")))
            })
            .transpose()
    };
    Ok(EndpointState {
        disabled_at: time(DISABLED_AT)?,
        last_success_at: time(LAST_SUCCESS_AT)?,
        last_failure_at: time(LAST_FAILURE_AT)?,
        last_status: fields.get(LAST_STATUS).and_then(|s| s.parse().ok()),
    })
}

/// Writes only the fields the attempt changes (see [`EndpointState::after`]), each on
/// its own, so that concurrent attempts from several instances never undo a 410.
pub(super) async fn record_attempt(
    redis: &Redis,
    endpoint: &str,
    attempt: EndpointAttempt,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let changed = EndpointState::default().after(attempt, at);
    let mut set: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        (DISABLED_AT, changed.disabled_at),
        (LAST_SUCCESS_AT, changed.last_success_at),
        (LAST_FAILURE_AT, changed.last_failure_at),
    ] {
        if let Some(at) = value {
            set.push((name, millis(at).to_string()));
        }
    }
    let key = keys::webhook_endpoint(endpoint);
    if let Some(status) = changed.last_status {
        set.push((LAST_STATUS, status.to_string()));
    } else {
        let mut hdel = ::redis::cmd("HDEL");
        hdel.arg(&key).arg(LAST_STATUS);
        let _: i64 = redis.query(hdel).await?;
    }
    let mut hset = ::redis::cmd("HSET");
    hset.arg(&key);
    for (name, value) in set {
        hset.arg(name).arg(value);
    }
    let _: i64 = redis.query(hset).await?;
    Ok(())
}

pub(super) async fn enable(redis: &Redis, endpoint: &str) -> Result<(), StoreError> {
    let mut hdel = ::redis::cmd("HDEL");
    hdel.arg(keys::webhook_endpoint(endpoint)).arg(DISABLED_AT);
    let _: i64 = redis.query(hdel).await?;
    Ok(())
}

/// Writes a state read by a backup: each field it has. A state with none is the default,
/// which needs no key.
pub(super) async fn restore_state(
    redis: &Redis,
    endpoint: &str,
    state: &EndpointState,
) -> Result<(), StoreError> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        (DISABLED_AT, state.disabled_at),
        (LAST_SUCCESS_AT, state.last_success_at),
        (LAST_FAILURE_AT, state.last_failure_at),
    ] {
        if let Some(at) = value {
            fields.push((name, millis(at).to_string()));
        }
    }
    if let Some(status) = state.last_status {
        fields.push((LAST_STATUS, status.to_string()));
    }
    if fields.is_empty() {
        return Ok(());
    }
    let mut hset = ::redis::cmd("HSET");
    hset.arg(keys::webhook_endpoint(endpoint));
    for (name, value) in fields {
        hset.arg(name).arg(value);
    }
    let _: i64 = redis.query(hset).await?;
    Ok(())
}
