//! The member index: finding a contact by Mailchimp's `subscriber_hash`, the MD5 of the
//! lower-cased address. The MD5 itself is never stored, since a table of common
//! addresses reverses it; the index key is a keyed hash of it under the index key, kept
//! for every contact however it was created, and moved or dropped with its address.

use md5::{Digest, Md5};

use super::Subscriptions;
use crate::domain::{Contact, ContactWrite, EmailAddress, MemberIndexChange};
use crate::store::StoreError;

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
        let old = before.map(|c| &c.email);
        let new = match write {
            ContactWrite::Put(contact) => Some(&contact.email),
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
        Ok(contact.filter(|c| subscriber_hash(&c.email).eq_ignore_ascii_case(hash)))
    }
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
