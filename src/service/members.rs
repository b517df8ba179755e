//! Mailchimp's list members: finding a contact by `subscriber_hash` (the MD5 of the
//! lower-cased address) and the member write, one call that the domain decides in one
//! planned change.
//!
//! The MD5 itself is never stored, since a table of common addresses reverses it; the
//! member index key is a keyed hash of it under the index key, kept for every contact
//! however it was created, and moved or dropped with its address.

use futures_util::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};

use super::{RequestError, Subscriptions};
use crate::domain::{
    Contact, ContactWrite, EmailAddress, MemberError, MemberIndexChange, MemberWrite, Membership,
    RequestMeta,
};
use crate::store::StoreError;

/// How a member request names its member: by address, or by `subscriber_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberRef {
    Address(EmailAddress),
    Hash(String),
}

/// A member write as a door hands it over: who, what, in which language a new member's
/// mail goes, and who asks.
#[derive(Clone, Debug)]
pub struct MemberRequest {
    pub member: MemberRef,
    pub write: MemberWrite,
    /// The body's address, which must be the member's (an address changes only by
    /// rectification).
    pub email_address: Option<EmailAddress>,
    pub locale: String,
    pub meta: RequestMeta,
}

/// Mailchimp's `subscriber_hash` of an address: lower-case hex MD5 of the normalized
/// (already lower-cased) address.
pub fn subscriber_hash(email: &EmailAddress) -> String {
    hex::encode(Md5::digest(email.as_str().as_bytes()))
}

/// Whether `raw` has the shape of a subscriber hash (32 hex digits).
pub fn is_subscriber_hash(raw: &str) -> bool {
    raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Subscriptions {
    /// A member of a list: the contact and its standing, or `None` when it is no member.
    pub async fn member(
        &self,
        member: &MemberRef,
        list: &crate::domain::SubscriptionTypeId,
    ) -> Result<Option<(Contact, Membership)>, StoreError> {
        let contact = match member {
            MemberRef::Address(email) => self.contact(email).await?,
            MemberRef::Hash(hash) => self.contact_by_subscriber_hash(hash).await?,
        };
        Ok(contact.and_then(|c| c.membership(list).map(|m| (c, m))))
    }

    /// `POST`, `PUT` or `PATCH` of a member: one planned change decides membership,
    /// which status field counts, and whether to record a change or ask the person to
    /// confirm. Answers the member afterwards.
    pub async fn put_member(
        &self,
        request: MemberRequest,
    ) -> Result<(Contact, Membership), RequestError> {
        let email = match (&request.member, &request.email_address) {
            (MemberRef::Address(email), _) => email.clone(),
            (MemberRef::Hash(hash), _) => match self.contact_by_subscriber_hash(hash).await? {
                Some(contact) => contact.email().clone(),
                // No member has that hash yet: it names the body's address only when it
                // is that address's hash; else it names nobody.
                None => match &request.email_address {
                    Some(email) if subscriber_hash(email).eq_ignore_ascii_case(hash) => {
                        email.clone()
                    }
                    _ => return Err(MemberError::NotAMember.into()),
                },
            },
        };
        if request
            .email_address
            .as_ref()
            .is_some_and(|body| *body != email)
        {
            return Err(MemberError::AddressChange.into());
        }
        let after = self
            .commit_by_address(&email, &request.locale, |contact, found| {
                Ok(contact.put_member(
                    &request.write,
                    found.erased,
                    &self.rules,
                    found.mail,
                    &request.meta,
                    found.now,
                )?)
            })
            .await?;
        let membership = after
            .membership(&request.write.list.id)
            .ok_or(MemberError::NotAMember)?;
        Ok((after, membership))
    }

    fn member_key(&self, hash: &str) -> String {
        self.config
            .index
            .pseudonym("subscriber-hash", &hash.to_ascii_lowercase())
    }

    /// The index entries a write needs: one for an address the contact gets, none to
    /// remove while it keeps its address.
    pub(crate) fn member_index_change(
        &self,
        before: Option<&Contact>,
        write: &ContactWrite,
    ) -> MemberIndexChange {
        let old = before.map(Contact::email);
        let new = match write {
            ContactWrite::Put(contact) => Some(contact.email()),
            ContactWrite::Delete => None,
        };
        if old == new {
            return MemberIndexChange::default();
        }
        let key = |email: &EmailAddress| self.member_key(&subscriber_hash(email));
        MemberIndexChange {
            set: new.map(key),
            remove: old.map(key),
        }
    }

    /// Many contacts by address, in the order asked: one batched read.
    pub async fn contacts(
        &self,
        emails: &[EmailAddress],
    ) -> Result<Vec<Option<Contact>>, StoreError> {
        let ids: Vec<_> = emails.iter().map(|e| self.contact_id(e)).collect();
        self.store.load_contacts(&ids).await
    }

    /// The contact whose address has this MD5, if any. The stores keep the index with
    /// each change; the address is checked anyway, because the index holds truncated
    /// keyed hashes and a contact must never be answered for another address's MD5.
    pub async fn contact_by_subscriber_hash(
        &self,
        hash: &str,
    ) -> Result<Option<Contact>, StoreError> {
        if !is_subscriber_hash(hash) {
            return Ok(None);
        }
        let Some(id) = self.store.find_member(&self.member_key(hash)).await? else {
            return Ok(None);
        };
        let contact = self.store.load_contact(&id).await?;
        Ok(contact.filter(|c| subscriber_hash(c.email()).eq_ignore_ascii_case(hash)))
    }
}

/// What a backfill of the member index did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReindexReport {
    /// Contacts given their entry (again: writing one that exists changes nothing).
    pub indexed: u64,
    /// Contacts that changed or went while the walk ran, and kept changing when read
    /// again; a later run gives them their entry.
    pub moved_on: u64,
}

/// Contacts read and indexed at once in a backfill.
const REINDEX_PAGE: usize = 500;
/// How often a contact that changed under the backfill is read again.
const REINDEX_ATTEMPTS: usize = 3;

impl Subscriptions {
    /// Gives every stored contact its member index entry. Stores written before the
    /// index existed (the Mailchimp API came later) have none, so their members would
    /// not be found by hash. Safe to run while the service runs, and again: an entry is
    /// written only while its contact still has the address it was computed from.
    pub async fn reindex_members(&self) -> Result<ReindexReport, StoreError> {
        let mut report = ReindexReport::default();
        let mut cursor = None;
        loop {
            let page = self.store.contact_ids_page(cursor, REINDEX_PAGE).await?;
            let contacts = self.store.load_contacts(&page.ids).await?;
            let outcomes = futures_util::stream::iter(contacts.into_iter().flatten())
                .map(|contact| self.index_member(contact))
                .buffer_unordered(32)
                .try_collect::<Vec<Indexed>>()
                .await?;
            for outcome in outcomes {
                match outcome {
                    Indexed::Written => report.indexed += 1,
                    Indexed::MovedOn => report.moved_on += 1,
                    Indexed::Erased => {}
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(report),
            }
        }
    }

    /// Writes one contact's entry, reading it again when it changed in between; a
    /// contact erased in between needs none.
    async fn index_member(&self, mut contact: Contact) -> Result<Indexed, StoreError> {
        for _ in 0..REINDEX_ATTEMPTS {
            let key = self.member_key(&subscriber_hash(contact.email()));
            if self
                .store
                .index_member(contact.id(), contact.version(), &key)
                .await?
            {
                return Ok(Indexed::Written);
            }
            match self.store.load_contact(contact.id()).await? {
                Some(again) => contact = again,
                None => return Ok(Indexed::Erased),
            }
        }
        Ok(Indexed::MovedOn)
    }
}

/// What became of one contact in a backfill.
enum Indexed {
    Written,
    Erased,
    MovedOn,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_mailchimps_md5_of_the_lower_cased_address() {
        let email = EmailAddress::parse("Urist.McVankab@FreddieMacs.com").unwrap();
        // Python: hashlib.md5(b"urist.mcvankab@freddiemacs.com").hexdigest()
        assert_eq!(subscriber_hash(&email), "ecbefbfccf8d57d3471118396b791bff");
        assert!(is_subscriber_hash("ECBEFBFCCF8D57D3471118396B791BFF"));
        assert!(!is_subscriber_hash("urist@example.com"));
    }
}
