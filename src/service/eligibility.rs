//! Eligibility: may a sender mail this address this type? Only when opted in, on a
//! consent that has not lapsed, not restricted and not unreachable. Unknown addresses
//! answer `not_subscribed`, like anyone never seen.

use chrono::{DateTime, Utc};

use super::{RequestError, Subscriptions};
use crate::domain::{Contact, EmailAddress, LawfulBasis, Status, SubscriptionType};
use crate::links::{list_unsubscribe_value, LIST_UNSUBSCRIBE_POST};

/// Why an address may not be mailed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IneligibleReason {
    NotOptedIn,
    Unsubscribed,
    Restricted,
    /// Bounces marked the address: every type answers this while the mark is set.
    Unreachable,
    /// The consent reached the end of the type's `consent_valid_days` unrenewed. Said
    /// from that moment, before the sweep records the lapse.
    ConsentLapsed,
}

impl IneligibleReason {
    /// `None` when the contact may be mailed this type at `now`.
    fn of(
        contact: Option<&Contact>,
        subscription_type: &SubscriptionType,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let Some(contact) = contact else {
            return Some(Self::NotOptedIn);
        };
        let type_id = &subscription_type.id;
        // A restriction (Art. 18) is a legal hold and keeps its answer on an opted-in
        // type; otherwise the mark wins over the status, so that a sender sees the
        // delivery fact on every type. The status field still tells the consent.
        match contact.status(type_id) {
            Status::OptedIn if contact.is_restricted() => Some(Self::Restricted),
            _ if contact.is_unreachable() => Some(Self::Unreachable),
            Status::Unsubscribed => Some(Self::Unsubscribed),
            Status::NotSubscribed if contact.consent_lapsed(type_id) => Some(Self::ConsentLapsed),
            Status::NotSubscribed => Some(Self::NotOptedIn),
            Status::OptedIn if contact.consent_has_lapsed(subscription_type, now) => {
                Some(Self::ConsentLapsed)
            }
            Status::OptedIn => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Eligibility {
    pub email: String,
    pub subscription_type: String,
    pub eligible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<IneligibleReason>,
    pub status: Status,
    pub since: Option<DateTime<Utc>>,
    pub lawful_basis: Option<LawfulBasis>,
    pub list_unsubscribe: String,
    pub list_unsubscribe_post: &'static str,
    /// For newsletter footers: a page that can only mail a preferences link to the
    /// address, never show the preferences themselves.
    pub manage_preferences_url: String,
}

/// The answers of a batch check, in the order asked.
pub struct BatchEligibility<'a> {
    pub results: Vec<Eligibility>,
    _room: tokio::sync::SemaphorePermit<'a>,
}

impl Subscriptions {
    pub async fn eligibility(
        &self,
        email: &EmailAddress,
        type_id: &str,
    ) -> Result<Eligibility, RequestError> {
        let subscription_type = self.catalog().lookup(type_id)?;
        let contact = self.contact(email).await?;
        Ok(self.answer(email, subscription_type, contact.as_ref()))
    }

    /// Many addresses of one type: one batched read for all of them. The answer holds
    /// its place in the batch room until it is dropped, so that the caller keeps it
    /// until the answer is sent and concurrent batches queue instead of all missing
    /// their deadline together.
    pub async fn eligibility_batch(
        &self,
        emails: &[EmailAddress],
        type_id: &str,
    ) -> Result<BatchEligibility<'_>, RequestError> {
        let subscription_type = self.catalog().lookup(type_id)?;
        let room = self.read_room.enter(emails.len()).await;
        let contacts = self.contacts(emails).await?;
        let results = emails
            .iter()
            .zip(&contacts)
            .map(|(email, contact)| self.answer(email, subscription_type, contact.as_ref()))
            .collect();
        Ok(BatchEligibility {
            results,
            _room: room,
        })
    }

    fn answer(
        &self,
        email: &EmailAddress,
        subscription_type: &SubscriptionType,
        contact: Option<&Contact>,
    ) -> Eligibility {
        let type_id = &subscription_type.id;
        let subscription = contact.and_then(|c| c.subscription(type_id));
        let id = contact.map_or_else(|| self.contact_id(email), |c| c.id().clone());
        let now = self.now();
        let reason = IneligibleReason::of(contact, subscription_type, now);
        Eligibility {
            email: email.as_str().to_string(),
            subscription_type: type_id.to_string(),
            eligible: reason.is_none(),
            reason,
            status: subscription.map_or(Status::NotSubscribed, |s| s.status),
            since: subscription.map(|s| s.since),
            lawful_basis: subscription.and_then(|s| s.lawful_basis),
            list_unsubscribe: list_unsubscribe_value(
                &self.links().unsubscribe(&id, type_id, None, now),
            ),
            list_unsubscribe_post: LIST_UNSUBSCRIBE_POST,
            manage_preferences_url: self.links().manage(&id, None, now),
        }
    }
}
