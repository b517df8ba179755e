//! Dead letters: mail that could not be sent after all retries, listed and retryable.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::http::api_key::AdminKey;
use crate::http::problem::Problem;

/// Dead letters listed per request.
const DEAD_LETTER_PAGE: usize = 500;

pub async fn list_dead_letters(
    state: web::Data<AppState>,
    _caller: AdminKey,
) -> Result<HttpResponse, Problem> {
    let jobs = state
        .subscriptions
        .store()
        .dead_jobs(DEAD_LETTER_PAGE)
        .await?;
    let items: Vec<serde_json::Value> = jobs
        .iter()
        .map(|job| {
            json!({
                "id": job.id,
                "to": job.to.masked(),
                "kind": job.mail,
                "created_at": job.created_at,
                "attempts": job.attempts,
                "last_error": job.last_error,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "dead_letters": items })))
}

pub async fn retry_dead_letter(
    state: web::Data<AppState>,
    _caller: AdminKey,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| Problem::invalid_field("id", "not a dead letter id"))?;
    let subscriptions = &state.subscriptions;
    if subscriptions
        .store()
        .revive_dead_job(id, subscriptions.now())
        .await?
    {
        subscriptions.wake_outbox();
        Ok(HttpResponse::Accepted().json(json!({ "status": "queued" })))
    } else {
        Err(Problem::not_found().with_detail("no dead letter with that id"))
    }
}
