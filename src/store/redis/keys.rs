//! The key schema of the Redis store.
//!
//! Keys are spread over [`SHARDS`] shards. A contact's shard is `b = contact_id.bucket(256)`
//! and every key of that contact carries the hash tag `{s<b>}`, e.g. `optin:{s17}:…`. So a
//! contact's state, its events, its outbox jobs, its expiry and retention entries, its
//! member index entry and the statistics counters its change touches all live in one
//! cluster slot, and one Lua script changes them atomically. Nothing ever needs a cross-slot operation; the outbox
//! and the counters are spread over all shards, and so over the whole cluster.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `optin:{s<b>}:c:<cid>` | string | `<version>:<contact, compact>` (earlier releases: a hash `v`, `d`: JSON; rewritten on the contact's next change) |
//! | `optin:{s<b>}:ev:<cid>` | string | events, oldest first, each compact and framed by its length (see `event_log`); earlier releases: a list, of JSON or compact events, rewritten on the contact's next event |
//! | `optin:{s<b>}:t:<cid>` | string | tombstone JSON |
//! | `optin:{s<b>}:jobs` | hash | job id → job JSON (queued, leased and dead jobs) |
//! | `optin:{s<b>}:queue` | zset | job id → due in ms (a leased job: its lease end) |
//! | `optin:{s<b>}:dead` | zset | job id → the job's creation time in ms (the listing order) |
//! | `optin:{s<b>}:cj:<cid>` | set | the contact's job ids, so an erasure finds them |
//! | `optin:{s<b>}:exp` | zset | `<cid>:<pending id>` → expiry in ms |
//! | `optin:{s<b>}:stats` | hash | counter name → count (zeros are dropped) |
//! | `optin:{s<b>}:funnel` | hash | confirmation funnel counter (`<day>\|<stage>\|<source>`) → count |
//! | `optin:{s<b>}:inactive` | zset | `<cid>` → inactive since, in ms (the retention index) |
//! | `optin:{s<b>}:due:<timer>` | zset | `<cid>` → when the timer is due, in ms (`reminder`, `consent`, `quarantine`) |
//! | `optin:{s<b>}:ma:<cid>` | zset | times (ms) of mails others' requests caused; expires after the window |
//! | `optin:rl:{<key>}:<window>` | string | rate-limit hits of one window; expires with it |
//! | `optin:{s<b>}:mi:<d>` | hash | member key → contact id, both raw bytes; `<d>` is the member key's first hex digit (see `member_index`) |
//! | `optin:once:{<key>}` | string | a single-use record (a solved signup challenge); expires with it |
//! | `optin:wh:<endpoint id>` | hash | `disabled_at`, `last_success_at`, `last_failure_at` (ms), `last_status` |
//!
//! Rate-limit keys belong to no contact: each is its own tag, so they spread over the
//! cluster, and each is one `INCR`.
//!
//! "Compact" is JSON compressed against a fixed dictionary (`store/compact.rs`), read
//! back together with plain JSON.
//!
//! Contact ids are keyed hashes of addresses, so no key (and no log line) holds an address.

use crate::domain::{ContactId, Timer};

/// A `SCAN` pattern that matches every contact key and nothing else (contact ids are hex,
/// and no other key has `}:c:`).
pub(super) const CONTACT_KEYS: &str = "optin:{s*}:c:*";

/// The contact id in a contact key.
pub(super) fn contact_in(key: &str) -> Option<&str> {
    key.split_once("}:c:").map(|(_, id)| id)
}

/// Number of shards (hash tags). Fixed forever: changing it would move every key.
pub const SHARDS: u16 = 256;

/// The keys of one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Shard(u16);

impl Shard {
    pub(super) fn of(contact: &ContactId) -> Self {
        Shard(contact.bucket(SHARDS))
    }

    /// All shards, starting at `first` and wrapping around.
    pub(super) fn all_from(first: usize) -> impl Iterator<Item = Shard> {
        let shards = usize::from(SHARDS);
        (0..shards).map(move |i| Shard(((first + i) % shards) as u16))
    }

    /// Shard number `n` (below [`SHARDS`]), for a walk shard by shard.
    pub(super) fn numbered(n: u16) -> Self {
        Shard(n % SHARDS)
    }

    pub(super) fn all() -> impl Iterator<Item = Shard> {
        Self::all_from(0)
    }

    fn key(self, name: &str) -> String {
        format!("optin:{{s{}}}:{name}", self.0)
    }

    pub(super) fn contact(self, id: &ContactId) -> String {
        self.key(&format!("c:{id}"))
    }

    pub(super) fn events(self, id: &ContactId) -> String {
        self.key(&format!("ev:{id}"))
    }

    pub(super) fn tombstone(self, id: &ContactId) -> String {
        self.key(&format!("t:{id}"))
    }

    pub(super) fn contact_jobs(self, id: &ContactId) -> String {
        self.key(&format!("cj:{id}"))
    }

    pub(super) fn mail_allowance(self, id: &ContactId) -> String {
        self.key(&format!("ma:{id}"))
    }

    pub(super) fn jobs(self) -> String {
        self.key("jobs")
    }

    pub(super) fn queue(self) -> String {
        self.key("queue")
    }

    pub(super) fn dead(self) -> String {
        self.key("dead")
    }

    pub(super) fn expiry(self) -> String {
        self.key("exp")
    }

    pub(super) fn stats(self) -> String {
        self.key("stats")
    }

    /// The confirmation funnel's counters (see `domain::funnel`).
    pub(super) fn funnel(self) -> String {
        self.key("funnel")
    }

    pub(super) fn inactive(self) -> String {
        self.key("inactive")
    }

    /// The due index of one timer: contact id → due time in ms.
    pub(super) fn due(self, timer: Timer) -> String {
        self.key(&format!("due:{}", timer.as_str()))
    }

    /// The member index hash of this shard that holds `member_key`: one of sixteen, by
    /// its first hex digit, so that each stays small (see `member_index`).
    pub(super) fn member_index(self, member_key: &str) -> String {
        self.key(&format!("mi:{}", member_key.get(..1).unwrap_or_default()))
    }
}

/// One webhook endpoint's delivery state. Endpoint ids are configured names, never
/// personal data; the key stands alone, outside every shard.
pub(super) fn webhook_endpoint(id: &str) -> String {
    format!("optin:wh:{id}")
}

/// A single-use record (see `Store::spend_once`). It belongs to no contact: each is its
/// own hash tag, so the records spread over the cluster.
pub(super) fn spent(key: &str) -> String {
    format!("optin:once:{{{key}}}")
}

/// The counter of one rate-limit key in one fixed window. The key is already a hash of
/// the client, never an address.
pub(super) fn rate_limit(key: &str, window: u64) -> String {
    format!("optin:rl:{{{key}}}:{window}")
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
            shard.mail_allowance(&id),
            shard.jobs(),
            shard.queue(),
            shard.dead(),
            shard.expiry(),
            shard.stats(),
            shard.funnel(),
            shard.inactive(),
            shard.member_index("f00d"),
            shard.due(Timer::Consent),
        ];
        let tag = format!("{{s{}}}", 0x0011 % SHARDS);
        for key in keys {
            assert!(
                key.starts_with(&format!("optin:{tag}:")),
                "{key} lacks the tag {tag}"
            );
        }
    }
}
