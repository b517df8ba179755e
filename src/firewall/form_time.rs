//! The hosted form's render time, signed: the form carries `<unix seconds>.<hex
//! HMAC-SHA256>` in a hidden field, and a post that comes back sooner than a person fills
//! the form in (`signup.min_fill_seconds`) is held as `too_fast`. The signature keeps a
//! client from moving the time; a stamp that does not verify counts as none, which is
//! what any form but the hosted one sends.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What the keys are derived for, so that a stamp's MAC is never an ALTCHA signature.
const PURPOSE: &[u8] = b"optin signup form render time";
/// A stamp up to this far ahead of the clock still counts (instances' clocks differ).
const CLOCK_SKEW_SECS: i64 = 60;

/// Signs render times and judges how fast a form came back.
#[derive(Clone)]
pub struct FormClock {
    /// The first signs, all verify (rotation).
    keys: Vec<Hmac<Sha256>>,
    min_fill: Duration,
}

impl std::fmt::Debug for FormClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormClock")
            .field("keys", &self.keys.len())
            .field("min_fill", &self.min_fill)
            .finish()
    }
}

impl FormClock {
    /// `None` when the check is off (`min_fill` of zero) or there is no key.
    pub fn new(keys: &[[u8; 32]], min_fill: Duration) -> Option<Self> {
        let keys: Vec<Hmac<Sha256>> = keys
            .iter()
            .filter_map(|key| {
                let mut derive = Hmac::<Sha256>::new_from_slice(key).ok()?;
                derive.update(PURPOSE);
                Hmac::<Sha256>::new_from_slice(&derive.finalize().into_bytes()).ok()
            })
            .collect();
        (!keys.is_empty() && min_fill > Duration::zero()).then_some(Self { keys, min_fill })
    }

    /// The stamp of a form rendered at `now`.
    pub fn stamp(&self, now: DateTime<Utc>) -> String {
        let secs = now.timestamp();
        let mut mac = self.keys[0].clone();
        mac.update(secs.to_string().as_bytes());
        format!("{secs}.{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// True when `stamp` is one of ours and less than the minimum fill time has passed
    /// since it was made. A missing, forged or malformed stamp is not judged.
    pub fn too_fast(&self, stamp: Option<&str>, now: DateTime<Utc>) -> bool {
        let Some(rendered) = stamp.and_then(|stamp| self.verify(stamp)) else {
            return false;
        };
        let elapsed = now.timestamp() - rendered;
        elapsed >= -CLOCK_SKEW_SECS && elapsed < self.min_fill.num_seconds()
    }

    /// The render time a stamp carries, when its MAC verifies under one of the keys.
    fn verify(&self, stamp: &str) -> Option<i64> {
        let (secs, mac) = stamp.trim().split_once('.')?;
        let rendered: i64 = secs.parse().ok()?;
        let mac = hex::decode(mac).ok()?;
        self.keys.iter().find_map(|key| {
            let mut check = key.clone();
            check.update(secs.as_bytes());
            check.verify_slice(&mac).ok().map(|()| rendered)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(keys: &[[u8; 32]]) -> FormClock {
        FormClock::new(keys, Duration::seconds(2)).expect("on")
    }

    #[test]
    fn a_form_back_within_the_minimum_is_too_fast_and_later_is_not() {
        let forms = clock(&[[1; 32]]);
        let now = Utc::now();
        let stamp = forms.stamp(now);
        assert!(forms.too_fast(Some(&stamp), now));
        assert!(forms.too_fast(Some(&stamp), now + Duration::seconds(1)));
        assert!(!forms.too_fast(Some(&stamp), now + Duration::seconds(2)));
        assert!(!forms.too_fast(None, now), "other forms carry no stamp");
    }

    #[test]
    fn a_stamp_that_does_not_verify_is_not_judged_and_rotation_keeps_old_stamps() {
        let old = clock(&[[1; 32]]);
        let now = Utc::now();
        let stamp = old.stamp(now);
        let (secs, mac) = stamp.split_once('.').unwrap();
        let moved = format!("{}.{mac}", secs.parse::<i64>().unwrap() - 60);
        assert!(
            !old.too_fast(Some(&moved), now),
            "a moved time breaks the MAC"
        );
        assert!(!old.too_fast(Some("garbage"), now));
        assert!(!old.too_fast(Some("1.zz"), now));
        assert!(
            !clock(&[[2; 32]]).too_fast(Some(&stamp), now),
            "another key"
        );
        assert!(
            clock(&[[2; 32], [1; 32]]).too_fast(Some(&stamp), now),
            "rotated"
        );
    }

    #[test]
    fn zero_seconds_or_no_key_turns_it_off() {
        assert!(FormClock::new(&[[1; 32]], Duration::zero()).is_none());
        assert!(FormClock::new(&[], Duration::seconds(2)).is_none());
    }
}
