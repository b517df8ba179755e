//! Manual changes by an admin or an import, with their lawful basis, whichever door they
//! come through (the `/v1` API, imports, the console, HubSpot); unsubscribe from all;
//! and lifting a signup block. The rules are the domain's ([`crate::domain::contact`],
//! manual); this file only loads, plans and commits.

use super::commit::{Found, Reach};
use super::{RequestError, Subscriptions};
use crate::domain::{
    Contact, EmailAddress, ManualChange, ManualResult, Planned, RequestMeta, Source,
};

impl Subscriptions {
    /// One manual change, recorded with the change's source (`admin_api` or `import`).
    pub async fn change_manually(
        &self,
        email: &EmailAddress,
        change: &ManualChange,
        meta: &RequestMeta,
    ) -> Result<ManualResult, RequestError> {
        change.check()?;
        self.commit_by_address(email, self.rules.default_locale(), |contact, found| {
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
        self.commit_by_address(email, self.rules.default_locale(), |contact, found| {
            Ok(contact.unsubscribe_all(&self.rules, Source::AdminApi, meta, found.now))
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

impl Subscriptions {
    /// A change by address on the authenticated API, of the contact held for it or of a
    /// new one (in `locale`) when none is.
    pub(super) async fn commit_by_address<T>(
        &self,
        email: &EmailAddress,
        locale: &str,
        plan: impl Fn(Contact, &Found) -> Result<Planned<T>, RequestError>,
    ) -> Result<T, RequestError> {
        let id = self.contact_id(email);
        self.commit(&id, Reach::Address, |found| {
            let contact = found
                .contact
                .cloned()
                .unwrap_or_else(|| Contact::new(id.clone(), email.clone(), locale, found.now));
            plan(contact, found)
        })
        .await
    }

    /// A change by address of a contact that must be held: [`RequestError::NotFound`]
    /// otherwise.
    pub(super) async fn commit_existing<T>(
        &self,
        email: &EmailAddress,
        plan: impl Fn(Contact, &Found) -> Planned<T>,
    ) -> Result<T, RequestError> {
        self.commit(&self.contact_id(email), Reach::Address, |found| {
            let contact = found.contact.ok_or(RequestError::NotFound)?;
            Ok(plan(contact.clone(), found))
        })
        .await
    }
}
