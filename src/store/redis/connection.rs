//! The way to Redis: one Redis or a cluster, connected on first use, every call bounded
//! by [`DEADLINE`], and reconnected by the client after an outage.
//!
//! When Redis is down or stalls, the caller gets [`StoreError::Unavailable`] within about
//! two seconds, and the connection is set up again on a later call once Redis is back.
//! The same holds at start: the first connection is made on first use, so a Redis that is
//! not up yet does not stop the start.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::{ClusterClient, ClusterClientBuilder};
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use ::redis::{
    Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, ScriptInvocation, Value,
};
use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};

use super::keys::Shard;
use crate::store::StoreError;

/// The longest any store call may take before it answers [`StoreError::Unavailable`].
pub const DEADLINE: Duration = Duration::from_secs(2);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Commands per pipeline: large enough to save round trips, small enough not to block
/// the connection for other callers.
const PIPELINE_CHUNK: usize = 1000;
/// Pipelines in flight at once over the multiplexed connection.
const CONCURRENT_PIPELINES: usize = 32;

pub(super) struct Redis {
    /// Made on first use, not at start: a Redis that is down when the service starts
    /// must not stop the start (orchestrators start services in any order). Only the
    /// cluster's connection lives here; a single Redis gets one per thread (below).
    cluster: ClusterSlot,
    client: Client,
    /// This instance's entry in [`THREAD_CONNECTIONS`].
    id: u64,
}

/// How long a cluster connection may go without a single answer, while calls keep
/// failing, before it is thrown away and made anew.
const REPLACE_SILENT_CLUSTER_AFTER: Duration = Duration::from_secs(3);

/// The cluster connection, and when it last answered. The cluster client heals itself
/// after most outages, but while it repairs a node it can hold its slot map locked for
/// every caller, and after a node restart it was seen to stay silent for seconds after
/// the cluster was whole again. A fresh connection reads the slots anew and answers at
/// once, so one that has answered nothing for a while is replaced.
struct ClusterSlot {
    current: std::sync::RwLock<Arc<tokio::sync::OnceCell<Connection>>>,
    /// Milliseconds since `epoch`: the last call that Redis answered (even with an
    /// error reply), and the last replacement.
    last_answer: AtomicU64,
    last_replaced: AtomicU64,
    epoch: Instant,
}

impl ClusterSlot {
    fn new() -> Self {
        Self {
            current: std::sync::RwLock::new(Arc::default()),
            last_answer: AtomicU64::new(0),
            last_replaced: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn cell(&self) -> Arc<tokio::sync::OnceCell<Connection>> {
        // A poisoned lock still holds a usable cell: replacing it is all a writer does.
        match self.current.read() {
            Ok(cell) => cell.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn answered(&self) {
        self.last_answer.store(self.now(), Ordering::Relaxed);
    }

    /// After a call found Redis unavailable: replaces the connection when it has been
    /// silent (and not just replaced) for [`REPLACE_SILENT_CLUSTER_AFTER`]. The next
    /// call connects anew.
    fn unavailable(&self) {
        let now = self.now();
        let limit = u64::try_from(REPLACE_SILENT_CLUSTER_AFTER.as_millis()).unwrap_or(u64::MAX);
        let silent = now.saturating_sub(self.last_answer.load(Ordering::Relaxed)) >= limit;
        let last_replaced = self.last_replaced.load(Ordering::Relaxed);
        let settled = now.saturating_sub(last_replaced) >= limit;
        let claimed = silent
            && settled
            && self
                .last_replaced
                .compare_exchange(last_replaced, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if claimed {
            tracing::warn!(
                silent_for_ms = now.saturating_sub(self.last_answer.load(Ordering::Relaxed)),
                "the Redis Cluster connection has not answered; making a new one"
            );
            metrics::counter!("optin_redis_cluster_reconnects_total").increment(1);
            let fresh = Arc::default();
            match self.current.write() {
                Ok(mut cell) => *cell = fresh,
                Err(poisoned) => *poisoned.into_inner() = fresh,
            }
        }
    }
}

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// One connection to a single Redis per thread and store instance, made on the
    /// thread's first call. A connection's reader runs on the runtime that made it, so an
    /// HTTP worker (each runs its own one-thread runtime) sends and receives on its own
    /// thread. With one shared connection, every answer crossed to another thread and
    /// back: that hand-over cost more CPU than the Redis call itself.
    static THREAD_CONNECTIONS: RefCell<HashMap<u64, Arc<tokio::sync::OnceCell<ConnectionManager>>>> =
        RefCell::new(HashMap::new());
}

/// How to reach Redis: checked at start, connected on first use.
enum Client {
    Single(::redis::Client),
    // Boxed: it is several times the size of the single client.
    Cluster(Box<ClusterClient>),
}

/// One Redis or a cluster; once made, both reconnect by themselves after an outage.
#[derive(Clone)]
pub(super) enum Connection {
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

impl Redis {
    /// Reads `redis://host:port[/db]` or `redis+cluster://h1:p1,h2:p2,…`; connects later.
    pub(super) fn new(url: &str) -> anyhow::Result<Self> {
        let client = match url.strip_prefix("redis+cluster://") {
            Some(nodes) => Client::Cluster(Box::new(cluster_client(nodes)?)),
            // The URL may hold a password: never repeat it in an error.
            None => {
                Client::Single(::redis::Client::open(url).context("the Redis URL is not valid")?)
            }
        };
        Ok(Self {
            cluster: ClusterSlot::new(),
            client,
            id: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Whether this is a Redis Cluster (rather than one Redis).
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.client, Client::Cluster(_))
    }

    /// The connection to use from this thread, made on first use. While Redis cannot be
    /// reached each call tries again (bounded by the caller's deadline), so the service
    /// heals without a restart.
    pub(super) async fn connection(&self) -> Result<Connection, StoreError> {
        match &self.client {
            Client::Single(client) => {
                let cell = THREAD_CONNECTIONS.with(|connections| {
                    connections.borrow_mut().entry(self.id).or_default().clone()
                });
                let manager = cell
                    .get_or_try_init(|| async {
                        let manager =
                            ConnectionManager::new_with_config(client.clone(), manager_config())
                                .await
                                .map_err(store_error)?;
                        tracing::debug!("connected to Redis");
                        Ok::<_, StoreError>(manager)
                    })
                    .await?;
                Ok(Connection::Single(manager.clone()))
            }
            Client::Cluster(client) => self
                .cluster
                .cell()
                .get_or_try_init(|| async {
                    let connection = client.get_async_connection().await.map_err(store_error)?;
                    tracing::info!("connected to the Redis Cluster");
                    Ok(Connection::Cluster(connection))
                })
                .await
                .cloned(),
        }
    }

    /// Runs one store operation under [`DEADLINE`].
    pub(super) async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = tokio::time::timeout(DEADLINE, operation)
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("Redis did not answer within {DEADLINE:?}"))
            })
            .and_then(|answer| answer);
        // Only the cluster's health is watched: on one Redis the per-thread connection
        // managers reconnect by themselves, and the hot path stays free of shared writes.
        if let Client::Cluster(_) = self.client {
            match &result {
                Err(StoreError::Unavailable(_)) => self.cluster.unavailable(),
                _ => self.cluster.answered(),
            }
        }
        result
    }

    /// Runs one command and reads its answer as `T`.
    pub(super) async fn query<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        cmd.query_async(&mut connection).await.map_err(store_error)
    }

    /// Runs one prepared script and reads its answer as `T`.
    pub(super) async fn invoke<T: FromRedisValue>(
        &self,
        invocation: ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        invocation
            .invoke_async(&mut connection)
            .await
            .map_err(store_error)
    }

    /// Runs one command per entry and answers in the order asked: a pipeline per chunk
    /// on one Redis, a pipeline per shard (slot) on a cluster, several in flight at once.
    /// Any error reply fails the whole call. Only for reads (see the tolerant call).
    pub(super) async fn query_each(
        &self,
        commands: Vec<(Shard, Cmd)>,
    ) -> Result<Vec<Value>, StoreError> {
        let values = self.query_each_tolerant(commands).await?;
        match values.iter().find_map(error_reply) {
            Some(error) => Err(error),
            None => Ok(values),
        }
    }

    /// [`Self::query_each`], but an error reply (`Value::ServerError`) is answered in its
    /// place for the caller to judge, and the other commands' answers still count. Only
    /// for reads: a pipeline that meets a broken connection is sent once more.
    pub(super) async fn query_each_tolerant(
        &self,
        commands: Vec<(Shard, Cmd)>,
    ) -> Result<Vec<Value>, StoreError> {
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
                    let values: Vec<Value> = match pipeline.query_async(&mut connection).await {
                        // After a Redis restart, the first call on each connection finds
                        // it broken while the client makes a new one. These are reads,
                        // so asking again is safe and spares the caller a 503.
                        Err(error) if error.is_connection_dropped() || error.is_io_error() => {
                            pipeline.query_async(&mut connection).await
                        }
                        answer => answer,
                    }
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
                // Every index came from enumerating `commands`, so it is below `total`.
                if let Some(slot) = ordered.get_mut(index) {
                    *slot = value;
                }
            }
        }
        Ok(ordered)
    }

    /// One step of a walk over the keys that match `pattern` (`SCAN`): on one Redis, or
    /// on each primary of a cluster in turn, in address order. The cursor is `SCAN`'s,
    /// prefixed on a cluster by the primary's place in that order; `None` when done.
    pub(super) async fn scan_step(
        &self,
        cursor: Option<&str>,
        pattern: &str,
        count: usize,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let scan = |position: &str| {
            let mut scan = ::redis::cmd("SCAN");
            scan.arg(position)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(count);
            scan
        };
        let bad_cursor = || StoreError::Corrupt("not a cursor of this walk".into());
        match self.connection().await? {
            mut connection @ Connection::Single(_) => {
                let (next, keys): (String, Vec<String>) = scan(cursor.unwrap_or("0"))
                    .query_async(&mut connection)
                    .await
                    .map_err(store_error)?;
                Ok((keys, (next != "0").then_some(next)))
            }
            Connection::Cluster(mut cluster) => {
                let (node, position) = match cursor {
                    Some(cursor) => {
                        let (node, position) = cursor.split_once(':').ok_or_else(bad_cursor)?;
                        (node.parse::<usize>().map_err(|_| bad_cursor())?, position)
                    }
                    None => (0, "0"),
                };
                let primaries = cluster_primaries(&mut cluster).await?;
                let Some((host, port)) = primaries.get(node).cloned() else {
                    return Ok((Vec::new(), None));
                };
                let routing =
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                let answer = cluster
                    .route_command(scan(position), routing)
                    .await
                    .map_err(store_error)?;
                let (next, keys): (String, Vec<String>) = ::redis::from_redis_value(answer)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let next = if next == "0" {
                    (node + 1 < primaries.len()).then(|| format!("{}:0", node + 1))
                } else {
                    Some(format!("{node}:{next}"))
                };
                Ok((keys, next))
            }
        }
    }

    /// Asks every primary to write its files anew from what it holds now: the
    /// append-only file when it keeps one, the snapshot when it is configured to save
    /// one. Erased keys then no longer appear in either. A command the server refuses
    /// (a managed Redis may forbid `CONFIG`) is logged and skipped, never fatal.
    pub(super) async fn rewrite_persistence(&self) -> Result<(), StoreError> {
        for node in self.primaries().await? {
            let info: String = self
                .query_node(&node, ::redis::cmd("INFO").arg("persistence").clone())
                .await?;
            if info.lines().any(|line| line.trim() == "aof_enabled:1") {
                self.tolerate(&node, ::redis::cmd("BGREWRITEAOF")).await?;
            }
            let save: Result<Vec<String>, StoreError> = self
                .query_node(&node, ::redis::cmd("CONFIG").arg("GET").arg("save").clone())
                .await;
            match save {
                Ok(pair) if pair.get(1).is_some_and(|rules| !rules.trim().is_empty()) => {
                    // Waits for an AOF rewrite in progress instead of failing.
                    self.tolerate(&node, ::redis::cmd("BGSAVE").arg("SCHEDULE").clone())
                        .await?;
                }
                Ok(_) => {}
                Err(StoreError::Unavailable(reason)) => {
                    return Err(StoreError::Unavailable(reason));
                }
                Err(refused) => {
                    tracing::warn!(%refused, "Redis refused CONFIG GET save; its snapshot is not rewritten after erasures");
                }
            }
        }
        Ok(())
    }

    /// Runs `command` on one node; a refusal (not a lost connection) is logged.
    async fn tolerate(&self, node: &Node, command: Cmd) -> Result<(), StoreError> {
        match self.query_node::<Value>(node, command).await {
            Ok(_) => Ok(()),
            Err(StoreError::Unavailable(reason)) => Err(StoreError::Unavailable(reason)),
            Err(refused) => {
                tracing::warn!(%refused, "Redis refused a rewrite of its files after erasures");
                Ok(())
            }
        }
    }

    /// Every primary: the one Redis, or each primary of a cluster.
    async fn primaries(&self) -> Result<Vec<Node>, StoreError> {
        match self.connection().await? {
            Connection::Single(_) => Ok(vec![Node::TheOne]),
            Connection::Cluster(mut cluster) => Ok(cluster_primaries(&mut cluster)
                .await?
                .into_iter()
                .map(|(host, port)| Node::Primary { host, port })
                .collect()),
        }
    }

    async fn query_node<T: FromRedisValue>(
        &self,
        node: &Node,
        command: Cmd,
    ) -> Result<T, StoreError> {
        match (self.connection().await?, node) {
            (mut connection @ Connection::Single(_), _) => command
                .query_async(&mut connection)
                .await
                .map_err(store_error),
            (Connection::Cluster(mut cluster), Node::Primary { host, port }) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let answer = cluster
                    .route_command(command, routing)
                    .await
                    .map_err(store_error)?;
                ::redis::from_redis_value(answer).map_err(|e| StoreError::Corrupt(e.to_string()))
            }
            (Connection::Cluster(_), Node::TheOne) => {
                Err(StoreError::Corrupt("a cluster has no single node".into()))
            }
        }
    }

    /// The same command on every shard, answered per shard.
    pub(super) async fn query_every_shard(
        &self,
        command: impl Fn(Shard) -> Cmd,
    ) -> Result<Vec<(Shard, Value)>, StoreError> {
        let values = self
            .query_each(Shard::all().map(|shard| (shard, command(shard))).collect())
            .await?;
        Ok(Shard::all().zip(values).collect())
    }
}

/// A server to send a command to.
enum Node {
    TheOne,
    Primary { host: String, port: u16 },
}

/// The primaries of a cluster, as `CLUSTER SLOTS` names them, in address order.
async fn cluster_primaries(
    cluster: &mut ClusterConnection,
) -> Result<Vec<(String, u16)>, StoreError> {
    let corrupt = || StoreError::Corrupt("an unexpected CLUSTER SLOTS answer".into());
    let answer: Value = ::redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(cluster)
        .await
        .map_err(store_error)?;
    let Value::Array(ranges) = answer else {
        return Err(corrupt());
    };
    let mut primaries = std::collections::BTreeSet::new();
    for range in ranges {
        // [first slot, last slot, [host, port, id, …] of the primary, replicas…]
        let Value::Array(fields) = range else {
            return Err(corrupt());
        };
        let Some(Value::Array(primary)) = fields.get(2) else {
            return Err(corrupt());
        };
        let (Some(host), Some(port)) = (primary.first(), primary.get(1)) else {
            return Err(corrupt());
        };
        let host: String = ::redis::from_redis_value(host.clone()).map_err(|_| corrupt())?;
        let port: u16 = ::redis::from_redis_value(port.clone()).map_err(|_| corrupt())?;
        primaries.insert((host, port));
    }
    Ok(primaries.into_iter().collect())
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
    // One command's error reply must not fail the others (a contact still in an earlier
    // release's form answers WRONGTYPE); `query_each` fails on any, the tolerant call
    // leaves them to its caller.
    pipeline.ignore_errors();
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

/// Reads one answer of a pipeline as `T`. Pipelines run with `ignore_errors`, so an
/// error reply arrives here and is judged like the error of a single command.
pub(super) fn parse<T: FromRedisValue>(value: Value) -> Result<T, StoreError> {
    if let Some(error) = error_reply(&value) {
        return Err(error);
    }
    ::redis::from_redis_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// An error reply, judged like the error of a single command.
fn error_reply(value: &Value) -> Option<StoreError> {
    match value {
        Value::ServerError(error) => Some(store_error(error.clone().into())),
        _ => None,
    }
}

/// Whether one pipelined answer is a WRONGTYPE error: the key holds another type.
pub(super) fn is_wrong_type(value: &Value) -> bool {
    matches!(value, Value::ServerError(error) if error.code() == "WRONGTYPE")
}

pub(super) fn get(key: String) -> Cmd {
    let mut cmd = ::redis::cmd("GET");
    cmd.arg(key);
    cmd
}

pub(super) fn hget(key: String, field: &str) -> Cmd {
    let mut cmd = ::redis::cmd("HGET");
    cmd.arg(key).arg(field);
    cmd
}

/// Reads the members of a `… WITHSCORES` answer from every shard, merged in score order
/// (ties by member) and cut to `limit`: each shard answered its own first `limit`.
pub(super) fn merge_scored(
    per_shard: Vec<(Shard, Value)>,
    limit: usize,
) -> Result<Vec<(Shard, String)>, StoreError> {
    let mut all: Vec<(Shard, String, f64)> = Vec::new();
    for (shard, value) in per_shard {
        let members: Vec<(String, f64)> = parse(value)?;
        all.extend(members.into_iter().map(|(member, at)| (shard, member, at)));
    }
    all.sort_by(|(_, a, a_at), (_, b, b_at)| a_at.total_cmp(b_at).then_with(|| a.cmp(b)));
    all.truncate(limit);
    Ok(all
        .into_iter()
        .map(|(shard, member, _)| (shard, member))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
