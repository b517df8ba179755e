//! What is left of an erased contact: enough to refuse a silent re-import, nothing more.

use chrono::{DateTime, Utc};

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
}

impl Tombstone {
    /// The tombstone of an erasure or purge at `now`, tied to the request that caused it.
    pub fn new(reason: ErasureReason, meta: &RequestMeta, now: DateTime<Utc>) -> Self {
        Self {
            erased_at: now,
            reason,
            request_id: meta.request_id.clone(),
        }
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
