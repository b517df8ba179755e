//! How both stores write values down: JSON bodies (plain, or in the compact format of
//! [`super::compact`]), times as milliseconds since the epoch, the expiry-index member of a pending confirmation, and the fixed window of a
//! rate-limit count. Kept in one place so that the two backends cannot drift apart.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::compact::{self, Format, Literals};
use super::StoreError;
use crate::domain::{Contact, ContactId, Event, OutboxJob};

/// Reads a value in either format: plain JSON, or compact (its first byte says which).
/// A stored value that does not decode is a bug or tampering, never the caller's fault.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(e.to_string());
    match bytes
        .split_first()
        .and_then(|(first, frame)| Some((Format::of_byte(*first)?, frame)))
    {
        Some((format, frame)) => {
            let json = compact::unpack_as(format, frame).map_err(|e| corrupt(&e))?;
            serde_json::from_slice(&json).map_err(|e| corrupt(&e))
        }
        None => serde_json::from_slice(bytes).map_err(|e| corrupt(&e)),
    }
}

/// Plain JSON: for values that live briefly (jobs) or are few (endpoint state).
pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A contact in the compact format, where memory is what a store costs; its literals
/// raw, since every check reads it (see [`Literals::Raw`]).
pub fn encode_contact(contact: &Contact) -> Result<Vec<u8>, StoreError> {
    compact::pack_as(Format::V1, Literals::Raw, &encode(contact)?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// An event in the compact format: one that keeps a consent receipt against the
/// dictionary that knows receipts (format 2), any other in format 1.
pub fn encode_event(event: &Event) -> Result<Vec<u8>, StoreError> {
    let format = if event.receipt.is_some() {
        Format::V2
    } else {
        Format::V1
    };
    compact::pack_as(format, Literals::Coded, &encode(event)?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Milliseconds since the epoch; times before it (never written) count as the epoch, so
/// that scores and index keys are never negative.
pub fn millis(at: DateTime<Utc>) -> u64 {
    at.timestamp_millis().max(0) as u64
}

/// The order dead letters are listed in by both stores: oldest job first, by its
/// creation time to the millisecond (a Redis score), then by job id.
pub fn dead_letter_order(job: &OutboxJob) -> (u64, Uuid) {
    (millis(job.created_at), job.id)
}

/// The member of the expiry index for one pending confirmation: `<contact id>:<pending id>`.
/// The contact id comes first so that one contact's entries share a prefix.
pub fn pending_member(contact: &ContactId, pending: Uuid) -> String {
    format!("{}{pending}", pending_members_prefix(contact))
}

/// What every expiry-index member of `contact` starts with.
pub fn pending_members_prefix(contact: &ContactId) -> String {
    format!("{contact}:")
}

/// Reads a member written by [`pending_member`].
pub fn parse_pending_member(member: &str) -> Result<(ContactId, Uuid), StoreError> {
    member
        .split_once(':')
        .and_then(|(cid, pending)| {
            Some((ContactId::parse(cid).ok()?, Uuid::parse_str(pending).ok()?))
        })
        .ok_or_else(|| {
            StoreError::Corrupt("an expiry entry is not <contact id>:<pending id>".into())
        })
}

/// Reads a contact id kept as an index member (the retention index).
pub fn parse_contact_member(member: &str) -> Result<ContactId, StoreError> {
    ContactId::parse(member)
        .map_err(|_| StoreError::Corrupt("a retention entry is not a contact id".into()))
}

/// The number of the fixed window of `window_secs` that `now` falls in. A count of hits
/// starts over when this number changes; a window of 0 counts as one second.
pub fn fixed_window(now: DateTime<Utc>, window_secs: u64) -> u64 {
    (now.timestamp().max(0) as u64) / window_secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_reads_back_from_both_formats() {
        let value = serde_json::json!({"id": "x", "seq": 3});
        let compact = compact::pack(&encode(&value).expect("encodes")).expect("packs");
        assert_ne!(compact, encode(&value).expect("encodes"));
        assert_eq!(
            decode::<serde_json::Value>(&compact).expect("compact"),
            value
        );
        assert_eq!(
            decode::<serde_json::Value>(br#"{"id":"x","seq":3}"#).expect("plain JSON"),
            value
        );
        assert!(matches!(
            decode::<serde_json::Value>(&[compact::FORMAT_V1, 1, 2, 3]),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn an_event_that_keeps_a_receipt_is_packed_against_the_receipt_dictionary() {
        use crate::domain::{EventDraft, EventKind, RequestMeta, Source, StoredReceipt};
        let draft = EventDraft::new(
            EventKind::ConsentRenewed,
            Source::RenewalLink,
            &RequestMeta::default(),
        );
        let plain = Event::from_draft(draft, 1, Utc::now(), "00".repeat(32));
        let mut receipted = plain.clone();
        receipted.receipt =
            StoredReceipt::from_compact("eyJhbGciOiJFZERTQSJ9.eyJhIjoxfQ.c2lnbmF0dXJl");
        for (event, format) in [(plain, compact::FORMAT_V1), (receipted, compact::FORMAT_V2)] {
            let bytes = encode_event(&event).expect("encodes");
            assert_eq!(bytes[0], format);
            assert_eq!(decode::<Event>(&bytes).expect("decodes"), event);
        }
    }

    #[test]
    fn a_pending_member_reads_back_and_a_malformed_one_is_corrupt() {
        let contact = ContactId::parse("0011aabbccddeeff0011aabbccddeeff").expect("a valid id");
        let pending = Uuid::now_v7();
        let member = pending_member(&contact, pending);
        assert_eq!(
            parse_pending_member(&member).expect("well formed"),
            (contact, pending)
        );
        assert!(matches!(
            parse_pending_member("no-colon-here"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn hits_in_one_window_share_its_number_and_the_next_starts_a_new_one() {
        let start = DateTime::from_timestamp(600, 0).expect("a valid time");
        let last = start + chrono::Duration::seconds(59);
        let next = start + chrono::Duration::seconds(60);
        assert_eq!(fixed_window(start, 60), fixed_window(last, 60));
        assert_eq!(fixed_window(next, 60), fixed_window(start, 60) + 1);
        assert_eq!(fixed_window(start, 0), 600);
    }
}
