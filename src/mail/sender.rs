//! Sending one mail job: render its templates, compose the MIME message with the
//! one-click unsubscribe headers, sign it (DKIM) and hand it to the transport. Queueing,
//! leases and retries are the outbox worker's.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::compose::{compose_message_with, Envelope, MailAttachment};
use super::templates::{
    ConfirmationData, MailTemplates, ReceiptData, RenderedMail, RenewalData, TypeSummary,
    CONFIRMATION_MAIL, CONSENT_RENEWAL_MAIL, PREFERENCES_LINK_MAIL, RECEIPT_MAIL, REMINDER_MAIL,
};
use super::transport::MailTransport;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::{MailKind, MailTask, OutboxJob, StoredReceipt, SubscriptionTypeId};
use crate::links::Links;
use crate::mail::dkim::{DkimError, DkimSigner};
use crate::receipts::ReceiptSummary;

/// The name a receipt is attached under, as the person saves it.
pub const RECEIPT_FILENAME: &str = "consent-receipt.jws";
/// RFC 7515's media type for a JWS in compact serialization.
const RECEIPT_MEDIA_TYPE: &str = "application/jose";

/// A mail ready to compose: its parts, the one-click unsubscribe URL it carries, and
/// what is attached.
struct Prepared {
    rendered: RenderedMail,
    list_unsubscribe: String,
    attachment: Option<MailAttachment>,
}

impl Prepared {
    fn plain(rendered: RenderedMail, list_unsubscribe: String) -> Self {
        Self {
            rendered,
            list_unsubscribe,
            attachment: None,
        }
    }
}

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
        let prepared = self.render(job, mail)?;
        let message_id = job.message_id(self.config.mail_from.email.domain());
        let envelope = Envelope {
            from: &self.config.mail_from,
            to: &mail.to,
            message_id: &message_id,
            list_unsubscribe: Some(&prepared.list_unsubscribe),
        };
        let mut message =
            compose_message_with(&prepared.rendered, &envelope, prepared.attachment.as_ref())
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

    /// Renders the mail of a job, with the one-click unsubscribe URL it must carry.
    fn render(&self, job: &OutboxJob, mail: &MailTask) -> Result<Prepared, SendError> {
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
                Ok(Prepared::plain(rendered, unsubscribe_url))
            }
            MailKind::Receipt {
                subscription_type,
                receipt,
                ..
            } => self.render_receipt(job, mail, subscription_type, receipt),
            MailKind::ConsentRenewal {
                subscription_type,
                expires_at,
            } => self.render_renewal(job, mail, subscription_type, *expires_at),
        }
    }

    /// "You're subscribed", the receipt attached, its words read from the receipt itself.
    fn render_receipt(
        &self,
        job: &OutboxJob,
        mail: &MailTask,
        subscription_type: &SubscriptionTypeId,
        receipt: &str,
    ) -> Result<Prepared, SendError> {
        let now = self.clock.now();
        let summary = StoredReceipt::from_compact(receipt)
            .as_ref()
            .and_then(ReceiptSummary::of)
            .ok_or_else(|| {
                SendError::Permanent("the receipt of this mail is not readable".into())
            })?;
        let unsubscribe_url =
            self.links
                .unsubscribe(&job.contact_id, subscription_type, Some(&mail.locale), now);
        let data = ReceiptData {
            type_name: summary.purpose,
            renewed: summary.act == "renewed",
            consented_at: for_people(&summary.consented_at),
            expires_at: summary.expires_at.as_deref().map(for_people),
            notice_version: summary.notice_version,
            controller_name: summary.controller_name,
            controller_email: summary.controller_email,
            receipt_id: summary.receipt_id,
            sha256: crate::receipts::receipt_sha256(receipt),
            keys_url: format!(
                "{}/.well-known/jwks.json",
                self.config.public_url.as_str().trim_end_matches('/')
            ),
            unsubscribe_url: unsubscribe_url.clone(),
            preferences_url: self.links.preferences(&job.contact_id, &mail.locale, now),
            service_name: self.config.settings.mail.service_name.clone(),
        };
        let rendered = self
            .templates
            .render(
                RECEIPT_MAIL,
                &mail.locale,
                Some(subscription_type.as_str()),
                &data,
            )
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        Ok(Prepared {
            rendered,
            list_unsubscribe: unsubscribe_url,
            attachment: Some(MailAttachment {
                filename: RECEIPT_FILENAME.into(),
                content_type: RECEIPT_MEDIA_TYPE.into(),
                content: receipt.as_bytes().to_vec(),
            }),
        })
    }

    /// "Do you still want …?", with the link that renews until the consent's end.
    fn render_renewal(
        &self,
        job: &OutboxJob,
        mail: &MailTask,
        subscription_type: &SubscriptionTypeId,
        expires_at: DateTime<Utc>,
    ) -> Result<Prepared, SendError> {
        let now = self.clock.now();
        let catalog = &self.config.catalog;
        let fallback = catalog.default_locale();
        let known = catalog.get(subscription_type.as_str()).ok_or_else(|| {
            SendError::Permanent(format!(
                "subscription type '{subscription_type}' is no longer configured"
            ))
        })?;
        let unsubscribe_url =
            self.links
                .unsubscribe(&job.contact_id, subscription_type, Some(&mail.locale), now);
        let data = RenewalData {
            type_name: known.name_in(&mail.locale, fallback),
            description: known.description_in(&mail.locale, fallback),
            renew_url: self.links.renew(
                &job.contact_id,
                subscription_type,
                expires_at,
                &mail.locale,
                now,
            ),
            expires_at: for_people(&expires_at.to_rfc3339()),
            unsubscribe_url: unsubscribe_url.clone(),
            service_name: self.config.settings.mail.service_name.clone(),
        };
        let rendered = self
            .templates
            .render(
                CONSENT_RENEWAL_MAIL,
                &mail.locale,
                Some(subscription_type.as_str()),
                &data,
            )
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        Ok(Prepared::plain(rendered, unsubscribe_url))
    }
}

/// An RFC 3339 time as people read it in a mail: `2026-03-01 10:00 UTC`; as given when
/// it does not parse.
fn for_people(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339).map_or_else(
        |_| rfc3339.to_string(),
        |at| {
            at.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        },
    )
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
    ) -> Result<Prepared, SendError> {
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
        Ok(Prepared::plain(rendered, unsubscribe_url))
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
    fn times_in_mails_are_read_by_people() {
        assert_eq!(for_people("2026-03-01T10:00:59Z"), "2026-03-01 10:00 UTC");
        assert_eq!(
            for_people("2026-03-01T12:00:00+02:00"),
            "2026-03-01 10:00 UTC"
        );
        assert_eq!(for_people("soon"), "soon");
    }

    #[test]
    fn validity_is_rounded_up_to_whole_days() {
        let now = Utc::now();
        assert_eq!(valid_for_days(now + Duration::days(7), now), 7);
        assert_eq!(valid_for_days(now + Duration::hours(25), now), 2);
        assert_eq!(valid_for_days(now, now), 1);
    }
}
