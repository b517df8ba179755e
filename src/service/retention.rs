//! Retention: a contact with no active subscription is kept (with its proof) for
//! `privacy.retain_inactive_days`, then removed. A tombstone keyed by the contact id stays,
//! so that an import cannot quietly re-add someone who left.

use chrono::{DateTime, Utc};

use super::commit::Reach;
use super::Subscriptions;
use crate::domain::{ContactId, ErasureReason, Planned, RequestMeta};
use crate::store::StoreError;

const RETENTION_BATCH: usize = 500;

impl Subscriptions {
    /// Removes contacts inactive for longer than the configured retention. Returns how
    /// many were removed; does nothing when no retention is configured.
    pub async fn purge_inactive(&self) -> Result<usize, StoreError> {
        let Some(days) = self.config.settings.privacy.retain_inactive_days else {
            return Ok(0);
        };
        let cutoff = crate::clock::earlier(self.now(), crate::clock::days(days.into()));
        let mut removed = 0;
        loop {
            let candidates = self
                .store
                .inactive_contacts(cutoff, RETENTION_BATCH)
                .await?;
            let mut removed_now = 0;
            for id in &candidates {
                removed_now += usize::from(self.purge_if_inactive(id, cutoff).await?);
            }
            removed += removed_now;
            // Stop when a batch removed nothing (all were kept for a reason) or was the last.
            if candidates.len() < RETENTION_BATCH || removed_now == 0 {
                return Ok(removed);
            }
        }
    }

    async fn purge_if_inactive(
        &self,
        id: &ContactId,
        cutoff: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let erased = self
            .commit(id, Reach::Signup, |found| {
                Ok::<_, StoreError>(match found.contact {
                    Some(contact) if contact.is_inactive_before(cutoff) => contact
                        .erase(ErasureReason::Retention, &RequestMeta::default(), found.now)
                        .map(Some),
                    _ => Planned::Nothing(None),
                })
            })
            .await?;
        let Some(erased) = erased else {
            return Ok(false);
        };
        self.erase_forwards(&erased).await?;
        Ok(true)
    }
}
