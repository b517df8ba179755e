//! `GET /v1/stats/confirmations?since=&until=` (admin): the confirmation funnel of the
//! signups made in a window of days (see [`crate::domain::funnel`]).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::web::extract::api_key::AdminKey;
use crate::web::problem::Problem;
use crate::web::AppState;

/// The window when none is given: the last 30 days, today included.
const DEFAULT_DAYS: i64 = 30;

/// A window of signup days, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub since: NaiveDate,
    pub until: NaiveDate,
}

/// Why a window was refused, naming the parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadWindow {
    pub field: &'static str,
    pub reason: &'static str,
}

impl Window {
    /// Reads `since` and `until` (a date, `2026-03-01`, or an RFC 3339 time, of which the
    /// UTC day counts) from a query string; `until` defaults to `today`, `since` to 29
    /// days before `until`.
    pub fn from_query(query: &str, today: NaiveDate) -> Result<Self, BadWindow> {
        let mut since = None;
        let mut until = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match key.as_ref() {
                "since" => &mut since,
                "until" => &mut until,
                _ => continue,
            };
            if value.is_empty() {
                continue;
            }
            let field = if key == "since" { "since" } else { "until" };
            *slot = Some(day(&value).ok_or(BadWindow {
                field,
                reason: "a date (YYYY-MM-DD) or an RFC 3339 time",
            })?);
        }
        let until = until.unwrap_or(today);
        let since = since.unwrap_or_else(|| {
            until
                .checked_sub_signed(Duration::days(DEFAULT_DAYS - 1))
                .unwrap_or(NaiveDate::MIN)
        });
        if since > until {
            return Err(BadWindow {
                field: "since",
                reason: "must not be after until",
            });
        }
        Ok(Self { since, until })
    }
}

fn day(text: &str) -> Option<NaiveDate> {
    text.parse::<NaiveDate>().ok().or_else(|| {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|at| at.with_timezone(&Utc).date_naive())
    })
}

pub async fn show_confirmation_funnel(
    state: web::Data<AppState>,
    req: HttpRequest,
    _caller: AdminKey,
) -> Result<HttpResponse, Problem> {
    let today = state.subscriptions.now().date_naive();
    let window = Window::from_query(req.query_string(), today).map_err(|bad| {
        Problem::invalid_field(bad.field, format!("{}: {}", bad.field, bad.reason))
    })?;
    let report = state
        .subscriptions
        .confirmation_funnel(window.since, window.until)
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        "2026-03-31".parse().unwrap()
    }

    #[test]
    fn the_window_defaults_to_the_last_thirty_days() {
        let window = Window::from_query("", today()).unwrap();
        assert_eq!(window.until, today());
        assert_eq!(window.since, "2026-03-02".parse::<NaiveDate>().unwrap());
    }

    #[test]
    fn dates_and_times_are_read_and_bad_ones_named() {
        let window = Window::from_query(
            "since=2026-01-05&until=2026-01-07T23:30:00%2B02:00",
            today(),
        )
        .unwrap();
        assert_eq!(window.since, "2026-01-05".parse::<NaiveDate>().unwrap());
        assert_eq!(window.until, "2026-01-07".parse::<NaiveDate>().unwrap());
        assert_eq!(
            Window::from_query("since=yesterday", today())
                .unwrap_err()
                .field,
            "since"
        );
        assert_eq!(
            Window::from_query("since=2026-02-02&until=2026-02-01", today())
                .unwrap_err()
                .reason,
            "must not be after until"
        );
    }
}
