//! `GET /v1/subscription-types`: what forms need to show, including the exact consent
//! notices and their versions.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::web::AppState;

pub async fn list_subscription_types(state: web::Data<AppState>) -> HttpResponse {
    let catalog = state.subscriptions.catalog();
    let types: Vec<serde_json::Value> = catalog
        .all()
        .iter()
        .map(|t| {
            let notices: serde_json::Map<String, serde_json::Value> = t
                .consent_notice
                .iter()
                .map(|(locale, n)| {
                    (
                        locale.clone(),
                        json!({ "version": n.version, "text": n.text, "sha256": n.sha256() }),
                    )
                })
                .collect();
            json!({
                "id": t.id,
                "purpose": t.purpose,
                "double_opt_in": t.double_opt_in,
                "name": t.name,
                "description": t.description,
                "consent_notice": notices,
            })
        })
        .collect();
    HttpResponse::Ok()
        .json(json!({ "default_locale": catalog.default_locale(), "subscription_types": types }))
}
