//! The member index on redb: member key (a keyed hash of an address's MD5) → contact id,
//! written in the same write transaction as the contact, so the two never disagree.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{read_contact, unavailable, EmbeddedStore, CONTACTS};
use crate::domain::{ContactChange, ContactId};
use crate::store::StoreError;

/// member key → contact id.
pub(super) const MEMBER_INDEX: TableDefinition<&str, &str> = TableDefinition::new("member_index");

/// Applies the change's member index entries inside its write transaction.
pub(super) fn apply_in(txn: &WriteTransaction, change: &ContactChange) -> Result<(), StoreError> {
    let mut index = txn.open_table(MEMBER_INDEX).map_err(unavailable)?;
    let id = change.contact_id.as_str();
    if let Some(key) = &change.member_index.remove {
        // Only this contact's own entry: another contact's must survive.
        let points_here = index
            .get(key.as_str())
            .map_err(unavailable)?
            .is_some_and(|found| found.value() == id);
        if points_here {
            index.remove(key.as_str()).map_err(unavailable)?;
        }
    }
    if let Some(key) = &change.member_index.set {
        index.insert(key.as_str(), id).map_err(unavailable)?;
    }
    Ok(())
}

pub(super) async fn find(
    store: &EmbeddedStore,
    key: &str,
) -> Result<Option<ContactId>, StoreError> {
    let key = key.to_string();
    store
        .read(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(MEMBER_INDEX).map_err(unavailable)?;
            let found = table.get(key.as_str()).map_err(unavailable)?;
            found
                .map(|id| {
                    ContactId::parse(id.value())
                        .map_err(|_| StoreError::Corrupt("a member index entry".into()))
                })
                .transpose()
        })
        .await
}

/// Writes `key` → `id` when the contact is stored at `version`, in one transaction.
pub(super) async fn index(
    store: &EmbeddedStore,
    id: &ContactId,
    version: u64,
    key: &str,
) -> Result<bool, StoreError> {
    let (id, key) = (id.clone(), key.to_string());
    store
        .blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            let written = {
                let contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
                let stored = read_contact(&contacts, &id)?.map(|contact| contact.version());
                if stored == Some(version) {
                    let mut index = txn.open_table(MEMBER_INDEX).map_err(unavailable)?;
                    index
                        .insert(key.as_str(), id.as_str())
                        .map_err(unavailable)?;
                    true
                } else {
                    false
                }
            };
            txn.commit().map_err(unavailable)?;
            Ok(written)
        })
        .await
}
