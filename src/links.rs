//! The public links we hand out, each carrying a signed token. What each purpose may do
//! is set by where it is shown (DESIGN.md, "What each link may do"):
//! - `confirm` and `preferences` go only into mails optin sends to the address itself;
//! - `unsubscribe` and `manage` appear in newsletter headers and footers, so they reach
//!   no further than one type's unsubscribe and "mail me a preferences link";
//! - `renew` goes only into the renewal mail to the address, and renews one type's
//!   consent until that consent's end.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::clock;
use crate::domain::{ContactId, SubscriptionTypeId};
use crate::tokens::{Claims, Purpose, TokenSigner};

/// The only value RFC 8058 allows for `List-Unsubscribe-Post`. A fact about the one-click
/// link, so the mail headers and the eligibility answer take it from here.
pub const LIST_UNSUBSCRIBE_POST: &str = "List-Unsubscribe=One-Click";

/// The `List-Unsubscribe` header value for `url`: the URL in angle brackets (RFC 2369).
pub fn list_unsubscribe_value(url: &str) -> String {
    format!("<{url}>")
}

#[derive(Clone)]
pub struct Links {
    signer: TokenSigner,
    public_url: url::Url,
    long_lived: Duration,
    preferences_ttl: Duration,
}

impl Links {
    pub fn new(
        signer: TokenSigner,
        public_url: url::Url,
        unsubscribe_ttl_days: u32,
        preferences_ttl_days: u32,
    ) -> Self {
        Self {
            signer,
            public_url,
            long_lived: clock::days(unsubscribe_ttl_days.into()),
            preferences_ttl: clock::days(preferences_ttl_days.into()),
        }
    }

    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    fn url(&self, path: &str, claims: &Claims) -> String {
        format!(
            "{}/{path}/{}",
            self.public_url.as_str().trim_end_matches('/'),
            self.signer.sign(claims)
        )
    }

    /// Expiries of long-lived links are rounded to the day, so the link for a
    /// (contact, type) stays the same all day and senders can cache it. For the same
    /// reason these links carry no issue time.
    fn long_lived_expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let end = clock::later(now, self.long_lived);
        end.date_naive()
            .and_hms_opt(0, 0, 0)
            .map_or(end, |midnight| midnight.and_utc())
    }

    fn long_lived(
        &self,
        purpose: Purpose,
        contact: &ContactId,
        subscription_type: Option<&SubscriptionTypeId>,
        pending: Option<Uuid>,
        locale: Option<&str>,
        now: DateTime<Utc>,
    ) -> Claims {
        Claims {
            purpose,
            contact_id: contact.clone(),
            subscription_type: subscription_type.cloned(),
            expires_at: self.long_lived_expiry(now),
            pending_id: pending,
            issued_at: None,
            locale: locale.map(str::to_string),
        }
    }

    pub fn confirm(
        &self,
        contact: &ContactId,
        pending: Uuid,
        expires_at: DateTime<Utc>,
        locale: &str,
        now: DateTime<Utc>,
    ) -> String {
        let claims = Claims {
            purpose: Purpose::Confirm,
            contact_id: contact.clone(),
            subscription_type: None,
            expires_at,
            pending_id: Some(pending),
            issued_at: Some(now),
            locale: Some(locale.to_string()),
        };
        self.url("confirm", &claims)
    }

    /// One-click unsubscribe from one type. `locale` is the mail's language, where known.
    pub fn unsubscribe(
        &self,
        contact: &ContactId,
        subscription_type: &SubscriptionTypeId,
        locale: Option<&str>,
        now: DateTime<Utc>,
    ) -> String {
        let claims = self.long_lived(
            Purpose::Unsubscribe,
            contact,
            Some(subscription_type),
            None,
            locale,
            now,
        );
        self.url("unsubscribe", &claims)
    }

    /// The unsubscribe link of a confirmation mail: it cancels that pending signup.
    pub fn cancel_signup(
        &self,
        contact: &ContactId,
        pending: Uuid,
        locale: &str,
        now: DateTime<Utc>,
    ) -> String {
        let claims = self.long_lived(
            Purpose::Unsubscribe,
            contact,
            None,
            Some(pending),
            Some(locale),
            now,
        );
        self.url("unsubscribe", &claims)
    }

    /// The unsubscribe link of a mail that someone else's request caused (a preferences
    /// link asked for on the manage page): it stops such mails by recording a signup block.
    pub fn stop_requests(&self, contact: &ContactId, locale: &str, now: DateTime<Utc>) -> String {
        let claims = self.long_lived(Purpose::Unsubscribe, contact, None, None, Some(locale), now);
        self.url("unsubscribe", &claims)
    }

    /// For newsletter footers: only asks for a preferences link to be mailed.
    pub fn manage(&self, contact: &ContactId, locale: Option<&str>, now: DateTime<Utc>) -> String {
        let claims = self.long_lived(Purpose::Manage, contact, None, None, locale, now);
        self.url("manage", &claims)
    }

    /// The renewal mail's link: renews the consent to one type, valid until that consent
    /// lapses. It carries its issue time, so that a click after a renewal renews no more.
    pub fn renew(
        &self,
        contact: &ContactId,
        subscription_type: &SubscriptionTypeId,
        consent_ends_at: DateTime<Utc>,
        locale: &str,
        now: DateTime<Utc>,
    ) -> String {
        let claims = Claims {
            purpose: Purpose::Renew,
            contact_id: contact.clone(),
            subscription_type: Some(subscription_type.clone()),
            expires_at: consent_ends_at,
            pending_id: None,
            issued_at: Some(now),
            locale: Some(locale.to_string()),
        };
        self.url("renew", &claims)
    }

    /// Only for mails optin sends to the address itself, and pages reached from them.
    pub fn preferences(&self, contact: &ContactId, locale: &str, now: DateTime<Utc>) -> String {
        let claims = Claims {
            purpose: Purpose::Preferences,
            contact_id: contact.clone(),
            subscription_type: None,
            expires_at: clock::later(now, self.preferences_ttl),
            pending_id: None,
            issued_at: Some(now),
            locale: Some(locale.to_string()),
        };
        self.url("preferences", &claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::SigningKey;

    #[test]
    fn lifetimes_too_long_for_the_calendar_give_links_that_never_expire_instead_of_a_panic() {
        let signer = TokenSigner::new(vec![SigningKey {
            id: "k".into(),
            secret: vec![1; 32],
        }])
        .unwrap();
        let links = Links::new(
            signer.clone(),
            url::Url::parse("https://optin.example").unwrap(),
            u32::MAX,
            u32::MAX,
        );
        let contact = ContactId::for_test_delivery();
        let now = Utc::now();
        for (url, purpose) in [
            (links.manage(&contact, None, now), Purpose::Manage),
            (links.preferences(&contact, "en", now), Purpose::Preferences),
        ] {
            let token = url.rsplit('/').next().unwrap();
            let claims = signer.verify(token, purpose, now).unwrap();
            assert!(claims.expires_at >= clock::latest() - Duration::days(1));
        }
    }
}
