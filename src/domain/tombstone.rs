//! What is left at a contact id whose contact went: after an erasure, enough to refuse a
//! silent re-import, nothing more; after a rectification, where the contact moved, so
//! that links mailed before still reach the person. Neither holds an address.

use chrono::{DateTime, Utc};

use super::contact_id::ContactId;
use super::event::RequestMeta;

/// Why a contact's data went. Stored as the strings tombstones always had.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureReason {
    /// An admin's Art. 17 request; also what tombstones written before reasons existed mean.
    #[default]
    Erasure,
    /// The person's own, from the preference center.
    SelfService,
    /// Inactive past `privacy.retain_inactive_days`.
    Retention,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tombstone {
    pub erased_at: DateTime<Utc>,
    #[serde(default)]
    pub reason: ErasureReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Set when a rectification moved the contact: its new id. Such a record is no
    /// erasure; it goes when the person's data is erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<ContactId>,
}

impl Tombstone {
    /// The tombstone of an erasure or purge at `now`, tied to the request that caused it.
    pub fn new(reason: ErasureReason, meta: &RequestMeta, now: DateTime<Utc>) -> Self {
        Self {
            erased_at: now,
            reason,
            request_id: meta.request_id.clone(),
            moved_to: None,
        }
    }

    /// The record a rectification leaves at the old id.
    pub fn moved(to: ContactId, meta: &RequestMeta, now: DateTime<Utc>) -> Self {
        Self {
            erased_at: now,
            reason: ErasureReason::Erasure,
            request_id: meta.request_id.clone(),
            moved_to: Some(to),
        }
    }

    /// True for the record of an erasure (or retention purge), which stands against a
    /// silent re-import; false for a move.
    pub fn is_erasure(&self) -> bool {
        self.moved_to.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_stored_as_before() {
        for (reason, text) in [
            (ErasureReason::Erasure, "erasure"),
            (ErasureReason::SelfService, "self_service"),
            (ErasureReason::Retention, "retention"),
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), text);
            let stored = serde_json::json!({ "erased_at": "2024-01-01T00:00:00Z", "reason": text });
            let read: Tombstone = serde_json::from_value(stored).unwrap();
            assert_eq!(read.reason, reason);
        }
        let old = serde_json::json!({ "erased_at": "2024-01-01T00:00:00Z" });
        let read: Tombstone = serde_json::from_value(old).unwrap();
        assert_eq!(read.reason, ErasureReason::Erasure);
    }
}
