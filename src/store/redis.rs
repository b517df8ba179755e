//! The Redis store: the production backend, for one Redis or a Redis Cluster.
//!
//! # Key layout
//!
//! Keys are spread over [`SHARDS`] shards. A contact's shard is `b = contact_id.bucket(256)`
//! and every key of that contact carries the hash tag `{s<b>}`, e.g. `optin:{s17}:…`. So a
//! contact's state, its events, its outbox jobs, its expiry and retention entries and the
//! statistics counters its change touches all live in one cluster slot, and one Lua
//! script changes them atomically. Nothing ever needs a cross-slot operation; the outbox
//! and the counters are spread over all shards, and so over the whole cluster.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `optin:{s<b>}:c:<cid>` | hash | `v`: version; `d`: contact JSON |
//! | `optin:{s<b>}:ev:<cid>` | list | event JSON, oldest first |
//! | `optin:{s<b>}:t:<cid>` | string | tombstone JSON |
//! | `optin:{s<b>}:jobs` | hash | job id → job JSON (queued, leased and dead jobs) |
//! | `optin:{s<b>}:queue` | zset | job id → due in ms (a leased job: its lease end) |
//! | `optin:{s<b>}:dead` | zset | job id → dead-lettered at, in ms |
//! | `optin:{s<b>}:cj:<cid>` | set | the contact's job ids, so an erasure finds them |
//! | `optin:{s<b>}:exp` | zset | `<cid>:<pending id>` → expiry in ms |
//! | `optin:{s<b>}:stats` | hash | counter name → count (zeros are dropped) |
//! | `optin:{s<b>}:inactive` | zset | `<cid>` → inactive since, in ms (the retention index) |
//! | `optin:{s<b>}:ma:<cid>` | zset | times (ms) of mails others' requests caused; expires after the window |
//! | `optin:rl:{<key>}:<window>` | string | rate-limit hits of one window; expires with it |
//!
//! Rate-limit keys belong to no contact: each is its own tag, so they spread over the
//! cluster, and each is one `INCR`.
//!
//! Contact ids are keyed hashes of addresses, so no key (and no log line) holds an address.
//!
//! # Failing fast
//!
//! Every operation is bounded by [`DEADLINE`]: when Redis is down or stalls, the caller
//! gets [`StoreError::Unavailable`] within about two seconds, and the connection is set up
//! again on a later call once Redis is back. The same holds at start: the first
//! connection is made on first use, so a Redis that is not up yet does not stop the start.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::{ClusterClient, ClusterClientBuilder};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, Script, Value};
use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use uuid::Uuid;

use super::{OutboxDepth, Store, StoreError};
use crate::domain::{Contact, ContactChange, ContactId, ContactWrite, Event, OutboxJob, Tombstone};

/// Number of shards (hash tags). Fixed forever: changing it would move every key.
pub const SHARDS: u16 = 256;
/// The longest any store call may take before it answers [`StoreError::Unavailable`].
pub const DEADLINE: Duration = Duration::from_secs(2);
const CONNECTION_TIMEOUT: Duration = Duration::from_millis(1000);
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Commands per pipeline: large enough to save round trips, small enough not to block
/// the connection for other callers.
const PIPELINE_CHUNK: usize = 1000;
/// Pipelines in flight at once over the multiplexed connection.
const CONCURRENT_PIPELINES: usize = 32;

/// A fixed-window counter: the first hit of a window starts its expiry.
static COUNT_HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new("local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n")
});
/// A rolling-window allowance: drop entries older than the window, then take one if any
/// is left. The key expires with its newest entry, so it never outlives the window.
static TAKE_ALLOWANCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2]) \
         if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end \
         redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4]) \
         redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1",
    )
});
static APPLY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("redis/apply.lua")));
static CLAIM_JOB: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("redis/claim_job.lua")));
static COMPLETE_JOB: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("redis/complete_job.lua")));
static RETRY_JOB: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("redis/retry_job.lua")));
static DEAD_LETTER_JOB: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("redis/dead_letter_job.lua")));
static REVIVE_JOB: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("redis/revive_job.lua")));

pub struct RedisStore {
    /// Made on first use, not at start: a Redis that is down when the service starts
    /// must not stop the start (orchestrators start services in any order).
    connection: tokio::sync::OnceCell<Connection>,
    client: Client,
    /// Where the next claim starts looking, so that instances do not all drain shard 0.
    claim_offset: AtomicUsize,
    /// Shards known to have had due jobs (written here, or seen in the last scan): a
    /// claim tries these before it scans all 256 queues.
    busy_shards: std::sync::Mutex<BTreeSet<Shard>>,
}

/// How to reach Redis: checked at start, connected on first use.
enum Client {
    Single(::redis::Client),
    // Boxed: it is several times the size of the single client.
    Cluster(Box<ClusterClient>),
}

/// One Redis or a cluster; once made, both reconnect by themselves after an outage.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Connection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

/// The keys of one shard. See the module documentation for the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Shard(u16);

impl Shard {
    fn of(contact: &ContactId) -> Self {
        Shard(contact.bucket(SHARDS))
    }

    /// All shards, starting at `first` and wrapping around.
    fn all_from(first: usize) -> impl Iterator<Item = Shard> {
        let shards = usize::from(SHARDS);
        (0..shards).map(move |i| Shard(((first + i) % shards) as u16))
    }

    fn all() -> impl Iterator<Item = Shard> {
        Self::all_from(0)
    }

    fn key(self, name: &str) -> String {
        format!("optin:{{s{}}}:{name}", self.0)
    }

    fn contact(self, id: &ContactId) -> String {
        self.key(&format!("c:{id}"))
    }

    fn events(self, id: &ContactId) -> String {
        self.key(&format!("ev:{id}"))
    }

    fn tombstone(self, id: &ContactId) -> String {
        self.key(&format!("t:{id}"))
    }

    fn contact_jobs(self, id: &ContactId) -> String {
        self.key(&format!("cj:{id}"))
    }

    fn jobs(self) -> String {
        self.key("jobs")
    }

    fn queue(self) -> String {
        self.key("queue")
    }

    fn dead(self) -> String {
        self.key("dead")
    }

    fn expiry(self) -> String {
        self.key("exp")
    }

    fn stats(self) -> String {
        self.key("stats")
    }

    fn inactive(self) -> String {
        self.key("inactive")
    }
}

impl RedisStore {
    /// Reads `redis://host:port[/db]` or `redis+cluster://h1:p1,h2:p2,…`
    /// (credentials, if any, as `redis+cluster://user:password@h1:p1,h2:p2`). A URL that
    /// is not valid fails here; an unreachable Redis does not: the first call connects,
    /// and until Redis answers every call fails with [`StoreError::Unavailable`].
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = match url.strip_prefix("redis+cluster://") {
            Some(nodes) => Client::Cluster(Box::new(cluster_client(nodes)?)),
            // The URL may hold a password: never repeat it in an error.
            None => {
                Client::Single(::redis::Client::open(url).context("the Redis URL is not valid")?)
            }
        };
        let store = Self {
            connection: tokio::sync::OnceCell::new(),
            client,
            // Instances started together must not all begin at the same shard.
            claim_offset: AtomicUsize::new(
                (Uuid::new_v4().as_u128() % u128::from(SHARDS)) as usize,
            ),
            busy_shards: std::sync::Mutex::default(),
        };
        if let Err(error) = store.ping().await {
            tracing::warn!(%error, "Redis does not answer yet; starting anyway, not ready until it does");
        }
        Ok(store)
    }

    /// The shared connection, made on first use. While Redis cannot be reached each
    /// call tries again (bounded by the caller's deadline), so the service heals without
    /// a restart.
    async fn connection(&self) -> Result<Connection, StoreError> {
        self.connection
            .get_or_try_init(|| async {
                let connection = match &self.client {
                    Client::Single(client) => Connection::Single(
                        ConnectionManager::new_with_config(client.clone(), manager_config())
                            .await
                            .map_err(store_error)?,
                    ),
                    Client::Cluster(client) => Connection::Cluster(
                        client.get_async_connection().await.map_err(store_error)?,
                    ),
                };
                tracing::info!("connected to Redis");
                Ok(connection)
            })
            .await
            .cloned()
    }

    /// Runs one store operation under [`DEADLINE`].
    async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(DEADLINE, operation)
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("Redis did not answer within {DEADLINE:?}"))
            })?
    }

    /// Runs one command per entry and answers in the order asked: a pipeline per chunk
    /// on one Redis, a pipeline per shard (slot) on a cluster, several in flight at once.
    async fn query_each(&self, commands: Vec<(Shard, Cmd)>) -> Result<Vec<Value>, StoreError> {
        let total = commands.len();
        let mut batches: Vec<(Vec<usize>, Pipeline)> = Vec::new();
        match self.client {
            Client::Single(_) => {
                let mut commands = commands.into_iter().enumerate().peekable();
                while commands.peek().is_some() {
                    let chunk: Vec<(usize, (Shard, Cmd))> =
                        commands.by_ref().take(PIPELINE_CHUNK).collect();
                    batches.push(batch(
                        chunk.into_iter().map(|(index, (_, cmd))| (index, cmd)),
                    ));
                }
            }
            Client::Cluster(_) => {
                let mut by_shard: BTreeMap<Shard, Vec<(usize, Cmd)>> = BTreeMap::new();
                for (index, (shard, cmd)) in commands.into_iter().enumerate() {
                    by_shard.entry(shard).or_default().push((index, cmd));
                }
                for (_, mut commands) in by_shard {
                    while !commands.is_empty() {
                        let rest = commands.split_off(commands.len().min(PIPELINE_CHUNK));
                        batches.push(batch(std::mem::replace(&mut commands, rest)));
                    }
                }
            }
        }
        let connection = self.connection().await?;
        let answers: Vec<(Vec<usize>, Vec<Value>)> = futures_util::stream::iter(batches)
            .map(|(indexes, pipeline)| {
                let mut connection = connection.clone();
                async move {
                    let values: Vec<Value> = pipeline
                        .query_async(&mut connection)
                        .await
                        .map_err(store_error)?;
                    Ok::<_, StoreError>((indexes, values))
                }
            })
            .buffer_unordered(CONCURRENT_PIPELINES)
            .try_collect()
            .await?;
        let mut ordered: Vec<Value> = vec![Value::Nil; total];
        for (indexes, values) in answers {
            if indexes.len() != values.len() {
                return Err(StoreError::Corrupt(
                    "a pipeline answered the wrong number of replies".into(),
                ));
            }
            for (index, value) in indexes.into_iter().zip(values) {
                ordered[index] = value;
            }
        }
        Ok(ordered)
    }

    /// The same command on every shard, answered per shard.
    async fn query_every_shard(
        &self,
        command: impl Fn(Shard) -> Cmd,
    ) -> Result<Vec<(Shard, Value)>, StoreError> {
        let values = self
            .query_each(Shard::all().map(|shard| (shard, command(shard))).collect())
            .await?;
        Ok(Shard::all().zip(values).collect())
    }

    /// Runs a job script on the job's shard; true when the job was still there.
    async fn run_job_script(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<bool, StoreError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        let mut connection = self.connection().await?;
        let done: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(store_error)?;
        Ok(done == 1)
    }

    async fn apply_change(&self, change: &ContactChange) -> Result<(), StoreError> {
        let id = &change.contact_id;
        let shard = Shard::of(id);
        let mut invocation = APPLY.prepare_invoke();
        invocation
            .key(shard.contact(id))
            .key(shard.events(id))
            .key(shard.tombstone(id))
            .key(shard.jobs())
            .key(shard.queue())
            .key(shard.dead())
            .key(shard.contact_jobs(id))
            .key(shard.expiry())
            .key(shard.stats())
            .key(shard.inactive());
        invocation.arg(change.expected_version).arg(id.as_str());
        match &change.write {
            ContactWrite::Put(contact) => invocation
                .arg("put")
                .arg(contact.version)
                .arg(encode(contact)?),
            ContactWrite::Delete => invocation.arg("delete").arg(0).arg(""),
        };
        let tombstone = change
            .set_tombstone
            .as_ref()
            .map(encode)
            .transpose()?
            .unwrap_or_default();
        invocation
            .arg(if change.clear_tombstone { "1" } else { "0" })
            .arg(tombstone);
        invocation
            .arg(change.new_events.len())
            .arg(change.new_jobs.len())
            .arg(change.pending_added.len())
            .arg(change.pending_removed.len())
            .arg(change.counters.len());
        for event in &change.new_events {
            invocation.arg(encode(event)?);
        }
        for job in &change.new_jobs {
            if job.contact_id != *id {
                return Err(StoreError::Corrupt(
                    "an outbox job must belong to the contact it is written with".into(),
                ));
            }
            // A new job is due when it was made, like on the embedded store.
            invocation
                .arg(job.id.to_string())
                .arg(millis(job.created_at))
                .arg(encode(job)?);
        }
        for (pending, expires_at) in &change.pending_added {
            invocation.arg(pending.to_string()).arg(millis(*expires_at));
        }
        for pending in &change.pending_removed {
            invocation.arg(pending.to_string());
        }
        for (name, delta) in &change.counters {
            invocation.arg(name).arg(*delta);
        }
        invocation.arg(
            change
                .inactive_since
                .map(|at| millis(at).to_string())
                .unwrap_or_default(),
        );
        let mut connection = self.connection().await?;
        let written: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(store_error)?;
        if written == 1 {
            if !change.new_jobs.is_empty() {
                self.busy().insert(shard);
            }
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    fn busy(&self) -> std::sync::MutexGuard<'_, BTreeSet<Shard>> {
        self.busy_shards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs the claim script on one shard.
    async fn claim_in(
        &self,
        shard: Shard,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<OutboxJob>, StoreError> {
        let mut invocation = CLAIM_JOB.prepare_invoke();
        invocation
            .key(shard.queue())
            .key(shard.jobs())
            .arg(now_ms)
            .arg(lease_ms);
        let mut connection = self.connection().await?;
        let claimed: Option<Vec<u8>> = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(store_error)?;
        claimed.map(|json| decode(&json)).transpose()
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<OutboxJob>, StoreError> {
        let (now_ms, lease_ms) = (millis(now), millis(lease_until));
        // Shards that had work first: no scan while a burst of mail drains.
        let hinted: Vec<Shard> = self.busy().iter().copied().collect();
        for shard in hinted {
            match self.claim_in(shard, now_ms, lease_ms).await? {
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
        let due_counts = self
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
            if let Some(job) = self.claim_in(shard, now_ms, lease_ms).await? {
                return Ok(Some(job));
            }
            // Another worker took it between our look and our claim: try the next shard.
            self.busy().remove(&shard);
        }
        Ok(None)
    }

    async fn revive(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let job_id = id.to_string();
        // Only the job id is known, not its contact: ask every shard whether it holds it.
        let commands: Vec<(Shard, Cmd)> = Shard::all()
            .map(|shard| {
                let mut hget = ::redis::cmd("HGET");
                hget.arg(shard.jobs()).arg(&job_id);
                (shard, hget)
            })
            .collect();
        let mut dead_checks: Vec<(Shard, Cmd)> = Shard::all()
            .map(|shard| {
                let mut zscore = ::redis::cmd("ZSCORE");
                zscore.arg(shard.dead()).arg(&job_id);
                (shard, zscore)
            })
            .collect();
        dead_checks.extend(commands);
        let values = self.query_each(dead_checks).await?;
        let (dead_flags, bodies) = values.split_at(usize::from(SHARDS));
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
        self.run_job_script(
            &REVIVE_JOB,
            &keys,
            &[job_id, encode(&job)?, millis(now).to_string()],
        )
        .await
    }
}

fn manager_config() -> ConnectionManagerConfig {
    // Few reconnection retries: a call must fail fast while Redis is down; the next call
    // after an I/O error starts a new connection attempt anyway.
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(200))
}

fn cluster_client(nodes: &str) -> anyhow::Result<ClusterClient> {
    let nodes = cluster_nodes(nodes)?;
    ClusterClientBuilder::new(nodes)
        .connection_timeout(CONNECTION_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .retries(2)
        .min_retry_wait(50)
        .max_retry_wait(300)
        .build()
        .context("the Redis Cluster URL is not valid")
}

/// `h1:p1,h2:p2` (optionally `user:password@h1:p1,…`) → `redis://h1:p1`, `redis://h2:p2`.
fn cluster_nodes(spec: &str) -> anyhow::Result<Vec<String>> {
    let (credentials, hosts) = match spec.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), spec),
    };
    let hosts = hosts.trim_end_matches('/');
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| format!("redis://{credentials}{host}"))
        .collect();
    anyhow::ensure!(
        !nodes.is_empty(),
        "a redis+cluster:// URL needs at least one host:port"
    );
    Ok(nodes)
}

fn batch(commands: impl IntoIterator<Item = (usize, Cmd)>) -> (Vec<usize>, Pipeline) {
    let mut pipeline = ::redis::pipe();
    let mut indexes = Vec::new();
    for (index, cmd) in commands {
        indexes.push(index);
        pipeline.add_command(cmd);
    }
    (indexes, pipeline)
}

/// An unreachable or stalled Redis is [`StoreError::Unavailable`]; data of the wrong shape
/// is [`StoreError::Corrupt`].
fn store_error(error: RedisError) -> StoreError {
    let wrong_shape = matches!(
        error.kind(),
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType
    ) || error.code() == Some("WRONGTYPE");
    if wrong_shape {
        StoreError::Corrupt(error.to_string())
    } else {
        StoreError::Unavailable(error.to_string())
    }
}

fn parse<T: FromRedisValue>(value: Value) -> Result<T, StoreError> {
    ::redis::from_redis_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn hget(key: String, field: &str) -> Cmd {
    let mut cmd = ::redis::cmd("HGET");
    cmd.arg(key).arg(field);
    cmd
}

/// `(member, score)` pairs from a `… WITHSCORES` reply.
fn scored_members(value: Value) -> Result<Vec<(String, f64)>, StoreError> {
    parse(value)
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(async {
            let mut connection = self.connection().await?;
            let _: () = ::redis::cmd("PING")
                .query_async(&mut connection)
                .await
                .map_err(store_error)?;
            Ok(())
        })
        .await
    }

    async fn load_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        let mut contacts = self.load_contacts(std::slice::from_ref(id)).await?;
        Ok(contacts.pop().flatten())
    }

    async fn load_contacts(&self, ids: &[ContactId]) -> Result<Vec<Option<Contact>>, StoreError> {
        self.bounded(async {
            let commands = ids
                .iter()
                .map(|id| (Shard::of(id), hget(Shard::of(id).contact(id), "d")))
                .collect();
            let values = self.query_each(commands).await?;
            values
                .into_iter()
                .map(|value| {
                    parse::<Option<Vec<u8>>>(value)?
                        .map(|json| decode(&json))
                        .transpose()
                })
                .collect()
        })
        .await
    }

    async fn apply(&self, change: ContactChange) -> Result<(), StoreError> {
        self.bounded(self.apply_change(&change)).await
    }

    async fn events(&self, id: &ContactId) -> Result<Vec<Event>, StoreError> {
        self.bounded(async {
            let mut connection = self.connection().await?;
            let mut lrange = ::redis::cmd("LRANGE");
            lrange.arg(Shard::of(id).events(id)).arg(0).arg(-1);
            let events: Vec<Vec<u8>> = lrange
                .query_async(&mut connection)
                .await
                .map_err(store_error)?;
            events.iter().map(|json| decode(json)).collect()
        })
        .await
    }

    async fn tombstone(&self, id: &ContactId) -> Result<Option<Tombstone>, StoreError> {
        self.bounded(async {
            let mut connection = self.connection().await?;
            let mut get = ::redis::cmd("GET");
            get.arg(Shard::of(id).tombstone(id));
            let tombstone: Option<Vec<u8>> = get
                .query_async(&mut connection)
                .await
                .map_err(store_error)?;
            tombstone.map(|json| decode(&json)).transpose()
        })
        .await
    }

    async fn counters(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        self.bounded(async {
            let per_shard = self
                .query_every_shard(|shard| {
                    let mut hgetall = ::redis::cmd("HGETALL");
                    hgetall.arg(shard.stats());
                    hgetall
                })
                .await?;
            let mut totals = BTreeMap::new();
            for (_, value) in per_shard {
                for (name, count) in parse::<HashMap<String, i64>>(value)? {
                    *totals.entry(name).or_insert(0) += count;
                }
            }
            totals.retain(|_, count| *count != 0);
            Ok(totals)
        })
        .await
    }

    async fn expired_pending(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(ContactId, Uuid)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.bounded(async {
            let per_shard = self
                .query_every_shard(|shard| {
                    let mut range = ::redis::cmd("ZRANGEBYSCORE");
                    range
                        .arg(shard.expiry())
                        .arg("-inf")
                        .arg(millis(now))
                        .arg("WITHSCORES")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(limit);
                    range
                })
                .await?;
            let mut expired = Vec::new();
            for (_, value) in per_shard {
                expired.extend(scored_members(value)?);
            }
            // The longest expired first, as the embedded store answers.
            expired.sort_by(|(a_member, a_at), (b_member, b_at)| {
                a_at.total_cmp(b_at).then_with(|| a_member.cmp(b_member))
            });
            expired
                .into_iter()
                .take(limit)
                .map(|(member, _)| {
                    member
                        .split_once(':')
                        .and_then(|(cid, pending)| {
                            Some((ContactId::parse(cid).ok()?, Uuid::parse_str(pending).ok()?))
                        })
                        .ok_or_else(|| {
                            StoreError::Corrupt(
                                "an expiry entry is not <contact id>:<pending id>".into(),
                            )
                        })
                })
                .collect()
        })
        .await
    }

    async fn inactive_contacts(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.bounded(async {
            let per_shard = self
                .query_every_shard(|shard| {
                    let mut range = ::redis::cmd("ZRANGEBYSCORE");
                    range
                        .arg(shard.inactive())
                        .arg("-inf")
                        .arg(format!("({}", millis(before)))
                        .arg("WITHSCORES")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(limit);
                    range
                })
                .await?;
            let mut found = Vec::new();
            for (_, value) in per_shard {
                found.extend(scored_members(value)?);
            }
            found.sort_by(|(a, a_at), (b, b_at)| a_at.total_cmp(b_at).then_with(|| a.cmp(b)));
            found
                .into_iter()
                .take(limit)
                .map(|(member, _)| {
                    ContactId::parse(&member).map_err(|_| {
                        StoreError::Corrupt("a retention entry is not a contact id".into())
                    })
                })
                .collect()
        })
        .await
    }

    async fn count_hit(
        &self,
        key: &str,
        window_secs: u64,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        // One key per client and window; the key is already a hash, never an address.
        let window = (now.timestamp().max(0) as u64) / window_secs.max(1);
        let redis_key = format!("optin:rl:{{{key}}}:{window}");
        self.bounded(async {
            let mut invocation = COUNT_HIT.prepare_invoke();
            invocation.key(redis_key).arg(window_secs.max(1) * 1000);
            let mut connection = self.connection().await?;
            invocation
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)
        })
        .await
    }

    async fn take_mail_allowance(
        &self,
        id: &ContactId,
        limit: u32,
        window_secs: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = Shard::of(id).key(&format!("ma:{id}"));
        self.bounded(async {
            let mut invocation = TAKE_ALLOWANCE.prepare_invoke();
            invocation
                .key(key)
                .arg(now.timestamp_millis())
                .arg(window_secs.saturating_mul(1000))
                .arg(limit)
                .arg(Uuid::now_v7().simple().to_string());
            let mut connection = self.connection().await?;
            let granted: i64 = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)?;
            Ok(granted == 1)
        })
        .await
    }

    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<OutboxJob>, StoreError> {
        self.bounded(self.claim(now, lease_until)).await
    }

    async fn complete_job(&self, job: &OutboxJob) -> Result<(), StoreError> {
        let shard = Shard::of(&job.contact_id);
        let keys = [
            shard.jobs(),
            shard.queue(),
            shard.dead(),
            shard.contact_jobs(&job.contact_id),
        ];
        self.bounded(self.run_job_script(&COMPLETE_JOB, &keys, &[job.id.to_string()]))
            .await
            .map(drop)
    }

    async fn retry_job_later(&self, job: &OutboxJob, due: DateTime<Utc>) -> Result<(), StoreError> {
        let shard = Shard::of(&job.contact_id);
        let keys = [shard.jobs(), shard.queue(), shard.dead()];
        let args = [job.id.to_string(), encode(job)?, millis(due).to_string()];
        self.bounded(self.run_job_script(&RETRY_JOB, &keys, &args))
            .await
            .map(drop)
    }

    async fn dead_letter_job(&self, job: &OutboxJob) -> Result<(), StoreError> {
        let shard = Shard::of(&job.contact_id);
        let keys = [shard.jobs(), shard.queue(), shard.dead()];
        // Only orders the dead letters, so the wall clock is good enough here.
        let args = [
            job.id.to_string(),
            encode(job)?,
            millis(Utc::now()).to_string(),
        ];
        self.bounded(self.run_job_script(&DEAD_LETTER_JOB, &keys, &args))
            .await
            .map(drop)
    }

    async fn dead_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.bounded(async {
            let per_shard = self
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
            let mut dead: Vec<(Shard, String, f64)> = Vec::new();
            for (shard, value) in per_shard {
                dead.extend(
                    scored_members(value)?
                        .into_iter()
                        .map(|(id, at)| (shard, id, at)),
                );
            }
            // Oldest dead letters first.
            dead.sort_by(|(_, a_id, a_at), (_, b_id, b_at)| {
                a_at.total_cmp(b_at).then_with(|| a_id.cmp(b_id))
            });
            dead.truncate(limit);
            let commands = dead
                .iter()
                .map(|(shard, id, _)| (*shard, hget(shard.jobs(), id)))
                .collect();
            let bodies = self.query_each(commands).await?;
            let mut jobs = Vec::with_capacity(bodies.len());
            for body in bodies {
                // A dead letter erased in between is simply no longer listed.
                if let Some(json) = parse::<Option<Vec<u8>>>(body)? {
                    jobs.push(decode(&json)?);
                }
            }
            Ok(jobs)
        })
        .await
    }

    async fn revive_dead_job(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.bounded(self.revive(id, now)).await
    }

    async fn outbox_depth(&self) -> Result<OutboxDepth, StoreError> {
        self.bounded(async {
            let mut commands: Vec<(Shard, Cmd)> = Vec::new();
            for shard in Shard::all() {
                for key in [shard.queue(), shard.dead()] {
                    let mut zcard = ::redis::cmd("ZCARD");
                    zcard.arg(key);
                    commands.push((shard, zcard));
                }
            }
            let counts = self.query_each(commands).await?;
            let mut depth = OutboxDepth::default();
            for pair in counts.chunks(2) {
                if let [queued, dead] = pair {
                    depth.queued += parse::<u64>(queued.clone())?;
                    depth.dead += parse::<u64>(dead.clone())?;
                }
            }
            Ok(depth)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_contact_shares_its_shard_tag() {
        let id = ContactId::parse("0011aabbccddeeff0011aabbccddeeff").expect("a valid id");
        let shard = Shard::of(&id);
        let keys = [
            shard.contact(&id),
            shard.events(&id),
            shard.tombstone(&id),
            shard.contact_jobs(&id),
            shard.jobs(),
            shard.queue(),
            shard.dead(),
            shard.expiry(),
            shard.stats(),
        ];
        let tag = format!("{{s{}}}", 0x0011 % SHARDS);
        for key in keys {
            assert!(
                key.starts_with(&format!("optin:{tag}:")),
                "{key} lacks the tag {tag}"
            );
        }
    }

    #[test]
    fn cluster_urls_name_every_node_and_keep_credentials() {
        assert_eq!(
            cluster_nodes("10.0.0.1:7000,10.0.0.2:7001").expect("valid"),
            vec!["redis://10.0.0.1:7000", "redis://10.0.0.2:7001"]
        );
        assert_eq!(
            cluster_nodes("u:p@a:1,b:2").expect("valid"),
            vec!["redis://u:p@a:1", "redis://u:p@b:2"]
        );
        assert!(cluster_nodes("").is_err());
    }
}
