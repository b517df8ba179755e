//! The outbox on Redis: claiming due jobs across 256 shard queues without scanning them
//! all on every claim, and the job scripts that move one job between queue, dead letters
//! and nowhere, atomically on its shard.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use ::redis::{Cmd, Script, Value};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::connection::{hget, merge_scored, parse, Redis};
use super::keys::{Shard, SHARDS};
use crate::domain::OutboxJob;
use crate::store::codec::{dead_letter_order, decode, encode, millis};
use crate::store::StoreError;

static CLAIM_JOB: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("claim_job.lua")));
static COMPLETE_JOB: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("complete_job.lua")));
static RETRY_JOB: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retry_job.lua")));
static DEAD_LETTER_JOB: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("dead_letter_job.lua")));
static REVIVE_JOB: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("revive_job.lua")));

/// Where this instance looks for due jobs.
pub(super) struct Outbox {
    /// Where the next claim starts looking, so that instances do not all drain shard 0.
    claim_offset: AtomicUsize,
    /// Shards known to have had due jobs (written here, or seen in the last scan): a
    /// claim tries these before it scans all 256 queues.
    busy_shards: std::sync::Mutex<BTreeSet<Shard>>,
}

impl Outbox {
    pub(super) fn new() -> Self {
        Self {
            // Instances started together must not all begin at the same shard.
            claim_offset: AtomicUsize::new(
                (Uuid::new_v4().as_u128() % u128::from(SHARDS)) as usize,
            ),
            busy_shards: std::sync::Mutex::default(),
        }
    }

    /// Remembers that `shard` got new jobs, so the next claim looks there first.
    pub(super) fn mark_busy(&self, shard: Shard) {
        self.busy().insert(shard);
    }

    fn busy(&self) -> std::sync::MutexGuard<'_, BTreeSet<Shard>> {
        self.busy_shards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs the claim script on one shard.
    async fn claim_in(
        redis: &Redis,
        shard: Shard,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Option<OutboxJob>, StoreError> {
        let mut invocation = CLAIM_JOB.prepare_invoke();
        invocation
            .key(shard.queue())
            .key(shard.jobs())
            .arg(now_ms)
            .arg(lease_ms);
        let claimed: Option<Vec<u8>> = redis.invoke(invocation).await?;
        claimed.map(|json| decode(&json)).transpose()
    }

    pub(super) async fn claim(
        &self,
        redis: &Redis,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<OutboxJob>, StoreError> {
        let (now_ms, lease_ms) = (millis(now), millis(lease_until));
        // Shards that had work first: no scan while a burst of mail drains.
        let hinted: Vec<Shard> = self.busy().iter().copied().collect();
        for shard in hinted {
            match Self::claim_in(redis, shard, now_ms, lease_ms).await? {
                Some(job) => return Ok(Some(job)),
                None => {
                    self.busy().remove(&shard);
                }
            }
        }
        // One cheap look at every shard (one round trip on a single Redis) finds the
        // shards with due jobs; only those run the claim script, one at a time, so a
        // claim never takes more jobs than it returns.
        let first = self.claim_offset.fetch_add(1, Ordering::Relaxed) % usize::from(SHARDS);
        let shards: Vec<Shard> = Shard::all_from(first).collect();
        let due_counts = redis
            .query_each(
                shards
                    .iter()
                    .map(|shard| {
                        let mut zcount = ::redis::cmd("ZCOUNT");
                        zcount.arg(shard.queue()).arg("-inf").arg(now_ms);
                        (*shard, zcount)
                    })
                    .collect(),
            )
            .await?;
        let mut due_shards = Vec::new();
        for (shard, due) in shards.into_iter().zip(due_counts) {
            if parse::<u64>(due)? > 0 {
                due_shards.push(shard);
            }
        }
        self.busy().extend(due_shards.iter().copied());
        for shard in due_shards {
            if let Some(job) = Self::claim_in(redis, shard, now_ms, lease_ms).await? {
                return Ok(Some(job));
            }
            // Another worker took it between our look and our claim: try the next shard.
            self.busy().remove(&shard);
        }
        Ok(None)
    }
}

/// Runs a job script on the job's shard; true when the job was still there.
async fn run_job_script(
    redis: &Redis,
    script: &Script,
    keys: &[String],
    args: &[Vec<u8>],
) -> Result<bool, StoreError> {
    let mut invocation = script.prepare_invoke();
    for key in keys {
        invocation.key(key);
    }
    for arg in args {
        invocation.arg(arg.as_slice());
    }
    let done: i64 = redis.invoke(invocation).await?;
    Ok(done == 1)
}

fn id_arg(id: Uuid) -> Vec<u8> {
    id.to_string().into_bytes()
}

fn millis_arg(at: DateTime<Utc>) -> Vec<u8> {
    millis(at).to_string().into_bytes()
}

pub(super) async fn complete(redis: &Redis, job: &OutboxJob) -> Result<(), StoreError> {
    let shard = Shard::of(&job.contact_id);
    let keys = [
        shard.jobs(),
        shard.queue(),
        shard.dead(),
        shard.contact_jobs(&job.contact_id),
    ];
    run_job_script(redis, &COMPLETE_JOB, &keys, &[id_arg(job.id)])
        .await
        .map(drop)
}

pub(super) async fn retry_later(
    redis: &Redis,
    job: &OutboxJob,
    due: DateTime<Utc>,
) -> Result<(), StoreError> {
    let shard = Shard::of(&job.contact_id);
    let keys = [shard.jobs(), shard.queue(), shard.dead()];
    let args = [id_arg(job.id), encode(job)?, millis_arg(due)];
    run_job_script(redis, &RETRY_JOB, &keys, &args)
        .await
        .map(drop)
}

/// Dead letters are scored by the job's creation time: the order they are listed in, the
/// same on both stores, and known without reading a clock.
pub(super) async fn dead_letter(redis: &Redis, job: &OutboxJob) -> Result<(), StoreError> {
    let shard = Shard::of(&job.contact_id);
    let keys = [shard.jobs(), shard.queue(), shard.dead()];
    let (created_ms, _) = dead_letter_order(job);
    let args = [
        id_arg(job.id),
        encode(job)?,
        created_ms.to_string().into_bytes(),
    ];
    run_job_script(redis, &DEAD_LETTER_JOB, &keys, &args)
        .await
        .map(drop)
}

pub(super) async fn dead_jobs(redis: &Redis, limit: usize) -> Result<Vec<OutboxJob>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let per_shard = redis
        .query_every_shard(|shard| {
            let mut range = ::redis::cmd("ZRANGE");
            range
                .arg(shard.dead())
                .arg(0)
                .arg(limit - 1)
                .arg("WITHSCORES");
            range
        })
        .await?;
    let dead = merge_scored(per_shard, limit)?;
    let commands = dead
        .iter()
        .map(|(shard, id)| (*shard, hget(shard.jobs(), id)))
        .collect();
    let bodies = redis.query_each(commands).await?;
    let mut jobs: Vec<OutboxJob> = Vec::with_capacity(bodies.len());
    for body in bodies {
        // A dead letter erased in between is simply no longer listed.
        if let Some(json) = parse::<Option<Vec<u8>>>(body)? {
            jobs.push(decode(&json)?);
        }
    }
    // Dead letters written before they were scored by creation time are scored by when
    // they died; the page still comes in the promised order.
    jobs.sort_by_key(dead_letter_order);
    Ok(jobs)
}

pub(super) async fn revive(
    redis: &Redis,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let job_id = id.to_string();
    // Only the job id is known, not its contact: ask every shard whether it holds it.
    let bodies: Vec<(Shard, Cmd)> = Shard::all()
        .map(|shard| (shard, hget(shard.jobs(), &job_id)))
        .collect();
    let mut dead_checks: Vec<(Shard, Cmd)> = Shard::all()
        .map(|shard| {
            let mut zscore = ::redis::cmd("ZSCORE");
            zscore.arg(shard.dead()).arg(&job_id);
            (shard, zscore)
        })
        .collect();
    dead_checks.extend(bodies);
    let values = redis.query_each(dead_checks).await?;
    let (dead_flags, bodies) = values.split_at(usize::from(SHARDS).min(values.len()));
    let found = Shard::all()
        .zip(dead_flags.iter().zip(bodies))
        .find(|(_, (dead, _))| !matches!(dead, Value::Nil));
    let Some((shard, (_, body))) = found else {
        return Ok(false);
    };
    let Some(json) = parse::<Option<Vec<u8>>>(body.clone())? else {
        return Ok(false);
    };
    let mut job: OutboxJob = decode(&json)?;
    job.attempts = 0;
    let keys = [shard.jobs(), shard.queue(), shard.dead()];
    run_job_script(
        redis,
        &REVIVE_JOB,
        &keys,
        &[job_id.into_bytes(), encode(&job)?, millis_arg(now)],
    )
    .await
}
