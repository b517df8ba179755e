//! The outbox worker: takes due jobs from the store, renders and sends them, and
//! acknowledges, retries with exponential backoff, or dead-letters each one.
//!
//! Jobs are leased, not removed, when taken: if this process dies mid-send, the job
//! becomes due again when the lease ends and any instance takes it.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::{watch, Notify};

use super::compose::{compose_message, Envelope};
use super::templates::{
    ConfirmationData, MailTemplates, RenderedMail, TypeSummary, CONFIRMATION_MAIL,
    PREFERENCES_LINK_MAIL,
};
use super::transport::MailTransport;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::email::mask_addresses;
use crate::domain::{MailKind, OutboxJob};
use crate::links::Links;
use crate::store::{SharedStore, StoreError};

/// How often an idle worker looks for jobs queued by other instances.
const IDLE_POLL: std::time::Duration = std::time::Duration::from_secs(1);
/// After a store error, wait this long before trying again.
const STORE_ERROR_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);
const MAX_BACKOFF_SECS: i64 = 6 * 3600;

#[derive(Debug, thiserror::Error)]
enum SendError {
    /// Retrying later may succeed (connection refused, 4xx).
    #[error("{0}")]
    Transient(String),
    /// Retrying won't help (5xx, a template that does not render): dead-letter at once.
    #[error("{0}")]
    Permanent(String),
}

#[derive(Clone)]
pub struct OutboxWorker {
    store: SharedStore,
    templates: Arc<MailTemplates>,
    transport: Arc<MailTransport>,
    config: Arc<Config>,
    links: Links,
    clock: SharedClock,
    wakeup: Arc<Notify>,
    /// feedback2 (issue 12): records own SMTP rejections through the service.
    feedback: Arc<crate::service::Subscriptions>,
}

impl OutboxWorker {
    pub fn new(
        store: SharedStore,
        templates: Arc<MailTemplates>,
        transport: Arc<MailTransport>,
        config: Arc<Config>,
        clock: SharedClock,
        wakeup: Arc<Notify>,
    ) -> Self {
        let links = Links::from_config(&config);
        // feedback2 (issue 12)
        let feedback = Arc::new(crate::service::Subscriptions::new(
            store.clone(),
            config.clone(),
            clock.clone(),
            wakeup.clone(),
        ));
        Self {
            feedback,
            store,
            templates,
            transport,
            config,
            links,
            clock,
            wakeup,
        }
    }

    /// Sends until `shutdown` turns true. A send in progress is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            match self.send_next().await {
                Ok(true) => continue,
                Ok(false) => {
                    tokio::select! {
                        _ = self.wakeup.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "outbox: store unavailable, pausing");
                    tokio::select! {
                        _ = tokio::time::sleep(STORE_ERROR_PAUSE) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        tracing::info!("outbox worker stopped");
    }

    /// Sends every job that is due now and returns how many were handled. For tests and
    /// the `drain` step of a shutdown; the running worker uses [`Self::send_next`].
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut handled = 0;
        while self.send_next().await? {
            handled += 1;
        }
        Ok(handled)
    }

    /// Takes one due job and handles it. False when nothing was due.
    pub async fn send_next(&self) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let lease = Duration::seconds(self.config.settings.mail.lease_secs as i64);
        let Some(job) = self.store.claim_job(now, now + lease).await? else {
            return Ok(false);
        };
        match self.send(&job).await {
            Ok(()) => {
                self.store.complete_job(&job).await?;
                metrics::counter!("optin_outbox_sent_total").increment(1);
                tracing::info!(job = %job.id, to = %job.to.masked(), "mail sent");
            }
            Err(error) => self.record_failure(job, error).await?,
        }
        Ok(true)
    }

    async fn record_failure(
        &self,
        mut job: OutboxJob,
        failure: SendError,
    ) -> Result<(), StoreError> {
        job.attempts += 1;
        // The transport masks SMTP replies already; this also covers rendering and
        // composing errors, which may quote the address too.
        let error = mask_addresses(&failure.to_string());
        job.last_error = Some(error.clone());
        metrics::counter!("optin_outbox_failed_total").increment(1);
        let out_of_attempts = job.attempts >= self.config.settings.mail.max_attempts;
        if matches!(failure, SendError::Permanent(_)) || out_of_attempts {
            tracing::warn!(job = %job.id, attempts = job.attempts, %error, "mail dead-lettered");
            metrics::counter!("optin_outbox_dead_total").increment(1);
            return self.store.dead_letter_job(&job).await;
        }
        let due =
            self.clock.now() + backoff(self.config.settings.mail.retry_base_secs, job.attempts);
        tracing::info!(job = %job.id, attempts = job.attempts, %error, retry_at = %due, "mail send failed; will retry");
        self.store.retry_job_later(&job, due).await
    }

    async fn send(&self, job: &OutboxJob) -> Result<(), SendError> {
        let (rendered, list_unsubscribe) = self.render(job)?;
        let message_id = job.message_id(self.config.mail_from.email.domain());
        let envelope = Envelope {
            from: &self.config.mail_from,
            to: &job.to,
            message_id: &message_id,
            list_unsubscribe: Some(&list_unsubscribe),
        };
        let mut message = compose_message(&rendered, &envelope)
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        // Signed here, per attempt: a retry signs the same headers and body again.
        if let Some(dkim) = &self.config.dkim {
            dkim.sign(&mut message);
        }
        let sent = self.transport.send(message).await;
        // --- feedback2 (issue 12): a permanent 5.1.x answer marks the address
        // unreachable. A store failure here retries the job instead of losing the mark.
        if let Err(e) = &sent {
            if e.is_mailbox_unavailable() {
                self.feedback
                    .note_smtp_rejection(&job.contact_id, &e.to_string())
                    .await
                    .map_err(|e| SendError::Transient(e.to_string()))?;
            }
        }
        // --- end feedback2
        sent.map_err(|e| {
            if e.is_permanent() {
                SendError::Permanent(e.to_string())
            } else {
                SendError::Transient(e.to_string())
            }
        })
    }

    /// Renders the mail of a job, and gives the one-click unsubscribe URL it must carry.
    fn render(&self, job: &OutboxJob) -> Result<(RenderedMail, String), SendError> {
        let now = self.clock.now();
        match &job.mail {
            MailKind::Confirmation {
                pending_id,
                types,
                expires_at,
            } => {
                let catalog = &self.config.catalog;
                let fallback = catalog.default_locale();
                let summaries = types
                    .iter()
                    .filter_map(|id| catalog.get(id.as_str()))
                    .map(|t| TypeSummary {
                        id: t.id.to_string(),
                        name: t.name_in(&job.locale, fallback),
                        description: t.description_in(&job.locale, fallback),
                    })
                    .collect();
                let unsubscribe_url =
                    self.links
                        .cancel_signup(&job.contact_id, *pending_id, &job.locale, now);
                let data = ConfirmationData {
                    types: summaries,
                    confirm_url: self.links.confirm(
                        &job.contact_id,
                        *pending_id,
                        *expires_at,
                        &job.locale,
                        now,
                    ),
                    unsubscribe_url: unsubscribe_url.clone(),
                    preferences_url: self.links.preferences(&job.contact_id, &job.locale, now),
                    valid_for_days: valid_for_days(*expires_at, now),
                    expires_at: expires_at.format("%Y-%m-%d").to_string(),
                    service_name: self.config.settings.mail.service_name.clone(),
                };
                // A single-type signup may use that type's own template.
                let type_override = match types.as_slice() {
                    [only] => Some(only.as_str()),
                    _ => None,
                };
                let rendered = self
                    .templates
                    .render(
                        CONFIRMATION_MAIL,
                        &job.locale,
                        type_override,
                        &data.to_json(),
                    )
                    .map_err(|e| SendError::Permanent(e.to_string()))?;
                Ok((rendered, unsubscribe_url))
            }
            MailKind::PreferencesLink => {
                let unsubscribe_url = self.links.stop_requests(&job.contact_id, &job.locale, now);
                let data = serde_json::json!({
                    "preferences_url": self.links.preferences(&job.contact_id, &job.locale, now),
                    "unsubscribe_url": unsubscribe_url,
                    "valid_for_days": self.config.settings.links.preferences_ttl_days,
                    "service_name": self.config.settings.mail.service_name,
                });
                let rendered = self
                    .templates
                    .render(PREFERENCES_LINK_MAIL, &job.locale, None, &data)
                    .map_err(|e| SendError::Permanent(e.to_string()))?;
                Ok((rendered, unsubscribe_url))
            }
        }
    }
}

/// Whole days left, rounded up, and at least one.
fn valid_for_days(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let hours = (expires_at - now).num_hours().max(1);
    (hours + 23) / 24
}

/// `base * 2^(attempts-1)`, capped at six hours.
fn backoff(base_secs: u64, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    let secs = (base_secs as i64)
        .saturating_mul(1i64 << exponent)
        .min(MAX_BACKOFF_SECS);
    Duration::seconds(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(30, 1), Duration::seconds(30));
        assert_eq!(backoff(30, 2), Duration::seconds(60));
        assert_eq!(backoff(30, 4), Duration::seconds(240));
        assert_eq!(backoff(30, 40), Duration::seconds(MAX_BACKOFF_SECS));
    }

    #[test]
    fn validity_is_rounded_up_to_whole_days() {
        let now = Utc::now();
        assert_eq!(valid_for_days(now + Duration::days(7), now), 7);
        assert_eq!(valid_for_days(now + Duration::hours(25), now), 2);
        assert_eq!(valid_for_days(now, now), 1);
    }
}
