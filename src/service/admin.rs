//! Operator reads and outbox care: the counters, the dead letters and whether the store
//! answers. Routes ask these instead of reaching the store themselves.

use uuid::Uuid;

use super::Subscriptions;
use crate::domain::{OutboxJob, Stats};
use crate::store::{OutboxDepth, StoreError};

/// Dead letters listed per request.
const DEAD_LETTER_PAGE: usize = 500;

impl Subscriptions {
    /// Subscribers per type and status, from the store's counters.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let counters = self.store.counters().await?;
        Ok(Stats::from_counters(&counters, self.catalog()))
    }

    /// Mail that could not be sent after all retries, at most one page of it.
    pub async fn dead_letters(&self) -> Result<Vec<OutboxJob>, StoreError> {
        self.store.dead_jobs(DEAD_LETTER_PAGE).await
    }

    /// Queues a dead letter again and wakes the outbox; `false` when no dead letter has
    /// that id.
    pub async fn retry_dead_letter(&self, id: Uuid) -> Result<bool, StoreError> {
        let revived = self.store.revive_dead_job(id, self.clock.now()).await?;
        if revived {
            self.wake_outbox();
        }
        Ok(revived)
    }

    /// Whether the store answers; readiness means this.
    pub async fn check_store(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// How much mail waits, for the metrics.
    pub async fn outbox_depth(&self) -> Result<OutboxDepth, StoreError> {
        self.store.outbox_depth().await
    }
}
