//! Expiry: pending confirmations not confirmed in time, and signups held in quarantine
//! as long, are purged, together with every piece of personal data that was held only
//! for them (data minimisation).

use uuid::Uuid;

use super::commit::Reach;
use super::Subscriptions;
use crate::domain::contact::Purged;
use crate::domain::{ContactId, Planned};
use crate::store::StoreError;

/// How many expired confirmations one run looks at.
const PURGE_BATCH: usize = 500;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub pending_removed: usize,
    pub contacts_removed: usize,
    /// Held signups dropped unreleased (their contacts too, when nothing else was held;
    /// not in `contacts_removed`).
    pub held_removed: usize,
}

impl Subscriptions {
    /// Purges everything that has expired by now. Runs until nothing is left.
    pub async fn purge_expired(&self) -> Result<PurgeReport, StoreError> {
        let mut report = self.purge_expired_pending().await?;
        report.held_removed = self.expire_quarantined().await?;
        Ok(report)
    }

    async fn purge_expired_pending(&self) -> Result<PurgeReport, StoreError> {
        let mut report = PurgeReport::default();
        loop {
            let expired = self.store.expired_pending(self.now(), PURGE_BATCH).await?;
            if expired.is_empty() {
                return Ok(report);
            }
            let mut stale_entries = 0;
            for (contact, pending) in &expired {
                match self.purge_pending(contact, *pending).await? {
                    Purged::Pending => report.pending_removed += 1,
                    Purged::Contact => {
                        report.pending_removed += 1;
                        report.contacts_removed += 1;
                    }
                    Purged::NotFound => stale_entries += 1,
                }
            }
            if stale_entries > 0 {
                // The index and the contacts are written atomically together, so this
                // means a bug; stop rather than loop over the same entries.
                tracing::warn!(
                    stale_entries,
                    "expiry index lists pending confirmations that do not exist"
                );
                return Ok(report);
            }
            if expired.len() < PURGE_BATCH {
                return Ok(report);
            }
        }
    }

    async fn purge_pending(&self, id: &ContactId, pending: Uuid) -> Result<Purged, StoreError> {
        self.commit(id, Reach::Signup, |found| {
            Ok::<_, StoreError>(match found.contact {
                Some(contact) => contact.clone().purge_pending(pending),
                None => Planned::Nothing(Purged::NotFound),
            })
        })
        .await
    }
}
