//! Backups of the Redis store: a view over the live store (each contact read with its
//! events in one atomic step in its slot; walks by `SCAN` on each primary, or shard by
//! shard for the outbox), and restores written one atomic step per record.
//!
//! `SCAN` may answer a key twice in one walk (when Redis resizes its table meanwhile), so
//! the view remembers the ids it gave (16 bytes each, about 32 B with the set's overhead)
//! and gives each record once.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

use ::redis::{Script, Value};
use chrono::{TimeZone, Utc};
use futures_util::{StreamExt, TryStreamExt};
use uuid::Uuid;

use super::connection::{parse, Redis};
use super::keys::{self, Shard, SHARDS};
use super::{contact_body, event_log, webhooks, RedisStore};
use crate::domain::{Contact, ContactId, Event, OutboxJob, Tombstone};
use crate::store::codec::{decode, encode, millis};
use crate::store::{
    BackupView, Consistency, ContactRead, ContactRecord, EndpointState, JobRecord, JobState,
    MailAllowance, RecordPage, RestoreBatch, RestoreMark, StoreError, StoreKind, UnreadableContact,
};

static READ_CONTACT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("read_contact.lua")));
static JOBS_PAGE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("jobs_page.lua")));
static RESTORE_JOB: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("restore_job.lua")));
static RESTORE_ALLOWANCE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("restore_allowance.lua")));

/// Reads or writes of one page at once over the multiplexed connection.
const CONCURRENT: usize = 32;
/// Every key of the store starts with this; the restore mark too.
const ALL_KEYS: &str = "optin:*";
const TOMBSTONE_KEYS: &str = "optin:{s*}:t:*";
const ALLOWANCE_KEYS: &str = "optin:{s*}:ma:*";
const ENDPOINT_KEYS: &str = "optin:wh:*";
const ENDPOINT_PREFIX: &str = "optin:wh:";
/// While a restore into this Redis runs (see [`RestoreMark`]).
const RESTORE_MARK_KEY: &str = "optin:restore-mark";

/// Ids already given by one walk.
#[derive(Default)]
struct Seen(Mutex<HashSet<u128>>);

impl Seen {
    /// True the first time `id` is offered.
    fn first(&self, id: u128) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id)
    }
}

fn contact_number(id: &ContactId) -> u128 {
    // Contact ids are 32 hex digits: exactly a u128.
    u128::from_str_radix(id.as_str(), 16).unwrap_or_default()
}

pub(super) struct RedisView {
    redis: Arc<Redis>,
    kind: StoreKind,
    contacts: Seen,
    tombstones: Seen,
    allowances: Seen,
    jobs: Seen,
}

impl RedisView {
    /// The ids of the keys of one `SCAN` step that match `pattern`, each split after
    /// `marker` (`}:c:` and the like).
    async fn scan_ids(
        &self,
        cursor: Option<String>,
        pattern: &str,
        marker: &str,
        limit: usize,
        seen: &Seen,
    ) -> Result<(Vec<ContactId>, Option<String>), StoreError> {
        let (keys, next) = self
            .redis
            .scan_step(cursor.as_deref(), pattern, limit.max(1))
            .await?;
        let mut ids = Vec::new();
        for key in keys {
            let Some((_, id)) = key.split_once(marker) else {
                continue;
            };
            let id = ContactId::parse(id)
                .map_err(|_| StoreError::Corrupt(format!("a key with {marker}")))?;
            if seen.first(contact_number(&id)) {
                ids.push(id);
            }
        }
        Ok((ids, next))
    }

    async fn read_contact(&self, id: ContactId) -> Result<Option<ContactRead>, StoreError> {
        let shard = Shard::of(&id);
        let mut invocation = READ_CONTACT.prepare_invoke();
        invocation.key(shard.contact(&id)).key(shard.events(&id));
        let answer: Vec<Value> = self.redis.bounded(self.redis.invoke(invocation)).await?;
        let mut parts = answer.into_iter();
        let Some(contact) = parse::<Option<Vec<u8>>>(parts.next().unwrap_or(Value::Nil))? else {
            // Erased after the walk found its key.
            return Ok(None);
        };
        let form: String = parse(parts.next().unwrap_or(Value::Nil))?;
        let unreadable = |reason: String| {
            Ok(Some(Err(UnreadableContact {
                id: id.clone(),
                reason,
            })))
        };
        let contact: Contact = match decode(contact_body(&contact)) {
            Ok(contact) => contact,
            Err(error) => return unreadable(format!("the contact: {error}")),
        };
        let stored: Vec<Vec<u8>> = match form.as_str() {
            "string" => {
                let log: Vec<u8> = parse(parts.next().unwrap_or(Value::Nil))?;
                match event_log::frames(&log) {
                    Ok(frames) => frames.into_iter().map(<[u8]>::to_vec).collect(),
                    Err(error) => return unreadable(format!("the event log: {error}")),
                }
            }
            "list" => parts.map(parse).collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        let mut events = Vec::with_capacity(stored.len());
        for (index, bytes) in stored.iter().enumerate() {
            match decode::<Event>(bytes) {
                Ok(event) => events.push(event),
                Err(error) => return unreadable(format!("event {}: {error}", index + 1)),
            }
        }
        Ok(Some(Ok(ContactRecord { contact, events })))
    }

    /// One `HSCAN` step of one shard's jobs, with where each stands.
    async fn jobs_step(
        &self,
        shard: Shard,
        cursor: &str,
        limit: usize,
    ) -> Result<(Vec<JobRecord>, String), StoreError> {
        let mut invocation = JOBS_PAGE.prepare_invoke();
        invocation
            .key(shard.jobs())
            .key(shard.queue())
            .key(shard.dead())
            .arg(cursor)
            .arg(limit.max(1));
        let answer: Vec<Value> = self.redis.bounded(self.redis.invoke(invocation)).await?;
        let mut parts = answer.into_iter();
        let next: String = parse(parts.next().unwrap_or(Value::Nil))?;
        let rest: Vec<Value> = parts.collect();
        let mut jobs = Vec::new();
        for entry in rest.chunks(4) {
            let [id, body, due, dead] = entry else {
                return Err(StoreError::Corrupt("a job page entry".into()));
            };
            let id: String = parse(id.clone())?;
            let number = Uuid::parse_str(&id)
                .map_err(|_| StoreError::Corrupt("a job id".into()))?
                .as_u128();
            if !self.jobs.first(number) {
                continue;
            }
            let job: OutboxJob = decode(&parse::<Vec<u8>>(body.clone())?)?;
            let due: String = parse(due.clone())?;
            let dead: String = parse(dead.clone())?;
            let state = if dead == "1" {
                JobState::Dead
            } else {
                // A job in no queue (never seen written so) is due when it was made.
                let due = match due.split('.').next().and_then(|ms| ms.parse::<i64>().ok()) {
                    Some(ms) => Utc
                        .timestamp_millis_opt(ms)
                        .single()
                        .ok_or_else(|| StoreError::Corrupt("a job's due time".into()))?,
                    None => job.created_at,
                };
                JobState::Queued { due }
            };
            jobs.push(JobRecord { job, state });
        }
        Ok((jobs, next))
    }
}

#[async_trait::async_trait]
impl BackupView for RedisView {
    fn kind(&self) -> StoreKind {
        self.kind
    }

    fn consistency(&self) -> Consistency {
        Consistency::PerRecord
    }

    async fn contacts(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<ContactRead>, StoreError> {
        let (ids, next) = self
            .scan_ids(cursor, keys::CONTACT_KEYS, "}:c:", limit, &self.contacts)
            .await?;
        let items: Vec<Option<ContactRead>> = futures_util::stream::iter(ids)
            .map(|id| self.read_contact(id))
            .buffered(CONCURRENT)
            .try_collect()
            .await?;
        Ok(RecordPage {
            items: items.into_iter().flatten().collect(),
            next,
        })
    }

    async fn tombstones(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<(ContactId, Tombstone)>, StoreError> {
        let (ids, next) = self
            .scan_ids(cursor, TOMBSTONE_KEYS, "}:t:", limit, &self.tombstones)
            .await?;
        let gets = ids
            .iter()
            .map(|id| {
                let mut get = ::redis::cmd("GET");
                get.arg(Shard::of(id).tombstone(id));
                (Shard::of(id), get)
            })
            .collect();
        let values = self.redis.bounded(self.redis.query_each(gets)).await?;
        let mut items = Vec::new();
        for (id, value) in ids.into_iter().zip(values) {
            if let Some(json) = parse::<Option<Vec<u8>>>(value)? {
                items.push((id, decode(&json)?));
            }
        }
        Ok(RecordPage { items, next })
    }

    async fn mail_allowances(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<MailAllowance>, StoreError> {
        let (ids, next) = self
            .scan_ids(cursor, ALLOWANCE_KEYS, "}:ma:", limit, &self.allowances)
            .await?;
        let ranges = ids
            .iter()
            .map(|id| {
                let mut range = ::redis::cmd("ZRANGE");
                range
                    .arg(Shard::of(id).mail_allowance(id))
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES");
                (Shard::of(id), range)
            })
            .collect();
        let values = self.redis.bounded(self.redis.query_each(ranges)).await?;
        let mut items = Vec::new();
        for (id, value) in ids.into_iter().zip(values) {
            let entries: Vec<(String, f64)> = parse(value)?;
            if entries.is_empty() {
                continue;
            }
            let taken_at = entries
                .iter()
                .map(|(_, ms)| {
                    Utc.timestamp_millis_opt(*ms as i64)
                        .single()
                        .ok_or_else(|| StoreError::Corrupt("an allowance time".into()))
                })
                .collect::<Result<_, _>>()?;
            items.push(MailAllowance {
                contact_id: id,
                taken_at,
            });
        }
        Ok(RecordPage { items, next })
    }

    async fn jobs(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<JobRecord>, StoreError> {
        let bad_cursor = || StoreError::Corrupt("not a cursor of this walk".into());
        let (mut shard, mut position) = match &cursor {
            Some(cursor) => {
                let (shard, position) = cursor.split_once(':').ok_or_else(bad_cursor)?;
                (
                    shard.parse::<u16>().map_err(|_| bad_cursor())?,
                    position.to_string(),
                )
            }
            None => (0, "0".to_string()),
        };
        let mut items = Vec::new();
        // Shards with few jobs answer in one step each: go on until the page is full.
        while shard < SHARDS && items.len() < limit.max(1) {
            let (jobs, next) = self
                .jobs_step(Shard::numbered(shard), &position, limit)
                .await?;
            items.extend(jobs);
            if next == "0" {
                shard += 1;
                position = "0".into();
            } else {
                position = next;
            }
        }
        let next = (shard < SHARDS).then(|| format!("{shard}:{position}"));
        Ok(RecordPage { items, next })
    }

    async fn endpoint_states(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<RecordPage<(String, EndpointState)>, StoreError> {
        let (keys, next) = self
            .redis
            .scan_step(cursor.as_deref(), ENDPOINT_KEYS, limit.max(1))
            .await?;
        let mut items = Vec::new();
        let mut ids: Vec<String> = keys
            .iter()
            .filter_map(|key| key.strip_prefix(ENDPOINT_PREFIX))
            .map(str::to_string)
            .collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            // Endpoint ids are few and configured: a repeat within a page is all SCAN
            // can produce that matters, and a later repeat holds the same state.
            let state = self
                .redis
                .bounded(webhooks::state(&self.redis, &id))
                .await?;
            items.push((id, state));
        }
        Ok(RecordPage { items, next })
    }
}

pub(super) fn view(store: &RedisStore) -> Box<dyn BackupView> {
    Box::new(RedisView {
        redis: store.redis.clone(),
        kind: if store.redis.is_cluster() {
            StoreKind::RedisCluster
        } else {
            StoreKind::Redis
        },
        contacts: Seen::default(),
        tombstones: Seen::default(),
        allowances: Seen::default(),
        jobs: Seen::default(),
    })
}

/// Looks for any key of ours on every primary; stops at the first.
pub(super) async fn is_empty(redis: &Redis) -> Result<bool, StoreError> {
    let mut cursor = None;
    loop {
        let (keys, next) = redis
            .bounded(redis.scan_step(cursor.as_deref(), ALL_KEYS, 1000))
            .await?;
        if !keys.is_empty() {
            return Ok(false);
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(true),
        }
    }
}

pub(super) async fn restore(store: &RedisStore, batch: RestoreBatch) -> Result<(), StoreError> {
    let redis = &store.redis;
    futures_util::stream::iter(batch.contacts)
        .map(|change| async move { redis.bounded(store.apply_change(&change)).await })
        .buffer_unordered(CONCURRENT)
        .try_collect::<Vec<()>>()
        .await?;
    futures_util::stream::iter(batch.tombstones)
        .map(|(id, tombstone)| async move {
            let mut set = ::redis::cmd("SET");
            set.arg(Shard::of(&id).tombstone(&id))
                .arg(encode(&tombstone)?);
            redis.bounded(redis.query::<()>(set)).await
        })
        .buffer_unordered(CONCURRENT)
        .try_collect::<Vec<()>>()
        .await?;
    futures_util::stream::iter(batch.mail_allowances)
        .map(|(allowance, expires_at)| async move {
            let id = &allowance.contact_id;
            let mut invocation = RESTORE_ALLOWANCE.prepare_invoke();
            invocation
                .key(Shard::of(id).mail_allowance(id))
                .arg(millis(expires_at));
            for at in &allowance.taken_at {
                invocation
                    .arg(millis(*at))
                    .arg(Uuid::new_v4().simple().to_string());
            }
            redis.bounded(redis.invoke::<i64>(invocation)).await
        })
        .buffer_unordered(CONCURRENT)
        .try_collect::<Vec<i64>>()
        .await?;
    futures_util::stream::iter(batch.jobs)
        .map(|record| async move {
            let owner = &record.job.contact_id;
            let shard = Shard::of(owner);
            let (state, score) = match record.state {
                JobState::Queued { due } => ("queued", millis(due)),
                JobState::Dead => ("dead", millis(record.job.created_at)),
            };
            let mut invocation = RESTORE_JOB.prepare_invoke();
            invocation
                .key(shard.jobs())
                .key(shard.queue())
                .key(shard.dead())
                .key(shard.contact_jobs(owner))
                .arg(record.job.id.to_string())
                .arg(encode(&record.job)?)
                .arg(state)
                .arg(score);
            redis.bounded(redis.invoke::<i64>(invocation)).await?;
            if state == "queued" {
                store.outbox.mark_busy(shard);
            }
            Ok::<_, StoreError>(())
        })
        .buffer_unordered(CONCURRENT)
        .try_collect::<Vec<()>>()
        .await?;
    for (endpoint, state) in batch.endpoint_states {
        redis
            .bounded(webhooks::restore_state(redis, &endpoint, &state))
            .await?;
    }
    Ok(())
}

pub(super) async fn restore_mark(redis: &Redis) -> Result<Option<RestoreMark>, StoreError> {
    let mut get = ::redis::cmd("GET");
    get.arg(RESTORE_MARK_KEY);
    let value: Option<Vec<u8>> = redis.bounded(redis.query(get)).await?;
    value.map(|json| decode(&json)).transpose()
}

pub(super) async fn set_restore_mark(
    redis: &Redis,
    mark: Option<&RestoreMark>,
) -> Result<(), StoreError> {
    let command = match mark {
        Some(mark) => {
            let mut set = ::redis::cmd("SET");
            set.arg(RESTORE_MARK_KEY).arg(encode(mark)?);
            set
        }
        None => {
            let mut del = ::redis::cmd("DEL");
            del.arg(RESTORE_MARK_KEY);
            del
        }
    };
    redis.bounded(redis.query::<Value>(command)).await.map(drop)
}
