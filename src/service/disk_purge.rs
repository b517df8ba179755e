//! Erasure reaches the disk: within `privacy.erasure_purge_minutes` of an erasure (or a
//! rectification, which removes the old address), the store is asked to make what it
//! freed unreadable in its own files (see `Store::purge_erased`). Erasures are batched:
//! the purge runs at most about once per period, and at least once after a start, since
//! a process that stopped may have left one waiting.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::Subscriptions;
use crate::store::StoreError;

/// When a purge is owed and when the last one ran.
#[derive(Debug, Default)]
pub(super) struct DiskPurge {
    state: Mutex<PurgeState>,
}

#[derive(Debug, Default)]
struct PurgeState {
    /// The first erasure not yet purged.
    owed_since: Option<DateTime<Utc>>,
    last_run: Option<DateTime<Utc>>,
}

impl DiskPurge {
    /// A purge is owed from the start: the last process may have erased and stopped.
    pub(super) fn owed_from(now: DateTime<Utc>) -> Self {
        Self {
            state: Mutex::new(PurgeState {
                owed_since: Some(now),
                last_run: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PurgeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn note(&self, now: DateTime<Utc>) {
        self.state().owed_since.get_or_insert(now);
    }

    /// Whether the purge is due at `now`: owed, and either never run or run a period
    /// ago. `slack` is how late the caller may come (its own interval), taken off the
    /// period so that the purge still lands within it after the erasure.
    fn due(&self, now: DateTime<Utc>, period: Duration, slack: Duration) -> bool {
        let state = self.state();
        let Some(owed_since) = state.owed_since else {
            return false;
        };
        let earliest = state
            .last_run
            .map_or(owed_since, |last| (last + period - slack).max(owed_since));
        now >= earliest
    }

    fn done(&self, started: DateTime<Utc>) {
        let mut state = self.state();
        state.last_run = Some(started);
        // An erasure noted while the purge ran stays owed.
        if state.owed_since.is_some_and(|since| since <= started) {
            state.owed_since = None;
        }
    }
}

impl Subscriptions {
    /// An erasure (or a move) freed personal data in the store.
    pub(super) fn note_erasure(&self) {
        self.disk_purge.note(self.now());
    }

    /// Runs the store's purge when one is owed and due. The scheduler calls this every
    /// `tick` (its own interval); answers whether the purge ran.
    pub async fn purge_erased_if_due(&self, tick: std::time::Duration) -> Result<bool, StoreError> {
        let now = self.now();
        let period = Duration::minutes(i64::from(
            self.config.settings.privacy.erasure_purge_minutes,
        ));
        let slack = Duration::from_std(tick).unwrap_or_default().min(period / 2);
        if !self.disk_purge.due(now, period, slack) {
            return Ok(false);
        }
        self.store.purge_erased().await?;
        self.disk_purge.done(now);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owed_purges_run_at_once_then_at_most_once_a_period_and_never_unowed() {
        let start = Utc::now();
        let hour = Duration::hours(1);
        let purge = DiskPurge::owed_from(start);
        assert!(
            purge.due(start, hour, Duration::zero()),
            "owed from the start"
        );
        purge.done(start);
        assert!(
            !purge.due(start + hour * 3, hour, Duration::zero()),
            "nothing owed"
        );

        let erased = start + Duration::minutes(10);
        purge.note(erased);
        assert!(
            !purge.due(erased, hour, Duration::zero()),
            "a period since the last run first"
        );
        assert!(
            purge.due(start + hour, hour, Duration::zero()),
            "within a period of the erasure"
        );
        assert!(
            purge.due(
                start + hour - Duration::minutes(1),
                hour,
                Duration::minutes(1)
            ),
            "early by the caller's slack"
        );
        purge.done(start + hour);
        let later = start + hour * 5;
        purge.note(later);
        assert!(
            purge.due(later, hour, Duration::zero()),
            "long after the last run: at once"
        );
    }
}
