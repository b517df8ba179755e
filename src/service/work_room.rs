//! Bounds on the batch work in flight. A batch request waits for room for its items
//! before it starts, and holds it until it has answered.
//!
//! Without a bound, thirty-two batches arriving together all start at once, split the
//! same CPU and store thirty-two ways, and all miss their deadline together. With one,
//! they queue: each runs at full speed, the first answers early, and the memory of the
//! answers being built stays bounded.

use tokio::sync::{Semaphore, SemaphorePermit};

pub struct WorkRoom {
    permits: Semaphore,
    capacity: usize,
}

impl WorkRoom {
    /// Room for `capacity` items at once.
    pub fn new(capacity: usize) -> Self {
        Self {
            permits: Semaphore::new(capacity),
            capacity,
        }
    }

    /// Waits until `items` more fit, and keeps them in until the permit drops. A request
    /// larger than the whole room waits for all of it.
    pub async fn enter(&self, items: usize) -> SemaphorePermit<'_> {
        let wanted = items.clamp(1, self.capacity) as u32;
        self.permits
            .acquire_many(wanted)
            .await
            .expect("the semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_batch_waits_until_the_one_before_it_leaves() {
        let room = WorkRoom::new(10);
        let first = room.enter(8).await;
        let second = tokio::time::timeout(Duration::from_millis(50), room.enter(5)).await;
        assert!(
            second.is_err(),
            "5 more do not fit beside 8 in a room of 10"
        );
        drop(first);
        let oversized = tokio::time::timeout(Duration::from_millis(50), room.enter(50)).await;
        assert!(
            oversized.is_ok(),
            "a batch larger than the room takes all of it"
        );
    }
}
