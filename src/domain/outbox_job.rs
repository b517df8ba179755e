//! Mail waiting in the durable outbox. Written in the same atomic step as the change
//! that caused it, rendered and sent later by a worker.

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
}

impl MailKind {
    /// Mails that someone else's request may cause: they count against the per-address
    /// cap, so that nobody can flood an address through our forms.
    pub fn is_requested_by_others(&self) -> bool {
        match self {
            MailKind::Confirmation { .. } | MailKind::PreferencesLink => true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxJob {
    pub id: Uuid,
    pub contact_id: ContactId,
    pub to: EmailAddress,
    pub locale: String,
    pub mail: MailKind,
    pub created_at: DateTime<Utc>,
    /// Sends tried so far; the next failure past the limit dead-letters the job.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl OutboxJob {
    pub fn new(
        contact_id: ContactId,
        to: EmailAddress,
        locale: &str,
        mail: MailKind,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            contact_id,
            to,
            locale: locale.to_string(),
            mail,
            created_at: now,
            attempts: 0,
            last_error: None,
        }
    }

    /// Stable across retries, so a receiver can drop a duplicate after a crash mid-send.
    pub fn message_id(&self, domain: &str) -> String {
        format!("<{}@{}>", self.id, domain)
    }
}
