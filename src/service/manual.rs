//! Manual changes by an admin or an import, with their lawful basis, whichever door they
//! come through (the `/v1` API, imports, the console, HubSpot); unsubscribe from all;
//! and lifting a signup block. The rules are the domain's ([`crate::domain::contact`],
//! manual); this file only loads, plans and commits.

use super::commit::Reach;
use super::{RequestError, Subscriptions};
use crate::domain::{Contact, EmailAddress, ManualChange, ManualResult, RequestMeta, Source};

impl Subscriptions {
    /// One manual change, recorded with the change's source (`admin_api` or `import`).
    pub async fn change_manually(
        &self,
        email: &EmailAddress,
        change: &ManualChange,
        meta: &RequestMeta,
    ) -> Result<ManualResult, RequestError> {
        change.check()?;
        let id = self.contact_id(email);
        self.commit(&id, Reach::Address, |found| {
            let contact = found.contact.cloned().unwrap_or_else(|| {
                Contact::new(
                    id.clone(),
                    email.clone(),
                    self.rules.default_locale(),
                    found.now,
                )
            });
            Ok(contact.change_manually(
                change,
                found.erased,
                &self.rules,
                found.mail,
                meta,
                found.now,
            )?)
        })
        .await
    }

    /// Every type becomes `unsubscribed` and every pending signup is withdrawn, in one
    /// change (HubSpot v4's unsubscribe-all; the preference center's does the same).
    /// Answers the contact afterwards; an unknown address is stored with its no.
    pub async fn unsubscribe_all(
        &self,
        email: &EmailAddress,
        meta: &RequestMeta,
    ) -> Result<Contact, RequestError> {
        let id = self.contact_id(email);
        self.commit(&id, Reach::Address, |found| {
            let contact = found.contact.cloned().unwrap_or_else(|| {
                Contact::new(
                    id.clone(),
                    email.clone(),
                    self.rules.default_locale(),
                    found.now,
                )
            });
            Ok::<_, RequestError>(contact.unsubscribe_all(
                &self.rules,
                Source::AdminApi,
                meta,
                found.now,
            ))
        })
        .await
    }

    /// `DELETE /v1/contacts/{email}/signup-block`: the admin lifts the person's block on
    /// confirmation requests, recorded with the key's name as actor. Answers the contact.
    pub async fn lift_signup_block(
        &self,
        email: &EmailAddress,
        meta: &RequestMeta,
    ) -> Result<Contact, RequestError> {
        self.commit(&self.contact_id(email), Reach::Address, |found| {
            let contact = found.contact.ok_or(RequestError::NotFound)?;
            Ok(contact
                .clone()
                .allow_signups(Source::AdminApi, meta, found.now))
        })
        .await
    }
}
