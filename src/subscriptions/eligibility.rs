//! Eligibility: may a sender mail this address this type? Only when opted in and not
//! restricted. Unknown addresses answer `not_subscribed`, like anyone never seen.

use chrono::{DateTime, Utc};

use super::Subscriptions;
use crate::domain::{Contact, EmailAddress, LawfulBasis, Status, SubscriptionTypeId};
use crate::mail::compose::{list_unsubscribe_value, LIST_UNSUBSCRIBE_POST};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EligibilityError {
    #[error("subscription_type: unknown subscription type '{0}'")]
    UnknownType(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Eligibility {
    pub email: String,
    pub subscription_type: String,
    pub eligible: bool,
    pub status: Status,
    pub since: Option<DateTime<Utc>>,
    pub lawful_basis: Option<LawfulBasis>,
    pub list_unsubscribe: String,
    pub list_unsubscribe_post: &'static str,
}

impl Subscriptions {
    pub fn known_type(&self, type_id: &str) -> Result<SubscriptionTypeId, EligibilityError> {
        self.config()
            .catalog
            .get(type_id)
            .map(|t| t.id.clone())
            .ok_or_else(|| EligibilityError::UnknownType(type_id.chars().take(64).collect()))
    }

    pub async fn eligibility(
        &self,
        email: &EmailAddress,
        type_id: &SubscriptionTypeId,
    ) -> Result<Eligibility, EligibilityError> {
        let contact = self.contact(email).await?;
        Ok(self.answer(email, type_id, contact.as_ref()))
    }

    /// Many addresses of one type: one batched read for all of them.
    pub async fn eligibility_batch(
        &self,
        emails: &[EmailAddress],
        type_id: &SubscriptionTypeId,
    ) -> Result<Vec<Eligibility>, EligibilityError> {
        let ids: Vec<_> = emails.iter().map(|e| self.contact_id(e)).collect();
        let contacts = self.store().load_contacts(&ids).await?;
        Ok(emails
            .iter()
            .zip(&contacts)
            .map(|(email, contact)| self.answer(email, type_id, contact.as_ref()))
            .collect())
    }

    fn answer(
        &self,
        email: &EmailAddress,
        type_id: &SubscriptionTypeId,
        contact: Option<&Contact>,
    ) -> Eligibility {
        let subscription = contact.and_then(|c| c.subscriptions.get(type_id));
        let id = contact
            .map(|c| c.id.clone())
            .unwrap_or_else(|| self.contact_id(email));
        Eligibility {
            email: email.as_str().to_string(),
            subscription_type: type_id.to_string(),
            eligible: contact.is_some_and(|c| c.is_eligible(type_id)),
            status: subscription.map_or(Status::NotSubscribed, |s| s.status),
            since: subscription.map(|s| s.since),
            lawful_basis: subscription.and_then(|s| s.lawful_basis),
            list_unsubscribe: list_unsubscribe_value(&self.links().unsubscribe(
                &id,
                type_id,
                self.now(),
            )),
            list_unsubscribe_post: LIST_UNSUBSCRIBE_POST,
        }
    }
}
