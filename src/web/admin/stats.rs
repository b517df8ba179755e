//! The stats page: marketing against non-marketing contacts and the statuses per type,
//! as charts and as tables with the same numbers.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::request::Console;
use super::svg::{bar_chart, RowSpec};
use crate::web::pages::{AdminStats, TypeStatsRow};

pub async fn show_stats(console: Console) -> HttpResponse {
    let result = async {
        let subscriptions = &console.state.subscriptions;
        let stats = subscriptions.stats().await?;
        let catalog = subscriptions.catalog();
        let locale = console.locale();
        let by_type: Vec<TypeStatsRow> = catalog
            .all()
            .iter()
            .map(|t| {
                let counts = stats.by_type.get(t.id.as_str());
                TypeStatsRow {
                    name: t.name_in(&locale, catalog.default_locale()),
                    opted_in: counts.map_or(0, |c| c.opted_in),
                    unsubscribed: counts.map_or(0, |c| c.unsubscribed),
                    not_subscribed: counts.map_or(0, |c| c.not_subscribed),
                }
            })
            .collect();
        // The labels of this chart are string keys; the template looks them up.
        let contacts_chart = bar_chart(vec![
            RowSpec {
                label: "admin_stats_marketing".into(),
                segments: vec![("bar-marketing", stats.marketing_contacts)],
            },
            RowSpec {
                label: "admin_stats_non_marketing".into(),
                segments: vec![("bar-non-marketing", stats.non_marketing_contacts)],
            },
        ]);
        let types_chart = bar_chart(
            by_type
                .iter()
                .map(|row| RowSpec {
                    label: row.name.clone(),
                    segments: vec![
                        ("bar-opted-in", row.opted_in),
                        ("bar-unsubscribed", row.unsubscribed),
                        ("bar-not-subscribed", row.not_subscribed),
                    ],
                })
                .collect(),
        );
        let data = AdminStats {
            nav: console.nav(),
            marketing_contacts: stats.marketing_contacts,
            non_marketing_contacts: stats.non_marketing_contacts,
            pending_confirmations: stats.pending_confirmations,
            unreachable_contacts: stats.unreachable_contacts,
            contacts_chart,
            types_chart,
            by_type,
        };
        Ok(console.render(StatusCode::OK, &data))
    }
    .await;
    console.respond(result)
}
