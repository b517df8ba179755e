//! Dead letters: mail and webhook deliveries that failed after all retries, listed and
//! retryable.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::domain::{OutboxJob, Task};
use crate::web::extract::api_key::AdminKey;
use crate::web::problem::Problem;
use crate::web::AppState;

pub async fn list_dead_letters(
    state: web::Data<AppState>,
    _caller: AdminKey,
) -> Result<HttpResponse, Problem> {
    let jobs = state.subscriptions.dead_letters().await?;
    let items: Vec<serde_json::Value> = jobs.iter().map(dead_letter_view).collect();
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

/// One dead letter as listed: `kind` says whether it is a mail or a webhook delivery. A
/// mail shows its masked recipient; a webhook shows its endpoint and event type, never
/// its body (which holds the address).
fn dead_letter_view(job: &OutboxJob) -> serde_json::Value {
    let (to, mail, webhook) = match &job.task {
        Task::Mail(mail) => (Some(mail.to.masked()), Some(json!(mail.mail)), None),
        Task::Webhook { webhook } => (
            None,
            None,
            Some(json!({ "endpoint": webhook.endpoint, "event_type": webhook.event_type })),
        ),
    };
    json!({
        "id": job.id,
        "kind": job.kind_name(),
        "to": to,
        "mail": mail,
        "webhook": webhook,
        "created_at": job.created_at,
        "attempts": job.attempts,
        "last_error": job.last_error,
    })
}
