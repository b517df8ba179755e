//! The console's confirmations page: the funnel of `GET /v1/stats/confirmations` per
//! source, as an SVG funnel drawn by the server and a table with the same numbers.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::request::Console;
use super::svg::{funnel_chart, RowSpec};
use crate::domain::funnel::FunnelCounts;
use crate::web::pages::{AdminFunnel, FunnelSource};
use crate::web::routes::funnel::Window;

pub async fn show_funnel(console: Console) -> HttpResponse {
    let result = async {
        let subscriptions = &console.state.subscriptions;
        let today = subscriptions.now().date_naive();
        let (window, message) = match Window::from_query(console.req.query_string(), today) {
            Ok(window) => (window, None),
            Err(_) => (
                Window::from_query("", today).map_err(|_| super::ConsoleError::BadRequest)?,
                Some("admin_funnel_bad_window"),
            ),
        };
        let report = subscriptions
            .confirmation_funnel(window.since, window.until)
            .await?;
        let data = AdminFunnel {
            nav: console.nav(),
            since: window.since.to_string(),
            until: window.until.to_string(),
            sources: report
                .by_source
                .iter()
                .map(|(key, counts)| source(key, counts))
                .collect(),
            message,
        };
        Ok(console.render(StatusCode::OK, &data))
    }
    .await;
    console.respond(result)
}

fn source(key: &str, counts: &FunnelCounts) -> FunnelSource {
    let confirmed = counts.confirmed.total();
    // The labels are string keys; the template looks them up.
    let row = |label: &str, segments: Vec<(&'static str, i64)>| RowSpec {
        label: label.to_string(),
        segments,
    };
    let chart = funnel_chart(vec![
        row(
            "admin_funnel_requested",
            vec![("bar-funnel", counts.requested)],
        ),
        row("admin_funnel_mailed", vec![("bar-funnel", counts.mailed)]),
        row(
            "admin_funnel_reminded",
            vec![("bar-funnel", counts.reminded)],
        ),
        row(
            "admin_funnel_confirmed",
            vec![
                ("bar-same-browser", counts.confirmed.same_browser),
                ("bar-button", counts.confirmed.button),
                ("bar-code", counts.confirmed.code),
            ],
        ),
    ]);
    FunnelSource {
        key: key.to_string(),
        chart,
        requested: counts.requested,
        mailed: counts.mailed,
        reminded: counts.reminded,
        same_browser: counts.confirmed.same_browser,
        button: counts.confirmed.button,
        code: counts.confirmed.code,
        confirmed,
        expired: counts.expired,
        cancelled: counts.cancelled,
        conversion: (counts.requested > 0).then(|| {
            format!(
                "{} %",
                (confirmed * 100 + counts.requested / 2) / counts.requested
            )
        }),
        median: counts
            .median_seconds_to_confirm
            .map(|seconds| format!("{seconds} s")),
    }
}
