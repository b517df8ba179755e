//! The admin's view of the webhook endpoints: their state and backlog, a test delivery,
//! and enabling an endpoint that a 410 disabled.

use chrono::{DateTime, Utc};

use super::notices::{render, webhook_job};
use super::Subscriptions;
use crate::domain::ContactId;
use crate::store::StoreError;
use crate::webhooks::{Endpoint, EventData, WebhookEvent};

/// One endpoint as `GET /v1/webhooks` shows it. Never its secret.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EndpointView {
    pub id: String,
    /// Without user name, password or query: those may hold the receiver's credentials.
    pub url: String,
    pub enabled: bool,
    /// Deliveries waiting (due, being tried, or held while disabled).
    pub pending: u64,
    pub dead: u64,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
}

impl Subscriptions {
    pub fn webhook_endpoint(&self, id: &str) -> Option<&Endpoint> {
        self.config.webhook_endpoints.iter().find(|e| e.id == id)
    }

    /// Every configured endpoint, in configuration order.
    pub async fn webhook_endpoints(&self) -> Result<Vec<EndpointView>, StoreError> {
        let backlog = self.store.webhook_backlog().await?;
        let mut views = Vec::new();
        for endpoint in self.config.webhook_endpoints.iter() {
            let state = self.store.endpoint_state(&endpoint.id).await?;
            let depth = backlog.get(&endpoint.id).copied().unwrap_or_default();
            views.push(EndpointView {
                id: endpoint.id.clone(),
                url: shown_url(&endpoint.url),
                enabled: state.disabled_at.is_none(),
                pending: depth.queued,
                dead: depth.dead,
                last_success_at: state.last_success_at,
                last_failure_at: state.last_failure_at,
                last_status: state.last_status,
            });
        }
        Ok(views)
    }

    /// Queues a `webhook.test` delivery to one endpoint. False when no endpoint has that id.
    pub async fn queue_test_delivery(&self, endpoint_id: &str) -> Result<bool, StoreError> {
        let Some(endpoint) = self.webhook_endpoint(endpoint_id) else {
            return Ok(false);
        };
        let now = self.now();
        let notice = WebhookEvent::new(
            EventData::WebhookTest(crate::webhooks::event::Empty {}),
            now,
        );
        let Some(body) = render(&notice) else {
            return Ok(false);
        };
        let job = webhook_job(
            &ContactId::for_test_delivery(),
            endpoint,
            &notice,
            body,
            now,
        );
        self.store.queue_job(&job).await?;
        self.wake_outbox();
        Ok(true)
    }

    /// Lets a disabled endpoint receive again; its held jobs follow within seconds.
    /// False when no endpoint has that id.
    pub async fn enable_webhook_endpoint(&self, endpoint_id: &str) -> Result<bool, StoreError> {
        if self.webhook_endpoint(endpoint_id).is_none() {
            return Ok(false);
        }
        self.store.enable_endpoint(endpoint_id).await?;
        self.wake_outbox();
        Ok(true)
    }
}

fn shown_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    // Both only fail for URLs that cannot have credentials, which have none to hide.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_url_carries_no_credentials_or_query() {
        let url = url::Url::parse("https://user:pw@crm.example.com:8443/hook?token=abc#x").unwrap();
        assert_eq!(shown_url(&url), "https://crm.example.com:8443/hook");
    }
}
