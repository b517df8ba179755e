//! A contact's events on Redis: one string, each event framed by its length (4 bytes,
//! big-endian) and stored compact (`store/compact.rs`), oldest first. The apply script
//! appends the frames; this module reads them back.
//!
//! A string, not a list: a list of one 130-byte event takes about 380 bytes of Redis
//! memory, the same event as a string about 280. Earlier releases wrote a list (of
//! JSON or compact events); it is read as it is, and the contact's next change turns it
//! into the string.

use super::connection::{is_wrong_type, parse, Redis};
use super::keys::Shard;
use crate::domain::{ContactId, Event};
use crate::store::codec::decode;
use crate::store::StoreError;

const LENGTH_BYTES: usize = 4;

/// Every event of the contact, oldest first, from either form.
pub(super) async fn read(redis: &Redis, id: &ContactId) -> Result<Vec<Event>, StoreError> {
    let shard = Shard::of(id);
    let key = shard.events(id);
    let mut get = ::redis::cmd("GET");
    get.arg(&key);
    let mut answers = redis.query_each_tolerant(vec![(shard, get)]).await?;
    let answer = answers.pop().unwrap_or(::redis::Value::Nil);
    if is_wrong_type(&answer) {
        let mut lrange = ::redis::cmd("LRANGE");
        lrange.arg(&key).arg(0).arg(-1);
        let items: Vec<Vec<u8>> = redis.query(lrange).await?;
        return items.iter().map(|item| decode(item)).collect();
    }
    let log: Option<Vec<u8>> = parse(answer)?;
    frames(log.as_deref().unwrap_or_default())?
        .into_iter()
        .map(decode)
        .collect()
}

/// The events in a log string, in order. A log that ends inside a frame is corrupt.
pub(super) fn frames(mut log: &[u8]) -> Result<Vec<&[u8]>, StoreError> {
    let corrupt = || StoreError::Corrupt("an event log ends inside an event".into());
    let mut events = Vec::new();
    while !log.is_empty() {
        let (length, rest) = log
            .split_first_chunk::<LENGTH_BYTES>()
            .ok_or_else(corrupt)?;
        let length = usize::try_from(u32::from_be_bytes(*length)).map_err(|_| corrupt())?;
        if rest.len() < length {
            return Err(corrupt());
        }
        let (event, rest) = rest.split_at(length);
        events.push(event);
        log = rest;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_a_log_and_refuse_a_torn_one() {
        let log = [
            &[0, 0, 0, 2][..],
            b"ab",
            &[0, 0, 0, 0],
            &[0, 0, 0, 3],
            b"xyz",
        ]
        .concat();
        let events: Vec<&[u8]> = vec![b"ab", b"", b"xyz"];
        assert_eq!(frames(&log).unwrap(), events);
        assert!(frames(b"").unwrap().is_empty());
        assert!(
            frames(&log[..log.len() - 1]).is_err(),
            "cut inside an event"
        );
        assert!(frames(&[0, 0, 1]).is_err(), "cut inside a length");
    }
}
