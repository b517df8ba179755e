//! The confirmation funnel: of the public signups that asked someone to confirm, how many
//! were mailed, reminded, confirmed (and how), expired or were cancelled, per source.
//!
//! Each stage is counted by the transition that reaches it, in the same atomic write
//! (see [`FunnelStep`]), so the counts are exact and cost no scan. A step is counted
//! under the day its signup was made (UTC): the numbers of a window are those of the
//! signups made in it, wherever they have got to since. Only pending confirmations
//! created by a public signup carry a source key and are counted; an admin's or a
//! resubscribe's confirmation request is not a signup.
//!
//! Counter names are `<yyyy-mm-dd>|<stage>|<source>`; the source goes last since a
//! `form_id` may hold any character the key allows. The time to confirm is counted in
//! buckets (`seconds:<lower bound>` stages): exact below a minute, then by the minute
//! below an hour, by the hour below two days, and by the day beyond; the median is
//! given as the lower bound of the bucket it falls in.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::event::{ConfirmMethod, Source};

/// How a signup reached optin, which decides its source key when it names no form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupDoor {
    /// `POST /v1/signups`.
    Api,
    /// An operator's own HTML form posting to `POST /signup`.
    Form,
    /// optin's own form (`GET /signup`).
    HostedForm,
}

/// The longest `form_id` that is used as a source key; longer ones, and ones with other
/// characters than letters, digits, `.`, `_` and `-`, count under their door's key, so
/// that no request can make the funnel's keys arbitrary text.
const MAX_FORM_KEY_LEN: usize = 64;

impl SignupDoor {
    /// The event source of a signup through this door.
    pub fn source(self) -> Source {
        match self {
            SignupDoor::Api => Source::SignupApi,
            SignupDoor::Form | SignupDoor::HostedForm => Source::SignupForm,
        }
    }

    /// The funnel's source key: the signup's `form_id` when it gave a usable one, else
    /// `api`, `form` or `hosted`.
    pub fn funnel_key(self, form_id: Option<&str>) -> String {
        let usable = form_id.filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_FORM_KEY_LEN
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
        match (usable, self) {
            (Some(id), _) => id.to_string(),
            (None, SignupDoor::Api) => "api".to_string(),
            (None, SignupDoor::Form) => "form".to_string(),
            (None, SignupDoor::HostedForm) => "hosted".to_string(),
        }
    }
}

/// Where a signup's confirmation got to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunnelStage {
    /// A signup request created a pending confirmation.
    Requested,
    /// Its confirmation mail was handed to the mail relay.
    Mailed,
    /// Its reminder was handed to the mail relay.
    Reminded,
    Confirmed(ConfirmMethod),
    /// Not confirmed in time, and purged.
    Expired,
    /// Withdrawn by the person: the mail's cancel link, or unsubscribe from all.
    Cancelled,
}

impl FunnelStage {
    fn name(self) -> &'static str {
        match self {
            FunnelStage::Requested => "requested",
            FunnelStage::Mailed => "mailed",
            FunnelStage::Reminded => "reminded",
            FunnelStage::Confirmed(ConfirmMethod::SameBrowser) => "confirmed_same_browser",
            FunnelStage::Confirmed(ConfirmMethod::Button) => "confirmed_button",
            FunnelStage::Confirmed(ConfirmMethod::Code) => "confirmed_code",
            FunnelStage::Expired => "expired",
            FunnelStage::Cancelled => "cancelled",
        }
    }
}

/// One stage reached by one signup: what a transition adds to the counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunnelStep {
    /// The day the signup was made.
    pub cohort: NaiveDate,
    pub source: String,
    pub stage: FunnelStage,
    /// For a confirmation: seconds since its mail was sent.
    pub seconds: Option<u64>,
}

impl FunnelStep {
    pub fn new(signed_up_at: DateTime<Utc>, source: &str, stage: FunnelStage) -> Self {
        Self {
            cohort: signed_up_at.date_naive(),
            source: source.to_string(),
            stage,
            seconds: None,
        }
    }

    /// The counters this step adds one to.
    pub fn counters(&self) -> Vec<String> {
        let name = |stage: &str| format!("{}|{stage}|{}", self.cohort, self.source);
        let mut names = vec![name(self.stage.name())];
        if let Some(seconds) = self.seconds {
            names.push(name(&format!("{SECONDS_PREFIX}{}", bucket(seconds))));
        }
        names
    }
}

const SECONDS_PREFIX: &str = "seconds:";
const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// The lower bound of the bucket `seconds` is counted in.
fn bucket(seconds: u64) -> u64 {
    let step = match seconds {
        s if s < MINUTE => 1,
        s if s < HOUR => MINUTE,
        s if s < 2 * DAY => HOUR,
        _ => DAY,
    };
    seconds - seconds % step
}

/// The counts of one source.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FunnelCounts {
    pub requested: i64,
    pub mailed: i64,
    pub reminded: i64,
    pub confirmed: ConfirmedCounts,
    pub expired: i64,
    pub cancelled: i64,
    /// `None` while nothing was confirmed.
    pub median_seconds_to_confirm: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConfirmedCounts {
    pub same_browser: i64,
    pub button: i64,
    pub code: i64,
}

impl ConfirmedCounts {
    pub fn total(&self) -> i64 {
        self.same_browser + self.button + self.code
    }
}

/// `GET /v1/stats/confirmations`: the signups made from `since` to `until` (both days
/// included), per source key.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FunnelReport {
    pub since: NaiveDate,
    pub until: NaiveDate,
    pub by_source: BTreeMap<String, FunnelCounts>,
}

impl FunnelReport {
    /// Sums the counters of the days in the window.
    pub fn from_counters(
        counters: &BTreeMap<String, i64>,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Self {
        let mut by_source: BTreeMap<String, FunnelCounts> = BTreeMap::new();
        let mut seconds: BTreeMap<String, BTreeMap<u64, i64>> = BTreeMap::new();
        for (name, count) in counters {
            let mut parts = name.splitn(3, '|');
            let (Some(day), Some(stage), Some(source)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(day) = day.parse::<NaiveDate>() else {
                continue;
            };
            if day < since || day > until {
                continue;
            }
            if let Some(lower) = stage.strip_prefix(SECONDS_PREFIX) {
                if let Ok(lower) = lower.parse::<u64>() {
                    *seconds
                        .entry(source.to_string())
                        .or_default()
                        .entry(lower)
                        .or_default() += count;
                }
                continue;
            }
            let counts = by_source.entry(source.to_string()).or_default();
            let field = match stage {
                "requested" => &mut counts.requested,
                "mailed" => &mut counts.mailed,
                "reminded" => &mut counts.reminded,
                "confirmed_same_browser" => &mut counts.confirmed.same_browser,
                "confirmed_button" => &mut counts.confirmed.button,
                "confirmed_code" => &mut counts.confirmed.code,
                "expired" => &mut counts.expired,
                "cancelled" => &mut counts.cancelled,
                _ => continue,
            };
            *field += count;
        }
        for (source, buckets) in seconds {
            by_source
                .entry(source)
                .or_default()
                .median_seconds_to_confirm = median(&buckets);
        }
        Self {
            since,
            until,
            by_source,
        }
    }
}

/// The lower median: the bucket holding the value of rank ⌈n/2⌉.
fn median(buckets: &BTreeMap<u64, i64>) -> Option<u64> {
    let total: i64 = buckets.values().map(|c| (*c).max(0)).sum();
    if total == 0 {
        return None;
    }
    let rank = (total + 1) / 2;
    let mut seen = 0;
    for (lower, count) in buckets {
        seen += (*count).max(0);
        if seen >= rank {
            return Some(*lower);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn a_usable_form_id_is_the_key_and_anything_else_counts_under_the_door() {
        assert_eq!(SignupDoor::Form.funnel_key(Some("footer-2")), "footer-2");
        assert_eq!(SignupDoor::HostedForm.funnel_key(None), "hosted");
        assert_eq!(SignupDoor::Form.funnel_key(Some("")), "form");
        assert_eq!(SignupDoor::Api.funnel_key(Some("a|b")), "api");
        assert_eq!(SignupDoor::Api.funnel_key(Some(&"x".repeat(65))), "api");
        assert_eq!(SignupDoor::Api.source(), Source::SignupApi);
        assert_eq!(SignupDoor::HostedForm.source(), Source::SignupForm);
    }

    #[test]
    fn buckets_are_exact_below_a_minute_and_coarser_beyond() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(59), 59);
        assert_eq!(bucket(61), 60);
        assert_eq!(bucket(3599), 3540);
        assert_eq!(bucket(3 * HOUR + 5), 3 * HOUR);
        assert_eq!(bucket(3 * DAY + 5), 3 * DAY);
    }

    #[test]
    fn steps_sum_per_source_within_the_window_with_the_lower_median() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let mut counters = BTreeMap::new();
        let mut count = |step: FunnelStep| {
            for name in step.counters() {
                *counters.entry(name).or_insert(0) += 1;
            }
        };
        for _ in 0..3 {
            count(FunnelStep::new(
                at("2026-03-02T10:00:00Z"),
                "hosted",
                FunnelStage::Requested,
            ));
        }
        for seconds in [4, 9] {
            let mut step = FunnelStep::new(
                at("2026-03-02T23:59:00Z"),
                "hosted",
                FunnelStage::Confirmed(ConfirmMethod::Code),
            );
            step.seconds = Some(seconds);
            count(step);
        }
        count(FunnelStep::new(
            at("2026-03-02T10:00:00Z"),
            "a|b",
            FunnelStage::Expired,
        ));
        count(FunnelStep::new(
            at("2026-03-05T10:00:00Z"),
            "hosted",
            FunnelStage::Requested,
        ));
        let report = FunnelReport::from_counters(&counters, day("2026-03-01"), day("2026-03-02"));
        let hosted = &report.by_source["hosted"];
        assert_eq!(hosted.requested, 3, "the day after the window is left out");
        assert_eq!(hosted.confirmed.code, 2);
        assert_eq!(hosted.confirmed.total(), 2);
        assert_eq!(hosted.median_seconds_to_confirm, Some(4));
        assert_eq!(
            report.by_source["a|b"].expired, 1,
            "a key may hold the separator"
        );
        let empty = FunnelReport::from_counters(&counters, day("2026-04-01"), day("2026-04-30"));
        assert!(empty.by_source.is_empty());
    }
}
