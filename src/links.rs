//! The public links we hand out: confirmation, unsubscribe and preference center URLs,
//! each carrying a signed token.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::domain::{ContactId, SubscriptionTypeId};
use crate::tokens::{Claims, Purpose, TokenSigner};

#[derive(Clone)]
pub struct Links {
    signer: TokenSigner,
    public_url: url::Url,
    long_lived: Duration,
}

impl Links {
    pub fn new(signer: TokenSigner, public_url: url::Url, unsubscribe_ttl_days: u32) -> Self {
        Self {
            signer,
            public_url,
            long_lived: Duration::days(i64::from(unsubscribe_ttl_days)),
        }
    }

    /// The links of a configured service.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self::new(
            config.signer.clone(),
            config.public_url.clone(),
            config.settings.links.unsubscribe_ttl_days,
        )
    }

    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    fn url(&self, path: &str, token: &str) -> String {
        format!(
            "{}/{path}/{token}",
            self.public_url.as_str().trim_end_matches('/')
        )
    }

    /// Expiries of long-lived links are rounded to the day, so the link for a
    /// (contact, type) stays the same all day and senders can cache it.
    fn long_lived_expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let day = (now + self.long_lived).date_naive();
        day.and_hms_opt(0, 0, 0)
            .map_or(now + self.long_lived, |midnight| midnight.and_utc())
    }

    pub fn confirm(&self, contact: &ContactId, pending: Uuid, expires_at: DateTime<Utc>) -> String {
        let token = self.signer.sign(&Claims {
            purpose: Purpose::Confirm,
            contact_id: contact.clone(),
            subscription_type: None,
            expires_at,
            pending_id: Some(pending),
        });
        self.url("confirm", &token)
    }

    /// One-click unsubscribe from one type.
    pub fn unsubscribe(
        &self,
        contact: &ContactId,
        subscription_type: &SubscriptionTypeId,
        now: DateTime<Utc>,
    ) -> String {
        let token = self.signer.sign(&Claims {
            purpose: Purpose::Unsubscribe,
            contact_id: contact.clone(),
            subscription_type: Some(subscription_type.clone()),
            expires_at: self.long_lived_expiry(now),
            pending_id: None,
        });
        self.url("unsubscribe", &token)
    }

    /// The unsubscribe link of a confirmation mail: it cancels that pending signup.
    pub fn cancel_signup(&self, contact: &ContactId, pending: Uuid, now: DateTime<Utc>) -> String {
        let token = self.signer.sign(&Claims {
            purpose: Purpose::Unsubscribe,
            contact_id: contact.clone(),
            subscription_type: None,
            expires_at: self.long_lived_expiry(now),
            pending_id: Some(pending),
        });
        self.url("unsubscribe", &token)
    }

    pub fn preferences(&self, contact: &ContactId, now: DateTime<Utc>) -> String {
        let token = self.signer.sign(&Claims {
            purpose: Purpose::Preferences,
            contact_id: contact.clone(),
            subscription_type: None,
            expires_at: self.long_lived_expiry(now),
            pending_id: None,
        });
        self.url("preferences", &token)
    }
}
