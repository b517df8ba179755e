//! The webhook endpoints, for admins: their state, a test delivery, and enabling one
//! again after a 410.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::web::extract::api_key::AdminKey;
use crate::web::problem::Problem;
use crate::web::AppState;

pub async fn list_webhooks(
    state: web::Data<AppState>,
    _caller: AdminKey,
) -> Result<HttpResponse, Problem> {
    let endpoints = state.subscriptions.webhook_endpoints().await?;
    Ok(HttpResponse::Ok().json(json!({ "webhooks": endpoints })))
}

pub async fn send_test(
    state: web::Data<AppState>,
    _caller: AdminKey,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    if state.subscriptions.queue_test_delivery(&id).await? {
        Ok(HttpResponse::Accepted().json(json!({ "status": "queued" })))
    } else {
        Err(no_such_endpoint())
    }
}

pub async fn enable(
    state: web::Data<AppState>,
    _caller: AdminKey,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    if state.subscriptions.enable_webhook_endpoint(&id).await? {
        Ok(HttpResponse::Ok().json(json!({ "status": "enabled" })))
    } else {
        Err(no_such_endpoint())
    }
}

fn no_such_endpoint() -> Problem {
    Problem::not_found().with_detail("no webhook endpoint with that id is configured")
}
