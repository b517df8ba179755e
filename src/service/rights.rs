//! The data subject's rights: access and portability (Art. 15, 20), erasure (Art. 17)
//! and restriction (Art. 18), plus the provenance log. Rectification (Art. 16) has its
//! own file.

use chrono::{DateTime, Utc};

use super::commit::Reach;
use super::receipts::{receipts_of, ReceiptView};
use super::{RequestError, Subscriptions};
use crate::domain::event::verify_chain;
use crate::domain::{
    ChainCheck, Contact, ContactId, EmailAddress, Erased, ErasureReason, Event, RequestMeta,
    Restriction,
};
use crate::store::StoreError;

/// The provenance of one contact, and whether its hash chain verifies. The events show
/// their receipts' hashes; the receipts themselves are listed apart.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Provenance {
    pub events: Vec<Event>,
    #[serde(flatten)]
    pub chain: ChainCheck,
}

/// Everything held on one person, as one JSON document (Art. 15 and 20).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Export {
    pub exported_at: DateTime<Utc>,
    pub contact: Contact,
    pub events: Vec<Event>,
    pub chain_valid: bool,
    /// The consent receipts issued to the person, each as the compact JWS they were
    /// given.
    pub receipts: Vec<ReceiptView>,
}

impl Subscriptions {
    /// The contact held for an address.
    pub async fn contact(&self, email: &EmailAddress) -> Result<Option<Contact>, StoreError> {
        self.store.load_contact(&self.contact_id(email)).await
    }

    /// The contact held for an address, or [`RequestError::NotFound`].
    pub async fn existing_contact(&self, email: &EmailAddress) -> Result<Contact, RequestError> {
        self.contact(email).await?.ok_or(RequestError::NotFound)
    }

    /// A contact by its id (console URLs carry ids, never addresses).
    pub async fn contact_by_id(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        self.store.load_contact(id).await
    }

    pub async fn provenance(&self, email: &EmailAddress) -> Result<Provenance, RequestError> {
        let contact = self.existing_contact(email).await?;
        let events = self.store.events(contact.id()).await?;
        let chain = verify_chain(&events, contact.head());
        let events = events.iter().map(Event::without_receipt).collect();
        Ok(Provenance { events, chain })
    }

    pub async fn export(&self, email: &EmailAddress) -> Result<Export, RequestError> {
        let contact = self.existing_contact(email).await?;
        Ok(self.export_of(contact).await?)
    }

    pub(super) async fn export_of(&self, contact: Contact) -> Result<Export, StoreError> {
        let events = self.store.events(contact.id()).await?;
        let chain_valid = verify_chain(&events, contact.head()).chain_valid;
        let receipts = receipts_of(&events);
        Ok(Export {
            exported_at: self.now(),
            contact,
            events: events.iter().map(Event::without_receipt).collect(),
            chain_valid,
            receipts,
        })
    }

    /// Art. 18: while restricted, nothing is eligible. Answers the contact afterwards.
    pub async fn set_restriction(
        &self,
        email: &EmailAddress,
        to: Restriction,
        meta: &RequestMeta,
    ) -> Result<Contact, RequestError> {
        self.commit_existing(email, |contact, found| {
            contact.set_restriction(to, meta, found.now)
        })
        .await
    }

    /// Art. 17: every piece of personal data goes; a tombstone keyed by the contact id
    /// stays, so that an import cannot quietly re-add the person.
    pub async fn erase(
        &self,
        email: &EmailAddress,
        meta: &RequestMeta,
    ) -> Result<(), RequestError> {
        self.erase_by_id(
            &self.contact_id(email),
            Reach::Address,
            ErasureReason::Erasure,
            meta,
        )
        .await
    }

    /// Erases a contact; `reason` is kept in the tombstone. The records that forwarded
    /// the person's earlier addresses here after rectifications become records of this
    /// erasure.
    pub(super) async fn erase_by_id(
        &self,
        id: &ContactId,
        reach: Reach,
        reason: ErasureReason,
        meta: &RequestMeta,
    ) -> Result<(), RequestError> {
        let erased = self
            .commit(id, reach, |found| {
                let contact = found.contact.ok_or(RequestError::NotFound)?;
                Ok::<_, RequestError>(contact.erase(reason, meta, found.now))
            })
            .await?;
        self.erase_forwards(&erased).await?;
        Ok(())
    }

    /// What follows every erasure: the purge of the store's files is owed, and the
    /// records a rectification left at the person's earlier ids become records of it.
    pub(super) async fn erase_forwards(&self, erased: &Erased) -> Result<(), StoreError> {
        self.note_erasure();
        for id in &erased.forwarded_from {
            let moved = self
                .store
                .tombstone(id)
                .await?
                .is_some_and(|t| t.moved_to.is_some());
            if moved {
                self.commit(id, Reach::Signup, |found| {
                    Ok::<_, StoreError>(Contact::forward_erased(found.contact, &erased.tombstone))
                })
                .await?;
            }
        }
        Ok(())
    }
}
