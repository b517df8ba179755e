//! Dead letters: mail that could not be sent after all retries, listed and retryable.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::web::extract::api_key::AdminKey;
use crate::web::problem::Problem;
use crate::web::AppState;

pub async fn list_dead_letters(
    state: web::Data<AppState>,
    _caller: AdminKey,
) -> Result<HttpResponse, Problem> {
    let jobs = state.subscriptions.dead_letters().await?;
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
    if state.subscriptions.retry_dead_letter(id).await? {
        Ok(HttpResponse::Accepted().json(json!({ "status": "queued" })))
    } else {
        Err(Problem::not_found().with_detail("no dead letter with that id"))
    }
}
