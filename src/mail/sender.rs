//! Sending one mail job: render its templates, compose the MIME message with the
//! one-click unsubscribe headers, sign it (DKIM) and hand it to the transport. Queueing,
//! leases and retries are the outbox worker's.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::compose::{compose_message, Envelope};
use super::templates::{
    ConfirmationData, MailTemplates, RenderedMail, TypeSummary, CONFIRMATION_MAIL,
    PREFERENCES_LINK_MAIL, REMINDER_MAIL,
};
use super::transport::MailTransport;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::{MailKind, MailTask, OutboxJob, SubscriptionTypeId};
use crate::links::Links;
use crate::mail::dkim::{DkimError, DkimSigner};

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Retrying later may succeed (connection refused, 4xx).
    #[error("{0}")]
    Transient(String),
    /// Retrying won't help (5xx, a template that does not render): dead-letter at once.
    #[error("{0}")]
    Permanent(String),
    /// A permanent `5.1.x` answer: the mailbox does not exist.
    /// Dead-lettered like `Permanent`, and the address is marked unreachable.
    #[error("{0}")]
    MailboxUnavailable(String),
}

pub struct MailSender {
    templates: Arc<MailTemplates>,
    transport: Arc<MailTransport>,
    config: Arc<Config>,
    links: Links,
    /// Signs every mail when `[mail.dkim]` is set.
    dkim: Option<DkimSigner>,
    clock: SharedClock,
}

impl MailSender {
    /// Loads the DKIM key when one is configured; a key that cannot be read, or a `From`
    /// domain outside the signing domain, stops the start.
    pub fn new(
        templates: Arc<MailTemplates>,
        transport: Arc<MailTransport>,
        config: Arc<Config>,
        links: Links,
        clock: SharedClock,
    ) -> Result<Self, DkimError> {
        let dkim = DkimSigner::from_config(&config)?;
        Ok(Self {
            templates,
            transport,
            config,
            links,
            dkim,
            clock,
        })
    }

    /// Sends the mail of `job` once.
    pub async fn send(&self, job: &OutboxJob, mail: &MailTask) -> Result<(), SendError> {
        let (rendered, list_unsubscribe) = self.render(job, mail)?;
        let message_id = job.message_id(self.config.mail_from.email.domain());
        let envelope = Envelope {
            from: &self.config.mail_from,
            to: &mail.to,
            message_id: &message_id,
            list_unsubscribe: Some(&list_unsubscribe),
        };
        let mut message = compose_message(&rendered, &envelope)
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        // Signed here, per attempt: a retry signs the same headers and body again.
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut message);
        }
        self.transport.send(message).await.map_err(|e| {
            if e.is_mailbox_unavailable() {
                SendError::MailboxUnavailable(e.to_string())
            } else if e.is_permanent() {
                SendError::Permanent(e.to_string())
            } else {
                SendError::Transient(e.to_string())
            }
        })
    }

    /// Renders the mail of a job, and gives the one-click unsubscribe URL it must carry.
    fn render(
        &self,
        job: &OutboxJob,
        mail: &MailTask,
    ) -> Result<(RenderedMail, String), SendError> {
        let now = self.clock.now();
        match &mail.mail {
            MailKind::Confirmation {
                pending_id,
                types,
                expires_at,
            } => self.render_confirmation(
                CONFIRMATION_MAIL,
                job,
                mail,
                *pending_id,
                types,
                *expires_at,
            ),
            MailKind::Reminder {
                pending_id,
                types,
                expires_at,
            } => {
                self.render_confirmation(REMINDER_MAIL, job, mail, *pending_id, types, *expires_at)
            }
            MailKind::PreferencesLink => {
                let unsubscribe_url = self.links.stop_requests(&job.contact_id, &mail.locale, now);
                let data = crate::mail::templates::PreferencesLinkData {
                    preferences_url: self.links.preferences(&job.contact_id, &mail.locale, now),
                    unsubscribe_url: unsubscribe_url.clone(),
                    valid_for_days: self.config.settings.links.preferences_ttl_days,
                    service_name: self.config.settings.mail.service_name.clone(),
                };
                let rendered = self
                    .templates
                    .render(PREFERENCES_LINK_MAIL, &mail.locale, None, &data)
                    .map_err(|e| SendError::Permanent(e.to_string()))?;
                Ok((rendered, unsubscribe_url))
            }
        }
    }
}

impl MailSender {
    /// The confirmation mail or its reminder: the same link, code and cancel link.
    fn render_confirmation(
        &self,
        name: &str,
        job: &OutboxJob,
        mail: &MailTask,
        pending_id: Uuid,
        types: &[SubscriptionTypeId],
        expires_at: DateTime<Utc>,
    ) -> Result<(RenderedMail, String), SendError> {
        let now = self.clock.now();
        let catalog = &self.config.catalog;
        let fallback = catalog.default_locale();
        let summaries = types
            .iter()
            .filter_map(|id| catalog.get(id.as_str()))
            .map(|t| TypeSummary {
                id: t.id.to_string(),
                name: t.name_in(&mail.locale, fallback),
                description: t.description_in(&mail.locale, fallback),
            })
            .collect();
        let unsubscribe_url =
            self.links
                .cancel_signup(&job.contact_id, pending_id, &mail.locale, now);
        let data = ConfirmationData {
            types: summaries,
            confirm_url: self.links.confirm(
                &job.contact_id,
                pending_id,
                expires_at,
                &mail.locale,
                now,
            ),
            code: self.links.signer().confirmation_code(pending_id),
            reminds: self.config.settings.signup.reminder_after_minutes > 0,
            unsubscribe_url: unsubscribe_url.clone(),
            preferences_url: self.links.preferences(&job.contact_id, &mail.locale, now),
            valid_for_days: valid_for_days(expires_at, now),
            expires_at: expires_at.format("%Y-%m-%d").to_string(),
            service_name: self.config.settings.mail.service_name.clone(),
        };
        // A single-type signup may use that type's own template.
        let type_override = match types {
            [only] => Some(only.as_str()),
            _ => None,
        };
        let rendered = self
            .templates
            .render(name, &mail.locale, type_override, &data)
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        Ok((rendered, unsubscribe_url))
    }
}

/// Whole days left, rounded up, and at least one.
fn valid_for_days(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let hours = (expires_at - now).num_hours().max(1);
    (hours + 23) / 24
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn validity_is_rounded_up_to_whole_days() {
        let now = Utc::now();
        assert_eq!(valid_for_days(now + Duration::days(7), now), 7);
        assert_eq!(valid_for_days(now + Duration::hours(25), now), 2);
        assert_eq!(valid_for_days(now, now), 1);
    }
}
