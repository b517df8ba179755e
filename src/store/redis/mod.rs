//! The Redis store: the production backend, for one Redis or a Redis Cluster.
//!
//! - [`keys`]: the key schema (shards, hash tags, the key-layout table);
//! - [`connection`]: lazy connection, bounded calls, pipelines over shards;
//! - [`outbox`]: claiming due jobs and the job scripts;
//! - [`event_log`]: a contact's events, one framed string;
//! - [`member_index`]: finding a contact by its Mailchimp `subscriber_hash`;
//! - here: the [`Store`] contract on top of them, and the atomic write of a change.
//!
//! Every operation is bounded by [`DEADLINE`], so a Redis that is down or stalls costs a
//! caller about two seconds at most, and the store heals once Redis is back.

mod backup;
mod connection;
mod event_log;
mod keys;
mod member_index;
mod outbox;
mod webhooks;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use ::redis::Script;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use connection::DEADLINE;
pub use keys::SHARDS;

use self::connection::{get, hget, is_wrong_type, merge_scored, parse, Redis};
use self::keys::Shard;
use self::outbox::Outbox;
use super::codec::{
    decode, encode, encode_contact, encode_event, fixed_window, millis, parse_contact_member,
    parse_pending_member, pending_member,
};
use super::{
    BackupView, ContactPage, EndpointAttempt, EndpointState, HitWindow, OutboxDepth, RestoreBatch,
    RestoreMark, Store, StoreError,
};
use crate::domain::{
    Contact, ContactChange, ContactId, ContactWrite, Event, OutboxJob, Timer, Tombstone,
};

/// A fixed-window counter: the first hit of a window starts its expiry.
static COUNT_HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new("local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n")
});
/// Gives one hit back: never below zero, and never brings a window's key back to life.
static GIVE_BACK_HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new("if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end return 0")
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
static APPLY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            include_str!("stored_version.lua"),
            include_str!("apply.lua"),
        ]
        .concat(),
    )
});

pub struct RedisStore {
    redis: Arc<Redis>,
    outbox: Outbox,
}

impl RedisStore {
    /// Reads `redis://host:port[/db]` or `redis+cluster://h1:p1,h2:p2,…`
    /// (credentials, if any, as `redis+cluster://user:password@h1:p1,h2:p2`). A URL that
    /// is not valid fails here; an unreachable Redis does not: the first call connects,
    /// and until Redis answers every call fails with [`StoreError::Unavailable`].
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let store = Self {
            redis: Arc::new(Redis::new(url)?),
            outbox: Outbox::new(),
        };
        if let Err(error) = store.ping().await {
            tracing::warn!(%error, "Redis does not answer yet; starting anyway, not ready until it does");
        }
        Ok(store)
    }

    /// The expiry-index members of every pending confirmation the stored contact holds.
    /// An erasure removes them all, even those the change does not list, so that an erased
    /// contact leaves nothing behind. The script's version check makes this read exact: a
    /// contact that changed since makes the whole write a conflict.
    async fn stored_pending_members(&self, id: &ContactId) -> Result<Vec<String>, StoreError> {
        // A stored contact that no longer decodes must still be erasable, so it counts
        // as holding no pending confirmation.
        let pending = match self.read_contacts(std::slice::from_ref(id)).await {
            Ok(mut contacts) => contacts
                .pop()
                .flatten()
                .map(|contact| contact.pending().to_vec())
                .unwrap_or_default(),
            Err(StoreError::Corrupt(_)) => Vec::new(),
            Err(error) => return Err(error),
        };
        Ok(pending
            .iter()
            .map(|pending| pending_member(id, pending.id))
            .collect())
    }

    /// The contacts stored under `ids`, in that order, in one pipelined round trip. A
    /// contact that an earlier release stored as a hash answers `GET` with WRONGTYPE;
    /// those few are read again from the hash, so an old store works without a migration
    /// step and is rewritten contact by contact as each one changes.
    async fn read_contacts(&self, ids: &[ContactId]) -> Result<Vec<Option<Contact>>, StoreError> {
        let gets = ids
            .iter()
            .map(|id| (Shard::of(id), get(Shard::of(id).contact(id))))
            .collect();
        let mut values = self.redis.query_each_tolerant(gets).await?;
        let legacy: Vec<usize> = values
            .iter()
            .enumerate()
            .filter(|(_, value)| is_wrong_type(value))
            .map(|(index, _)| index)
            .collect();
        if !legacy.is_empty() {
            let hgets = legacy
                .iter()
                .map(|&index| {
                    let id = &ids[index];
                    (Shard::of(id), hget(Shard::of(id).contact(id), "d"))
                })
                .collect();
            let bodies = self.redis.query_each(hgets).await?;
            for (index, body) in legacy.into_iter().zip(bodies) {
                values[index] = body;
            }
        }
        values
            .into_iter()
            .map(|value| {
                parse::<Option<Vec<u8>>>(value)?
                    .map(|stored| decode(contact_body(&stored)))
                    .transpose()
            })
            .collect()
    }

    /// The counters of one hash per shard, summed; zeros left out.
    async fn sum_over_shards(
        &self,
        hash: fn(Shard) -> String,
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        self.redis
            .bounded(async {
                let per_shard = self
                    .redis
                    .query_every_shard(|shard| {
                        let mut hgetall = ::redis::cmd("HGETALL");
                        hgetall.arg(hash(shard));
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

    async fn apply_change(&self, change: &ContactChange) -> Result<(), StoreError> {
        let id = &change.contact_id;
        let shard = Shard::of(id);
        let mut removed_members: Vec<String> = change
            .pending_removed
            .iter()
            .map(|pending| pending_member(id, *pending))
            .collect();
        if matches!(change.write, ContactWrite::Delete) {
            removed_members.extend(self.stored_pending_members(id).await?);
        }
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
        let index = &change.member_index;
        // An absent entry still names a hash of this shard: the script's keys are fixed.
        let index_hash =
            |entry: &Option<String>| shard.member_index(entry.as_deref().unwrap_or("0"));
        invocation
            .key(index_hash(&index.set))
            .key(index_hash(&index.remove))
            .key(shard.funnel());
        for timer in Timer::ALL {
            invocation.key(shard.due(timer));
        }
        invocation.arg(change.expected_version).arg(id.as_str());
        match &change.write {
            ContactWrite::Put(contact) => invocation
                .arg("put")
                .arg(contact.version())
                .arg(encode_contact(contact)?),
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
            .arg(removed_members.len())
            .arg(change.counters.len())
            .arg(change.funnel.len());
        for event in &change.new_events {
            invocation.arg(encode_event(event)?);
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
            invocation
                .arg(pending_member(id, *pending))
                .arg(millis(*expires_at));
        }
        for member in &removed_members {
            invocation.arg(member);
        }
        for (name, delta) in change.counters.iter().chain(&change.funnel) {
            invocation.arg(name).arg(*delta);
        }
        invocation.arg(
            change
                .inactive_since
                .map(|at| millis(at).to_string())
                .unwrap_or_default(),
        );
        let index_field = |entry: &Option<String>| {
            entry
                .as_deref()
                .map(member_index::field)
                .transpose()
                .map(Option::unwrap_or_default)
        };
        invocation
            .arg(index_field(&index.set)?)
            .arg(index_field(&index.remove)?)
            .arg(member_index::value(id)?);
        for timer in Timer::ALL {
            let due = change.timers.get(&timer).copied().flatten();
            invocation.arg(due.map(|at| millis(at).to_string()).unwrap_or_default());
        }
        let written: i64 = self.redis.invoke(invocation).await?;
        if written == 1 {
            if !change.new_jobs.is_empty() {
                self.outbox.mark_busy(shard);
            }
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    /// Members of a scored index that are at or below `max` (a score, or `(score` for
    /// strictly below) on any shard: the lowest `limit` of them, lowest first.
    async fn lowest_scored(
        &self,
        index: impl Fn(Shard) -> String,
        max: String,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let per_shard = self
            .redis
            .query_every_shard(|shard| {
                let mut range = ::redis::cmd("ZRANGEBYSCORE");
                range
                    .arg(index(shard))
                    .arg("-inf")
                    .arg(&max)
                    .arg("WITHSCORES")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit);
                range
            })
            .await?;
        Ok(merge_scored(per_shard, limit)?
            .into_iter()
            .map(|(_, member)| member)
            .collect())
    }
}

/// The contact inside a stored value: after the `<version>:` prefix of the string form,
/// or the whole `d` field of an earlier release's hash (JSON, which has no such prefix).
fn contact_body(stored: &[u8]) -> &[u8] {
    let digits = stored
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    match stored.get(digits) {
        Some(b':') if digits > 0 => &stored[digits + 1..],
        _ => stored,
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.redis
            .bounded(self.redis.query::<()>(::redis::cmd("PING")))
            .await
    }

    async fn load_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        let mut contacts = self.load_contacts(std::slice::from_ref(id)).await?;
        Ok(contacts.pop().flatten())
    }

    async fn load_contacts(&self, ids: &[ContactId]) -> Result<Vec<Option<Contact>>, StoreError> {
        self.redis.bounded(self.read_contacts(ids)).await
    }

    async fn apply(&self, change: ContactChange) -> Result<(), StoreError> {
        self.redis.bounded(self.apply_change(&change)).await
    }

    async fn events(&self, id: &ContactId) -> Result<Vec<Event>, StoreError> {
        self.redis.bounded(event_log::read(&self.redis, id)).await
    }

    async fn tombstone(&self, id: &ContactId) -> Result<Option<Tombstone>, StoreError> {
        let mut get = ::redis::cmd("GET");
        get.arg(Shard::of(id).tombstone(id));
        self.redis
            .bounded(async {
                let tombstone: Option<Vec<u8>> = self.redis.query(get).await?;
                tombstone.map(|json| decode(&json)).transpose()
            })
            .await
    }

    async fn counters(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        self.sum_over_shards(Shard::stats).await
    }

    async fn funnel_counters(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        self.sum_over_shards(Shard::funnel).await
    }

    async fn expired_pending(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(ContactId, Uuid)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.redis
            .bounded(async {
                // The longest expired first, as the embedded store answers.
                let members = self
                    .lowest_scored(Shard::expiry, millis(now).to_string(), limit)
                    .await?;
                members
                    .iter()
                    .map(|member| parse_pending_member(member))
                    .collect()
            })
            .await
    }

    async fn purge_erased(&self) -> Result<(), StoreError> {
        self.redis.bounded(self.redis.rewrite_persistence()).await
    }

    async fn due_contacts(
        &self,
        timer: Timer,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.redis
            .bounded(async {
                let members = self
                    .lowest_scored(|shard| shard.due(timer), millis(until).to_string(), limit)
                    .await?;
                members
                    .iter()
                    .map(|member| parse_contact_member(member))
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
        self.redis
            .bounded(async {
                let members = self
                    .lowest_scored(Shard::inactive, format!("({}", millis(before)), limit)
                    .await?;
                members
                    .iter()
                    .map(|member| parse_contact_member(member))
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
        // One key per client and window.
        let mut invocation = COUNT_HIT.prepare_invoke();
        invocation
            .key(keys::rate_limit(key, fixed_window(now, window_secs)))
            .arg(window_secs.max(1).saturating_mul(1000));
        self.redis.bounded(self.redis.invoke(invocation)).await
    }

    async fn give_back_hit(&self, key: &str, window: HitWindow) -> Result<(), StoreError> {
        let mut invocation = GIVE_BACK_HIT.prepare_invoke();
        invocation.key(keys::rate_limit(key, fixed_window(window.at, window.secs)));
        let _: i64 = self.redis.bounded(self.redis.invoke(invocation)).await?;
        Ok(())
    }

    async fn take_mail_allowance(
        &self,
        id: &ContactId,
        limit: u32,
        window_secs: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut invocation = TAKE_ALLOWANCE.prepare_invoke();
        invocation
            .key(Shard::of(id).mail_allowance(id))
            .arg(millis(now))
            .arg(window_secs.saturating_mul(1000))
            .arg(limit)
            // Only needs to be unique within the set: the score holds the time.
            .arg(Uuid::new_v4().simple().to_string());
        let granted: i64 = self.redis.bounded(self.redis.invoke(invocation)).await?;
        Ok(granted == 1)
    }

    async fn spend_once(
        &self,
        key: &str,
        expires_at: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // Redis's clock decides the expiry, so every instance sees the same record; a
        // time already past makes Redis drop the key at once.
        let mut set = ::redis::cmd("SET");
        set.arg(keys::spent(key))
            .arg(1)
            .arg("NX")
            .arg("PXAT")
            .arg(millis(expires_at).max(1));
        let answer: Option<String> = self.redis.bounded(self.redis.query(set)).await?;
        Ok(answer.is_some())
    }

    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<OutboxJob>, StoreError> {
        self.redis
            .bounded(self.outbox.claim(&self.redis, now, lease_until))
            .await
    }

    async fn complete_job(&self, job: &OutboxJob) -> Result<(), StoreError> {
        self.redis.bounded(outbox::complete(&self.redis, job)).await
    }

    async fn retry_job_later(&self, job: &OutboxJob, due: DateTime<Utc>) -> Result<(), StoreError> {
        self.redis
            .bounded(outbox::retry_later(&self.redis, job, due))
            .await
    }

    async fn dead_letter_job(&self, job: &OutboxJob) -> Result<(), StoreError> {
        self.redis
            .bounded(outbox::dead_letter(&self.redis, job))
            .await
    }

    async fn dead_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>, StoreError> {
        self.redis
            .bounded(outbox::dead_jobs(&self.redis, limit))
            .await
    }

    async fn revive_dead_job(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.redis
            .bounded(outbox::revive(&self.redis, id, now))
            .await
    }

    async fn contact_jobs(&self, id: &ContactId) -> Result<Vec<OutboxJob>, StoreError> {
        self.redis
            .bounded(webhooks::contact_jobs(&self.redis, id))
            .await
    }

    async fn queue_job(&self, job: &OutboxJob) -> Result<(), StoreError> {
        self.redis
            .bounded(webhooks::queue_job(&self.redis, job))
            .await?;
        self.outbox.mark_busy(Shard::of(&job.contact_id));
        Ok(())
    }

    async fn webhook_backlog(&self) -> Result<BTreeMap<String, OutboxDepth>, StoreError> {
        self.redis.bounded(webhooks::backlog(&self.redis)).await
    }

    async fn endpoint_state(&self, endpoint: &str) -> Result<EndpointState, StoreError> {
        self.redis
            .bounded(webhooks::state(&self.redis, endpoint))
            .await
    }

    async fn record_endpoint_attempt(
        &self,
        endpoint: &str,
        attempt: EndpointAttempt,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.redis
            .bounded(webhooks::record_attempt(&self.redis, endpoint, attempt, at))
            .await
    }

    async fn enable_endpoint(&self, endpoint: &str) -> Result<(), StoreError> {
        self.redis
            .bounded(webhooks::enable(&self.redis, endpoint))
            .await
    }

    async fn find_member(&self, key: &str) -> Result<Option<ContactId>, StoreError> {
        self.redis
            .bounded(member_index::find(&self.redis, key))
            .await
    }

    async fn contact_ids_page(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<ContactPage, StoreError> {
        self.redis
            .bounded(async {
                let (keys, next) = self
                    .redis
                    .scan_step(cursor.as_deref(), keys::CONTACT_KEYS, limit)
                    .await?;
                let ids = keys
                    .iter()
                    .filter_map(|key| keys::contact_in(key))
                    .map(|id| {
                        ContactId::parse(id)
                            .map_err(|_| StoreError::Corrupt("a contact key".into()))
                    })
                    .collect::<Result<_, _>>()?;
                Ok(ContactPage { ids, next })
            })
            .await
    }

    async fn index_member(
        &self,
        id: &ContactId,
        version: u64,
        key: &str,
    ) -> Result<bool, StoreError> {
        self.redis
            .bounded(member_index::index(&self.redis, id, version, key))
            .await
    }

    async fn outbox_depth(&self) -> Result<OutboxDepth, StoreError> {
        self.redis
            .bounded(async {
                let mut commands = Vec::new();
                for shard in Shard::all() {
                    for key in [shard.queue(), shard.dead()] {
                        let mut zcard = ::redis::cmd("ZCARD");
                        zcard.arg(key);
                        commands.push((shard, zcard));
                    }
                }
                let counts = self.redis.query_each(commands).await?;
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

    async fn backup_view(&self) -> Result<Box<dyn BackupView>, StoreError> {
        Ok(backup::view(self))
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        backup::is_empty(&self.redis).await
    }

    async fn restore(&self, batch: RestoreBatch) -> Result<(), StoreError> {
        backup::restore(self, batch).await
    }

    async fn restore_mark(&self) -> Result<Option<RestoreMark>, StoreError> {
        backup::restore_mark(&self.redis).await
    }

    async fn set_restore_mark(&self, mark: &RestoreMark) -> Result<(), StoreError> {
        backup::set_restore_mark(&self.redis, Some(mark)).await
    }

    async fn clear_restore_mark(&self) -> Result<(), StoreError> {
        backup::set_restore_mark(&self.redis, None).await
    }
}
