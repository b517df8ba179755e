//! Work waiting in the durable outbox: a mail to send or a webhook to deliver. Written in
//! the same atomic step as the change that caused it, and done later by a worker.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::contact_id::ContactId;
use super::email::EmailAddress;
use super::subscription_type::SubscriptionTypeId;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MailKind {
    /// "Please confirm": holds the link for one pending confirmation.
    Confirmation {
        pending_id: Uuid,
        types: Vec<SubscriptionTypeId>,
        expires_at: DateTime<Utc>,
    },
    /// "Here is the link to your preferences", asked for on a manage or unsubscribe page.
    PreferencesLink,
    /// The one reminder of a pending confirmation: the same link and code again.
    Reminder {
        pending_id: Uuid,
        types: Vec<SubscriptionTypeId>,
        expires_at: DateTime<Utc>,
    },
    /// "You're subscribed": the consent receipt of an opt-in by the person's own act,
    /// attached, and what it says in words.
    Receipt {
        subscription_type: SubscriptionTypeId,
        event_id: Uuid,
        /// The compact JWS, exactly as attached.
        receipt: String,
    },
    /// "Do you still want …?": a consent that lapses at `expires_at` unless renewed.
    ConsentRenewal {
        subscription_type: SubscriptionTypeId,
        expires_at: DateTime<Utc>,
    },
}

impl MailKind {
    /// Mails that someone else's request may cause: they count against the per-address
    /// cap, so that nobody can flood an address through our forms.
    pub fn is_requested_by_others(&self) -> bool {
        match self {
            MailKind::Confirmation { .. }
            | MailKind::PreferencesLink
            | MailKind::Reminder { .. } => true,
            // The person's own opt-in, and the service's own schedule, cause these.
            MailKind::Receipt { .. } | MailKind::ConsentRenewal { .. } => false,
        }
    }
}

/// A mail to one address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailTask {
    pub to: EmailAddress,
    pub locale: String,
    pub mail: MailKind,
}

/// One signed POST to one webhook endpoint. The body is rendered when the job is queued,
/// so that every retry sends the same bytes under the same `webhook-id` (the job id).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookTask {
    pub endpoint: String,
    /// The event type, e.g. `subscription.opted_in`: shown with dead letters.
    pub event_type: String,
    pub body: String,
}

/// What a job does. Untagged and flattened into the job, so that mail jobs keep the
/// shape they had before webhooks existed (`to`, `locale`, `mail`) and jobs queued by
/// an older version still decode.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Task {
    Mail(MailTask),
    Webhook { webhook: WebhookTask },
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxJob {
    pub id: Uuid,
    /// The contact the job belongs to: an erasure removes the contact's jobs. A
    /// `webhook.test` delivery belongs to no contact and carries [`ContactId::for_test_delivery`].
    pub contact_id: ContactId,
    #[serde(flatten)]
    pub task: Task,
    pub created_at: DateTime<Utc>,
    /// Attempts so far; the next failure past the limit dead-letters the job.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl OutboxJob {
    pub fn mail(
        contact_id: ContactId,
        to: EmailAddress,
        locale: &str,
        mail: MailKind,
        now: DateTime<Utc>,
    ) -> Self {
        let task = Task::Mail(MailTask {
            to,
            locale: locale.to_string(),
            mail,
        });
        Self::with_task(contact_id, task, now)
    }

    pub fn webhook(contact_id: ContactId, webhook: WebhookTask, now: DateTime<Utc>) -> Self {
        Self::with_task(contact_id, Task::Webhook { webhook }, now)
    }

    fn with_task(contact_id: ContactId, task: Task, now: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            contact_id,
            task,
            created_at: now,
            attempts: 0,
            last_error: None,
        }
    }

    /// A copy owned by another contact, under a new id: a rectification carries the old
    /// contact's undelivered webhook notices over to the new one, whose write queues it.
    #[must_use]
    pub fn moved_to(&self, contact_id: ContactId) -> Self {
        Self {
            id: Uuid::now_v7(),
            contact_id,
            ..self.clone()
        }
    }

    /// The mail of a mail job.
    pub fn as_mail(&self) -> Option<&MailTask> {
        match &self.task {
            Task::Mail(mail) => Some(mail),
            Task::Webhook { .. } => None,
        }
    }

    /// The delivery of a webhook job.
    pub fn as_webhook(&self) -> Option<&WebhookTask> {
        match &self.task {
            Task::Webhook { webhook } => Some(webhook),
            Task::Mail(_) => None,
        }
    }

    /// Counts against the per-address mail cap (see [`MailKind::is_requested_by_others`]).
    pub fn is_requested_by_others(&self) -> bool {
        self.as_mail()
            .is_some_and(|mail| mail.mail.is_requested_by_others())
    }

    /// `mail` or `webhook`, as the dead-letter listing names it.
    pub fn kind_name(&self) -> &'static str {
        match self.task {
            Task::Mail(_) => "mail",
            Task::Webhook { .. } => "webhook",
        }
    }

    /// Stable across retries, so a receiver can drop a duplicate after a crash mid-send.
    pub fn message_id(&self, domain: &str) -> String {
        format!("<{}@{}>", self.id, domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mail job as written before webhooks existed must still decode, as a mail job.
    #[test]
    fn a_mail_job_queued_by_an_older_version_still_decodes() {
        let old = r#"{"id":"0190b7a4-6d2e-7cc0-8f3e-2f6e5f0a1b2c","contact_id":"00112233445566778899aabbccddeeff","to":"ann@example.com","locale":"nl","mail":{"kind":"preferences_link"},"created_at":"2026-01-02T03:04:05Z","attempts":2}"#;
        let job: OutboxJob = serde_json::from_str(old).unwrap();
        let mail = job.as_mail().expect("a mail job");
        assert_eq!(mail.to.as_str(), "ann@example.com");
        assert_eq!(mail.locale, "nl");
        assert_eq!(mail.mail, MailKind::PreferencesLink);
        assert_eq!(job.attempts, 2);
        // And it is written back in the same shape.
        let again = serde_json::to_value(&job).unwrap();
        assert_eq!(again["to"], "ann@example.com");
        assert_eq!(again["mail"]["kind"], "preferences_link");
    }

    #[test]
    fn a_webhook_job_round_trips_and_is_not_a_mail() {
        let job = OutboxJob::webhook(
            ContactId::parse("00112233445566778899aabbccddeeff").unwrap(),
            WebhookTask {
                endpoint: "crm".into(),
                event_type: "subscription.opted_in".into(),
                body: r#"{"type":"subscription.opted_in"}"#.into(),
            },
            Utc::now(),
        );
        let json = serde_json::to_string(&job).unwrap();
        let back: OutboxJob = serde_json::from_str(&json).unwrap();
        assert_eq!(back, job);
        assert!(back.as_mail().is_none());
        assert_eq!(back.as_webhook().unwrap().endpoint, "crm");
        assert!(!back.is_requested_by_others());
        assert_eq!(back.kind_name(), "webhook");
    }
}
