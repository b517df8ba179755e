//! The outbox worker: takes due jobs from the store, does each one (a mail to send, a
//! webhook to deliver), and acknowledges, retries with exponential backoff, holds, or
//! dead-letters it.
//!
//! Jobs are leased, not removed, when taken: if this process dies mid-job, the job
//! becomes due again when the lease ends and any instance takes it.
//!
//! - [`webhook`]: one webhook delivery and what its answer means for the job.

mod webhook;

use std::sync::Arc;

use chrono::{Duration, Utc};
use tokio::sync::{watch, Notify};

use crate::clock::{self, SharedClock};
use crate::config::Config;
use crate::domain::email::mask_addresses;
use crate::domain::{MailKind, OutboxJob, SentMail, Task};
use crate::mail::sender::{MailSender, SendError};
use crate::service::Subscriptions;
use crate::store::{SharedStore, StoreError};
use crate::webhooks::WebhookClient;

/// How often an idle worker looks for jobs queued by other instances.
const IDLE_POLL: std::time::Duration = std::time::Duration::from_secs(1);
/// After a store error, wait this long before trying again.
const STORE_ERROR_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);
/// A woken worker waits this many milliseconds, drawn at random, before it takes jobs:
/// the request that queued a mail answers first. Sending at once competed with that
/// answer for the CPU and the store, so a signup that mails (a new address) answered
/// later than one that does not (an opted-in address). Drawn, so that the send does not
/// land a fixed time after the request; jobs queued meanwhile go in the same round.
const SETTLE_MILLIS: std::ops::Range<u64> = 20..60;
const MAX_BACKOFF_SECS: i64 = 6 * 3600;

/// What became of one attempt at a job.
enum Outcome {
    Done,
    /// Retrying later may succeed.
    Failed(String),
    /// Retrying won't help: dead-letter at once.
    Hopeless(String),
    /// Not attempted (its webhook endpoint is disabled): due again at the given time,
    /// with its attempts unchanged.
    Held(chrono::DateTime<Utc>),
}

/// Attempts and first delay of one kind of job.
struct RetryPolicy {
    max_attempts: u32,
    base_secs: u64,
}

#[derive(Clone)]
pub struct OutboxWorker {
    store: SharedStore,
    mail: Arc<MailSender>,
    webhooks: WebhookClient,
    config: Arc<Config>,
    clock: SharedClock,
    wakeup: Arc<Notify>,
    /// Records permanent SMTP rejections of our own mail as bounces.
    service: Arc<Subscriptions>,
}

impl OutboxWorker {
    pub fn new(
        store: SharedStore,
        mail: Arc<MailSender>,
        webhooks: WebhookClient,
        service: Arc<Subscriptions>,
        config: Arc<Config>,
        clock: SharedClock,
        wakeup: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            mail,
            webhooks,
            config,
            clock,
            wakeup,
            service,
        }
    }

    /// Works until `shutdown` turns true. A job in progress is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            match self.send_next().await {
                Ok(true) => continue,
                Ok(false) => {
                    tokio::select! {
                        () = self.wakeup.notified() => {
                            tokio::select! {
                                () = tokio::time::sleep(settle_delay()) => {}
                                _ = shutdown.changed() => {}
                            }
                        }
                        () = tokio::time::sleep(IDLE_POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "outbox: store unavailable, pausing");
                    tokio::select! {
                        () = tokio::time::sleep(STORE_ERROR_PAUSE) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        tracing::info!("outbox worker stopped");
    }

    /// Does every job that is due now and returns how many were handled. For tests and
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
        let lease = clock::seconds(self.config.settings.mail.lease_secs);
        let Some(job) = self.store.claim_job(now, clock::later(now, lease)).await? else {
            return Ok(false);
        };
        let outcome = match &job.task {
            Task::Mail(mail) => match self.mail.send(&job, mail).await {
                Ok(()) => {
                    metrics::counter!("optin_outbox_sent_total").increment(1);
                    tracing::info!(job = %job.id, to = %mail.to.masked(), "mail sent");
                    self.note_confirmation_sent(&job, &mail.mail).await;
                    Outcome::Done
                }
                Err(SendError::Transient(error)) => Outcome::Failed(error),
                Err(SendError::Permanent(error)) => Outcome::Hopeless(error),
                // The address is marked unreachable first; a store
                // failure leaves the job leased, to be tried (and marked) again.
                Err(SendError::MailboxUnavailable(error)) => {
                    self.service
                        .note_smtp_rejection(&job.contact_id, &error)
                        .await?;
                    Outcome::Hopeless(error)
                }
            },
            Task::Webhook { webhook } => self.deliver_webhook(&job, webhook).await?,
        };
        let policy = self.retry_policy(&job);
        match outcome {
            Outcome::Done => self.store.complete_job(&job).await?,
            Outcome::Held(until) => self.store.retry_job_later(&job, until).await?,
            Outcome::Failed(error) => self.record_failure(job, error, false, &policy).await?,
            Outcome::Hopeless(error) => self.record_failure(job, error, true, &policy).await?,
        }
        Ok(true)
    }

    /// Tells the contact that the relay took a mail of its pending confirmation. The mail
    /// is gone either way: a store failure here only leaves the funnel's count and the
    /// confirmation's "since sent" to fall back on the signup's time, and sending it
    /// again would be worse.
    async fn note_confirmation_sent(&self, job: &OutboxJob, mail: &MailKind) {
        let (pending_id, sent) = match mail {
            MailKind::Confirmation { pending_id, .. } => (*pending_id, SentMail::Confirmation),
            MailKind::Reminder { pending_id, .. } => (*pending_id, SentMail::Reminder),
            MailKind::PreferencesLink
            | MailKind::Receipt { .. }
            | MailKind::ConsentRenewal { .. } => return,
        };
        if let Err(error) = self
            .service
            .note_mail_sent(&job.contact_id, pending_id, sent)
            .await
        {
            tracing::warn!(job = %job.id, %error, "could not record that a confirmation mail was sent");
        }
    }

    fn retry_policy(&self, job: &OutboxJob) -> RetryPolicy {
        match job.task {
            Task::Mail(_) => RetryPolicy {
                max_attempts: self.config.settings.mail.max_attempts,
                base_secs: self.config.settings.mail.retry_base_secs,
            },
            Task::Webhook { .. } => RetryPolicy {
                max_attempts: self.config.settings.webhooks.max_attempts,
                base_secs: self.config.settings.webhooks.retry_base_secs,
            },
        }
    }

    async fn record_failure(
        &self,
        mut job: OutboxJob,
        error: String,
        hopeless: bool,
        policy: &RetryPolicy,
    ) -> Result<(), StoreError> {
        job.attempts += 1;
        // The transport masks SMTP replies already; this also covers rendering and
        // composing errors, which may quote the address too.
        let error = mask_addresses(&error);
        job.last_error = Some(error.clone());
        let kind = job.kind_name();
        metrics::counter!("optin_outbox_failed_total", "kind" => kind).increment(1);
        if hopeless || job.attempts >= policy.max_attempts {
            tracing::warn!(job = %job.id, kind, attempts = job.attempts, %error, "job dead-lettered");
            metrics::counter!("optin_outbox_dead_total", "kind" => kind).increment(1);
            forget_erased_address(&mut job);
            return self.store.dead_letter_job(&job).await;
        }
        let due = clock::later(self.clock.now(), backoff(policy.base_secs, job.attempts));
        tracing::info!(job = %job.id, kind, attempts = job.attempts, %error, retry_at = %due, "job failed; will retry");
        self.store.retry_job_later(&job, due).await
    }
}

/// An erasure notice holds the erased address only until it is delivered or given up
/// (DESIGN.md, "Webhooks"): its dead letter keeps the notice without it.
fn forget_erased_address(job: &mut OutboxJob) {
    if let Task::Webhook { webhook } = &mut job.task {
        if let Some(body) = crate::webhooks::event::without_erased_address(&webhook.body) {
            webhook.body = body;
        }
    }
}

/// `base * 2^(attempts-1)`, capped at six hours.
fn backoff(base_secs: u64, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    let secs = i64::try_from(base_secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1i64 << exponent)
        .min(MAX_BACKOFF_SECS);
    Duration::seconds(secs)
}

/// A delay drawn from [`SETTLE_MILLIS`].
fn settle_delay() -> std::time::Duration {
    let span = SETTLE_MILLIS.end - SETTLE_MILLIS.start;
    std::time::Duration::from_millis(SETTLE_MILLIS.start + clock::draw_below(span))
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
}
