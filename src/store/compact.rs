//! The compact value format: a value's JSON, compressed with zstd against a fixed
//! dictionary of typical stored values.
//!
//! Why JSON underneath: it keeps every serde rule of the domain types (defaults for
//! fields added later, skipped empty fields), so old values keep decoding and the hash
//! chain, computed over canonical JSON, does not depend on how a value is stored.
//! Why a dictionary: contacts and events are a few hundred bytes each, too small for a
//! compressor to learn their field names; against a dictionary that already holds them,
//! a contact shrinks from about 390 to about 140 bytes.
//!
//! A compact value starts with [`FORMAT_V1`], a byte JSON never starts with, so a
//! reader tells it from the plain JSON that earlier versions wrote. The dictionary is
//! part of the format: changing a single byte of it would make every stored value
//! unreadable, so a better dictionary needs a new format byte, with this one kept for
//! reading.

use std::cell::RefCell;
use std::sync::LazyLock;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// The first byte of a value in format 1 (zstd with `compact/dictionary-v1.json`).
pub const FORMAT_V1: u8 = 0x01;

/// Typical contacts and events with made-up values. zstd reads a dictionary that does
/// not start with its magic number as raw content: text to copy matches from.
const DICTIONARY_V1: &[u8] = include_bytes!("compact/dictionary-v1.json");

/// Level 3 is zstd's default: on values this small, higher levels save almost nothing
/// and cost several times the CPU.
const LEVEL: i32 = 3;

/// No stored value comes near this; a frame claiming more is corrupt, and is refused
/// before anything is allocated for it.
const MAX_VALUE_BYTES: u64 = 16 * 1024 * 1024;

static ENCODER_DICTIONARY: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(DICTIONARY_V1, LEVEL));
static DECODER_DICTIONARY: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(DICTIONARY_V1));

thread_local! {
    // A zstd context allocates its tables once; one per thread keeps that off each call.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

#[derive(Debug, thiserror::Error)]
#[error("compact value: {0}")]
pub struct CompactError(String);

/// `json` in format 1.
pub fn pack(json: &[u8]) -> Result<Vec<u8>, CompactError> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressor = match slot.as_mut() {
            Some(compressor) => compressor,
            None => slot.insert(
                Compressor::with_prepared_dictionary(&ENCODER_DICTIONARY)
                    .and_then(|mut compressor| {
                        // Raw-content dictionaries have no id, and a checksum would only
                        // repeat what Redis and redb already guard.
                        compressor.include_checksum(false)?;
                        compressor.include_dictid(false)?;
                        compressor.include_contentsize(true)?;
                        Ok(compressor)
                    })
                    .map_err(|e| CompactError(e.to_string()))?,
            ),
        };
        let frame = compressor
            .compress(json)
            .map_err(|e| CompactError(e.to_string()))?;
        let mut value = Vec::with_capacity(frame.len() + 1);
        value.push(FORMAT_V1);
        value.extend_from_slice(&frame);
        Ok(value)
    })
}

/// The JSON inside a value written by [`pack`]: `value` without its format byte.
pub fn unpack(frame: &[u8]) -> Result<Vec<u8>, CompactError> {
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .filter(|size| *size <= MAX_VALUE_BYTES)
        .ok_or_else(|| CompactError("the frame has no valid size".into()))?;
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decompressor = match slot.as_mut() {
            Some(decompressor) => decompressor,
            None => slot.insert(
                Decompressor::with_prepared_dictionary(&DECODER_DICTIONARY)
                    .map_err(|e| CompactError(e.to_string()))?,
            ),
        };
        decompressor
            .decompress(frame, size as usize)
            .map_err(|e| CompactError(e.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTACT: &str = r#"{"id":"a500e50f51a8f62139fa880184abe5a7","email":"u604@bench.example","locale":"en","created_at":"2026-12-02T05:40:58.533960639Z","subscriptions":{"blog-updates":{"status":"opted_in","since":"2026-12-02T05:40:58.533960639Z","lawful_basis":"consent","source":"import"}},"pending":[],"head":{"events":1,"hash":"9f64065204246d618e970fdd193704f3286ff4b0e1042d8975d8f7bb76028acb"},"version":1}"#;

    #[test]
    fn a_value_comes_back_byte_for_byte_and_a_contact_shrinks_to_under_half() {
        let packed = pack(CONTACT.as_bytes()).expect("packs");
        assert_eq!(packed[0], FORMAT_V1);
        assert!(
            packed.len() * 2 < CONTACT.len(),
            "{} bytes packed from {}",
            packed.len(),
            CONTACT.len()
        );
        assert_eq!(unpack(&packed[1..]).expect("unpacks"), CONTACT.as_bytes());
    }

    #[test]
    fn the_dictionary_is_frozen() {
        // Every stored value depends on these exact bytes: see the module comment.
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(DICTIONARY_V1));
        assert_eq!(
            digest, "3ca8c32372a025b88c3c4fe7332df15dd6b58728dbdfca95449c338dd88203d1",
            "dictionary-v1.json changed; add a new format byte instead"
        );
    }

    #[test]
    fn damaged_frames_are_errors_not_panics() {
        let packed = pack(CONTACT.as_bytes()).expect("packs");
        for cut in [1, 5, packed.len() / 2, packed.len() - 1] {
            assert!(unpack(&packed[1..cut]).is_err(), "cut at {cut}");
        }
        assert!(unpack(b"").is_err());
        assert!(unpack(b"not zstd at all").is_err());
        let mut flipped = packed[1..].to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert_ne!(unpack(&flipped).ok().as_deref(), Some(CONTACT.as_bytes()));
    }
}
