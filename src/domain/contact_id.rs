//! Contact ids: a keyed hash of the normalized address, so that storage keys never hold it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::email::EmailAddress;

/// 16 bytes of HMAC-SHA256 is ample against collisions and keeps keys and tokens short.
const CONTACT_ID_BYTES: usize = 16;

#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ContactId(String);

#[derive(Debug, thiserror::Error)]
#[error("not a contact id")]
pub struct InvalidContactId;

impl ContactId {
    pub fn parse(raw: &str) -> Result<Self, InvalidContactId> {
        let well_formed = raw.len() == CONTACT_ID_BYTES * 2
            && raw
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if well_formed {
            Ok(Self(raw.to_string()))
        } else {
            Err(InvalidContactId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owner of `webhook.test` deliveries, which concern no contact. No address
    /// hashes to it (a 2^-128 chance), so no erasure ever removes those jobs.
    pub fn for_test_delivery() -> Self {
        Self("0".repeat(CONTACT_ID_BYTES * 2))
    }

    /// A stable number in `0..buckets` derived from the id, for spreading keys over shards.
    pub fn bucket(&self, buckets: u16) -> u16 {
        let prefix = u16::from_str_radix(&self.0[..4], 16).unwrap_or(0);
        prefix % buckets.max(1)
    }
}

impl TryFrom<String> for ContactId {
    type Error = InvalidContactId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ContactId> for String {
    fn from(id: ContactId) -> Self {
        id.0
    }
}

impl std::fmt::Display for ContactId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Derives contact ids under the index key. Keep this key as secret as the signing keys:
/// with it, anyone holding a list of addresses could find them in a store dump.
#[derive(Clone)]
pub struct ContactIndex {
    /// Keyed once; each use clones this state instead of re-keying.
    keyed: Hmac<Sha256>,
}

impl ContactIndex {
    pub fn new(key: Vec<u8>) -> Self {
        Self {
            keyed: Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts keys of any length"),
        }
    }

    /// A keyed, truncated hash of any identifier (an IP address for rate limits), so
    /// that storage keys never hold the identifier itself.
    pub fn pseudonym(&self, label: &str, value: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..CONTACT_ID_BYTES])
    }

    pub fn contact_id(&self, email: &EmailAddress) -> ContactId {
        let mut mac = self.keyed.clone();
        mac.update(email.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        ContactId(hex::encode(&digest[..CONTACT_ID_BYTES]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_address_same_id_and_no_address_in_id() {
        let index = ContactIndex::new(vec![7; 32]);
        let a = index.contact_id(&EmailAddress::parse("Jane@Example.com").unwrap());
        let b = index.contact_id(&EmailAddress::parse("jane@example.com").unwrap());
        assert_eq!(a, b);
        assert!(!a.as_str().contains("jane"));
        assert!(ContactId::parse(a.as_str()).is_ok());
    }

    #[test]
    fn different_keys_give_different_ids() {
        let email = EmailAddress::parse("jane@example.com").unwrap();
        let a = ContactIndex::new(vec![1; 32]).contact_id(&email);
        let b = ContactIndex::new(vec![2; 32]).contact_id(&email);
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_malformed_ids() {
        assert!(ContactId::parse("xyz").is_err());
        assert!(ContactId::parse(&"A".repeat(32)).is_err());
    }
}
