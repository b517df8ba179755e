//! The member index on Redis: `optin:mi:{<member key>}` → contact id, where the member
//! key is a keyed hash of an address's MD5 (Mailchimp's `subscriber_hash`).
//!
//! The entry cannot live in the contact's slot: it is found from the MD5 alone, which
//! does not tell the contact's shard. A Redis Cluster cannot change two slots in one
//! atomic step, so the entry is its own key (its own hash tag, spread over the cluster),
//! written as an idempotent `SET` before the contact change that introduces the address,
//! and removed (only while it still names this contact) after the change that drops it.
//! A crash in between leaves at worst an entry whose contact is gone or has another
//! address; lookups verify the address's MD5 and answer "not found" for such entries.

use std::sync::LazyLock;

use ::redis::Script;

use super::connection::Redis;
use crate::domain::{ContactChange, ContactId};
use crate::store::StoreError;

/// Deletes the entry only while it names the given contact.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    )
});

fn key(member_key: &str) -> String {
    format!("optin:mi:{{{member_key}}}")
}

/// Before the contact change: the entry its new address needs.
pub(super) async fn before_apply(redis: &Redis, change: &ContactChange) -> Result<(), StoreError> {
    if let Some(member_key) = &change.member_index.set {
        let mut set = ::redis::cmd("SET");
        set.arg(key(member_key)).arg(change.contact_id.as_str());
        let () = redis.query(set).await?;
    }
    Ok(())
}

/// After the contact change was written: drop the entry of the address it removed.
pub(super) async fn after_apply(redis: &Redis, change: &ContactChange) -> Result<(), StoreError> {
    if let Some(member_key) = &change.member_index.remove {
        let mut invocation = REMOVE.prepare_invoke();
        invocation
            .key(key(member_key))
            .arg(change.contact_id.as_str());
        let _: i64 = redis.invoke(invocation).await?;
    }
    Ok(())
}

pub(super) async fn find(redis: &Redis, member_key: &str) -> Result<Option<ContactId>, StoreError> {
    let mut get = ::redis::cmd("GET");
    get.arg(key(member_key));
    let found: Option<String> = redis.query(get).await?;
    found
        .map(|id| {
            ContactId::parse(&id).map_err(|_| StoreError::Corrupt("a member index entry".into()))
        })
        .transpose()
}
