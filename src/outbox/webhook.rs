//! One webhook job: find its endpoint, hold it while the endpoint is disabled, deliver
//! it signed, and record the answer in the endpoint's state.

use chrono::Duration;

use super::{OutboxWorker, Outcome};
use crate::domain::{OutboxJob, WebhookTask};
use crate::store::{EndpointAttempt, StoreError};
use crate::webhooks::DeliveryOutcome;

/// How long a job of a disabled endpoint waits before it looks again: after an admin
/// enables the endpoint, its backlog flows within this time.
const DISABLED_RECHECK_SECS: i64 = 15;

impl OutboxWorker {
    pub(super) async fn deliver_webhook(
        &self,
        job: &OutboxJob,
        task: &WebhookTask,
    ) -> Result<Outcome, StoreError> {
        let Some(endpoint) = self
            .config
            .webhook_endpoints
            .iter()
            .find(|e| e.id == task.endpoint)
        else {
            // Removed from the configuration: kept as a dead letter, which an admin can
            // retry once the endpoint is back, rather than dropped.
            return Ok(Outcome::Hopeless(format!(
                "webhook endpoint `{}` is no longer configured",
                task.endpoint
            )));
        };
        let now = self.clock.now();
        if self
            .store
            .endpoint_state(&endpoint.id)
            .await?
            .disabled_at
            .is_some()
        {
            return Ok(Outcome::Held(
                now + Duration::seconds(DISABLED_RECHECK_SECS),
            ));
        }
        let outcome = self
            .webhooks
            .deliver(endpoint, &job.id.to_string(), task.body.as_bytes())
            .await;
        let at = self.clock.now();
        let (attempt, result) = match outcome {
            DeliveryOutcome::Delivered(status) => {
                tracing::info!(job = %job.id, endpoint = %endpoint.id, event = %task.event_type, status, "webhook delivered");
                (EndpointAttempt::Delivered { status }, Outcome::Done)
            }
            DeliveryOutcome::Gone => {
                tracing::warn!(job = %job.id, endpoint = %endpoint.id, "webhook endpoint answered 410: disabled until enabled again");
                (
                    EndpointAttempt::Gone,
                    Outcome::Held(at + Duration::seconds(DISABLED_RECHECK_SECS)),
                )
            }
            DeliveryOutcome::Failed { status, reason } => (
                EndpointAttempt::Failed { status },
                Outcome::Failed(format!("endpoint `{}`: {reason}", endpoint.id)),
            ),
        };
        let outcome_name = match attempt {
            EndpointAttempt::Delivered { .. } => "delivered",
            EndpointAttempt::Failed { .. } => "failed",
            EndpointAttempt::Gone => "gone",
        };
        metrics::counter!(
            "optin_webhook_attempts_total",
            "endpoint" => endpoint.id.clone(),
            "outcome" => outcome_name
        )
        .increment(1);
        self.store
            .record_endpoint_attempt(&endpoint.id, attempt, at)
            .await?;
        Ok(result)
    }
}
