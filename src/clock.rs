//! Time as a dependency, so that expiry and retention can be tested by advancing a clock;
//! and the arithmetic that turns a configured lifetime into a moment, which never panics.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// The latest moment a computed expiry is allowed to be: the last second that RFC 3339
/// (four-digit years) can write, so whatever is stored can be read back.
pub fn latest() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|day| day.and_hms_opt(23, 59, 59))
        .map_or(DateTime::<Utc>::MAX_UTC, |moment| moment.and_utc())
}

/// `at` moved forward by `by`. A lifetime too long to reach an end gives [`latest`]
/// ("never, for practical purposes") instead of an overflow panic; `check-config` bounds
/// every lifetime, and this holds even where a bound was missed.
pub fn later(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    at.checked_add_signed(by)
        .filter(|moment| *moment <= latest())
        .unwrap_or_else(latest)
}

/// `at` moved back by `by`, or the Unix epoch when that would be earlier: a window that
/// long reaches back past anything optin ever stored.
pub fn earlier(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    at.checked_sub_signed(by)
        .filter(|moment| *moment >= DateTime::UNIX_EPOCH)
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// A number below `bound` (a bound of 0 counts as 1), drawn at random, for spreading when
/// things happen; 0 when the system has no randomness, which only spreads nothing.
pub fn draw_below(bound: u64) -> u64 {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_or(0, |()| u64::from_le_bytes(random) % bound.max(1))
}

/// `n` days; the longest duration there is when `n` is too large for one.
pub fn days(n: u64) -> Duration {
    i64::try_from(n)
        .ok()
        .and_then(Duration::try_days)
        .unwrap_or(Duration::MAX)
}

/// `n` minutes; the longest duration there is when `n` is too large for one.
pub fn minutes(n: u64) -> Duration {
    i64::try_from(n)
        .ok()
        .and_then(Duration::try_minutes)
        .unwrap_or(Duration::MAX)
}

/// `n` seconds; the longest duration there is when `n` is too large for one.
pub fn seconds(n: u64) -> Duration {
    i64::try_from(n)
        .ok()
        .and_then(Duration::try_seconds)
        .unwrap_or(Duration::MAX)
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub type SharedClock = Arc<dyn Clock>;

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. For tests.
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn starting_now() -> Arc<Self> {
        Arc::new(Self {
            now: Mutex::new(Utc::now()),
        })
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_too_long_to_end_saturate_instead_of_panicking() {
        let now = Utc::now();
        assert_eq!(later(now, days(7)), now + Duration::days(7));
        assert_eq!(later(now, days(u64::from(u32::MAX))), latest());
        assert_eq!(later(now, days(u64::MAX)), latest());
        assert_eq!(later(now, seconds(u64::MAX)), latest());
        assert_eq!(later(now, minutes(u64::MAX)), latest());
        assert_eq!(
            later(DateTime::<Utc>::MAX_UTC, Duration::seconds(1)),
            latest()
        );
        assert_eq!(earlier(now, days(2)), now - Duration::days(2));
        assert_eq!(
            earlier(now, days(u64::from(u32::MAX))),
            DateTime::UNIX_EPOCH
        );
        assert_eq!(earlier(now, Duration::MAX), DateTime::UNIX_EPOCH);
    }

    #[test]
    fn the_latest_moment_survives_a_round_trip_through_rfc_3339() {
        let written = serde_json::to_string(&latest()).unwrap();
        let read: DateTime<Utc> = serde_json::from_str(&written).unwrap();
        assert_eq!(read, latest());
    }
}
