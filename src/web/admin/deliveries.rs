//! Dead letters (mail and webhook deliveries that failed after every retry) with retry,
//! and the webhook endpoints with their state and enable.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::csrf::TokenOnly;
use super::request::{Console, ConsolePost};
use super::{message_from_query, see_other, when, ConsoleError};
use crate::domain::{OutboxJob, Task};
use crate::web::pages::{AdminDeliveries, DeadLetter, WebhookRow};

pub async fn show_deliveries(console: Console) -> HttpResponse {
    let result = async {
        let subscriptions = &console.state.subscriptions;
        let dead_letters = subscriptions
            .dead_letters()
            .await?
            .iter()
            .map(dead_letter)
            .collect();
        let webhooks = subscriptions
            .webhook_endpoints()
            .await?
            .into_iter()
            .map(|e| WebhookRow {
                id: e.id,
                url: e.url,
                enabled: e.enabled,
                pending: e.pending,
                dead: e.dead,
                last_success_at: e.last_success_at.map(when),
                last_failure_at: e.last_failure_at.map(when),
                last_status: e.last_status,
            })
            .collect();
        let data = AdminDeliveries {
            nav: console.nav(),
            dead_letters,
            webhooks,
            message: message_from_query(
                &console.req,
                &["admin_done_retried", "admin_done_enabled"],
            ),
        };
        Ok(console.render(StatusCode::OK, &data))
    }
    .await;
    console.respond(result)
}

/// A mail shows its masked recipient; a webhook its endpoint and event type, never its
/// body (which holds the address).
fn dead_letter(job: &OutboxJob) -> DeadLetter {
    let target = match &job.task {
        Task::Mail(mail) => mail.to.masked(),
        Task::Webhook { webhook } => format!("{} · {}", webhook.endpoint, webhook.event_type),
    };
    DeadLetter {
        id: job.id.to_string(),
        kind: job.kind_name().to_string(),
        target,
        created_at: when(job.created_at),
        attempts: job.attempts,
        last_error: job.last_error.clone(),
    }
}

pub async fn retry_dead_letter(
    post: ConsolePost<TokenOnly>,
    id: web::Path<String>,
) -> HttpResponse {
    let result = async {
        let id = uuid::Uuid::parse_str(&id).map_err(|_| ConsoleError::NotFound)?;
        if !post.state.subscriptions.retry_dead_letter(id).await? {
            return Err(ConsoleError::NotFound);
        }
        tracing::info!(key = %post.session.key_name, job = %id, "dead letter retried from the console");
        Ok(see_other("/admin/deliveries?done=retried".to_string()))
    }
    .await;
    post.respond(result)
}

pub async fn enable_webhook(post: ConsolePost<TokenOnly>, id: web::Path<String>) -> HttpResponse {
    let result = async {
        if !post.state.subscriptions.enable_webhook_endpoint(&id).await? {
            return Err(ConsoleError::NotFound);
        }
        tracing::info!(key = %post.session.key_name, endpoint = %id.as_str(), "webhook endpoint enabled from the console");
        Ok(see_other("/admin/deliveries?done=enabled".to_string()))
    }
    .await;
    post.respond(result)
}
