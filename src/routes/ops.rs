//! Operations endpoints, no key: liveness, readiness, metrics and the API description.

use std::time::Duration;

use actix_web::{web, HttpResponse};

use super::AppState;

/// The spec, as served and as committed at the top of the repository.
const OPENAPI: &str = include_str!("../../openapi.yaml");
/// `/readyz` answers within this, even when the store hangs.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match tokio::time::timeout(READINESS_TIMEOUT, state.subscriptions.store().ping()).await {
        Ok(Ok(())) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ready"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("store unavailable")
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("store timed out"),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(depth) = state.subscriptions.store().outbox_depth().await {
        metrics::gauge!("optin_outbox_queued").set(depth.queued as f64);
        metrics::gauge!("optin_outbox_dead").set(depth.dead as f64);
    }
    let body = state
        .metrics
        .as_ref()
        .map(|handle| handle.render())
        .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml; charset=utf-8")
        .body(OPENAPI)
}
