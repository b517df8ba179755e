//! The pace of public signup answers. A signup that queues a confirmation (a new
//! address) writes more than one that queues nothing (an opted-in, blocked or held
//! address, or one out of mails), so its answer came measurably later and told who is
//! subscribed. The same store work on both paths narrows the gap but cannot close it: a
//! confirmation's write is larger.
//!
//! So no answer goes before a time drawn from the work of recent confirmation-queuing
//! signups: the longest of [`DRAWS`] times for one that queued nothing, and the longest
//! of its own time and `DRAWS - 1` drawn times for one that did. Both are the longest of
//! `DRAWS` times from one distribution, that of this machine under the load of the
//! moment: no fixed floor to tune, and the wait costs no CPU. Every answer takes the
//! same way to its wait, a sleep on a blocking thread: the runtime's timer ticks in whole
//! milliseconds, coarser than the gap, and an answer that skipped the wait would be
//! quicker by the way back alone.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many recent confirmation-queuing signups the pace is drawn from.
const RECENT: usize = 64;
/// How many times an answer's pace is the longest of. More hides a confirmation's own
/// time better (it decides alone in one answer of `DRAWS`) and makes every answer later.
const DRAWS: usize = 4;
/// A recorded time above this (a store that stalled) is kept at this, so that a stall
/// does not hold the other signups' answers for as long.
const LONGEST_NANOS: u64 = 1_000_000_000;

pub(crate) struct SignupPace {
    /// Nanoseconds each recent confirmation-queuing signup took; zero for a slot not yet
    /// filled.
    recent: [AtomicU64; RECENT],
    next: AtomicUsize,
}

impl Default for SignupPace {
    fn default() -> Self {
        Self {
            recent: std::array::from_fn(|_| AtomicU64::new(0)),
            next: AtomicUsize::new(0),
        }
    }
}

impl SignupPace {
    /// Waits until the answer of a signup that started at `started` may go (see the
    /// module documentation); one that queued a confirmation is kept for the next.
    pub(crate) async fn answer(&self, started: Instant, queued_confirmation: bool) {
        let took = started.elapsed();
        let drawn = if queued_confirmation {
            self.record(took);
            self.longest_of(DRAWS - 1)
        } else {
            self.longest_of(DRAWS)
        };
        let due = started + drawn.map_or(took, |drawn| drawn.max(took));
        // A failed wait (a runtime shutting down) only answers sooner.
        let _ = tokio::task::spawn_blocking(move || {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        })
        .await;
    }

    fn record(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % RECENT;
        self.recent[slot].store(nanos.clamp(1, LONGEST_NANOS), Ordering::Relaxed);
    }

    /// The longest of `draws` recent times drawn at random; `None` before any was kept.
    fn longest_of(&self, draws: usize) -> Option<Duration> {
        (0..draws).filter_map(|_| self.draw()).max()
    }

    fn draw(&self) -> Option<Duration> {
        let filled = self.next.load(Ordering::Relaxed).min(RECENT);
        if filled == 0 {
            return None;
        }
        let slot = usize::try_from(crate::clock::draw_below(filled as u64)).unwrap_or(0);
        let nanos = self.recent[slot].load(Ordering::Relaxed);
        (nanos > 0).then(|| Duration::from_nanos(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signup_that_queued_nothing_waits_as_long_as_recent_ones_that_did() {
        let pace = SignupPace::default();
        let started = Instant::now();
        pace.answer(started, false).await;
        assert!(
            started.elapsed() < Duration::from_millis(30),
            "nothing kept: no wait"
        );

        pace.record(Duration::from_millis(40));
        let started = Instant::now();
        pace.answer(started, false).await;
        assert!(started.elapsed() >= Duration::from_millis(40));
    }

    #[tokio::test]
    async fn a_signup_that_queued_a_confirmation_waits_for_the_longest_of_its_draws() {
        let pace = SignupPace::default();
        for _ in 1..RECENT {
            pace.record(Duration::from_millis(60));
        }
        let started = Instant::now();
        // Its own time joins the recent ones: one slot in 64, drawn three times.
        pace.answer(started, true).await;
        assert!(started.elapsed() >= Duration::from_millis(60));
    }

    #[test]
    fn the_longest_of_the_draws_is_taken() {
        let pace = SignupPace::default();
        pace.record(Duration::from_millis(3));
        pace.record(Duration::from_millis(5));
        let drawn: Vec<_> = (0..200).filter_map(|_| pace.longest_of(DRAWS)).collect();
        assert!(drawn
            .iter()
            .all(|d| *d == Duration::from_millis(3) || *d == Duration::from_millis(5)));
        let fives = drawn
            .iter()
            .filter(|d| **d == Duration::from_millis(5))
            .count();
        // Each answer's pace is 5 ms unless all four draws hit 3 ms: 15 times in 16.
        assert!(fives > 150, "5 ms in {fives} of 200");
    }

    #[test]
    fn a_stalled_signup_is_kept_at_the_longest_pace() {
        let pace = SignupPace::default();
        pace.record(Duration::from_secs(30));
        assert_eq!(pace.draw(), Some(Duration::from_nanos(LONGEST_NANOS)));
    }
}
