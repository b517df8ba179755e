//! The member index on Redis: finding a contact by its member key, a keyed hash of its
//! address's MD5 (Mailchimp's `subscriber_hash`; see `service::members`).
//!
//! An entry lives in its contact's slot, in the hash `optin:{s<b>}:mi:<d>` (member key →
//! contact id, both as their 16 raw bytes; `<d>` is the member key's first hex digit), and
//! the apply script writes it in the same atomic step as the change that gives or takes
//! the address: no failed or interrupted write can leave an entry behind.
//!
//! The MD5 alone does not tell the contact's shard, so a lookup asks every shard: 256
//! `HGET`s in one pipeline on one Redis, one per shard on a cluster. Lookups by MD5 are
//! rare (a Mailchimp client reading a member), and a few hundred microseconds is a fair
//! price for atomicity. Sixteen hashes per shard with raw-byte fields keep each hash small
//! enough for Redis's compact encoding: about 40 B per contact at 100,000 contacts,
//! against about 190 B for a key of its own.

use std::sync::LazyLock;

use ::redis::{Script, Value};

use super::connection::{parse, Redis};
use super::keys::Shard;
use crate::domain::ContactId;
use crate::store::StoreError;

/// A member key (hex) as its stored field: its raw bytes.
pub(super) fn field(member_key: &str) -> Result<Vec<u8>, StoreError> {
    hex::decode(member_key)
        .map_err(|_| StoreError::Corrupt("a member index key must be hex digits".into()))
}

/// A contact id as the stored value of its entry: its raw bytes.
pub(super) fn value(id: &ContactId) -> Result<Vec<u8>, StoreError> {
    hex::decode(id.as_str()).map_err(|_| StoreError::Corrupt("a contact id must be hex".into()))
}

pub(super) async fn find(redis: &Redis, member_key: &str) -> Result<Option<ContactId>, StoreError> {
    let field = field(member_key)?;
    let per_shard = redis
        .query_every_shard(|shard| {
            let mut hget = ::redis::cmd("HGET");
            hget.arg(shard.member_index(member_key)).arg(&field);
            hget
        })
        .await?;
    // Entries sit with their contacts, so only the owner's shard answers one.
    let Some(found) = per_shard
        .into_iter()
        .map(|(_, value): (Shard, Value)| value)
        .find(|value| !matches!(value, Value::Nil))
    else {
        return Ok(None);
    };
    let bytes: Vec<u8> = parse(found)?;
    ContactId::parse(&hex::encode(bytes))
        .map(Some)
        .map_err(|_| StoreError::Corrupt("a member index entry".into()))
}

/// Writes one entry while its contact is at the version it was computed from.
static INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            include_str!("stored_version.lua"),
            include_str!("index_member.lua"),
        ]
        .concat(),
    )
});

/// Adds the entry `member_key` → `id` when the contact is stored at `version` (the
/// backfill of contacts stored before the index existed).
pub(super) async fn index(
    redis: &Redis,
    id: &ContactId,
    version: u64,
    member_key: &str,
) -> Result<bool, StoreError> {
    let shard = Shard::of(id);
    let mut invocation = INDEX.prepare_invoke();
    invocation
        .key(shard.contact(id))
        .key(shard.member_index(member_key))
        .arg(version)
        .arg(field(member_key)?)
        .arg(value(id)?);
    let written: i64 = redis.invoke(invocation).await?;
    Ok(written == 1)
}
