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
//! A compact value starts with its format byte, one JSON never starts with, so a reader
//! tells it from the plain JSON that earlier versions wrote, and knows its dictionary:
//! - [`FORMAT_V1`]: `compact/dictionary-v1.json`, typical contacts and events;
//! - [`FORMAT_V2`]: `compact/dictionary-v2.json`, the same followed by events that keep
//!   a consent receipt. A receipt is 2 to 3 KB of JSON-LD that is nearly the same every
//!   time; against this dictionary an event with its receipt packs to about a fifth of
//!   what it does against the first. Only such events are written in it.
//!
//! A dictionary is part of its format: changing a single byte of it would make every
//! value stored in that format unreadable, so a better dictionary needs a new format
//! byte, with the old ones kept for reading.

use std::cell::RefCell;
use std::sync::LazyLock;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};
use zstd::zstd_safe::{CParameter, ParamSwitch};

/// The first byte of a value in format 1 (zstd with `compact/dictionary-v1.json`).
pub const FORMAT_V1: u8 = 0x01;
/// The first byte of a value in format 2 (zstd with `compact/dictionary-v2.json`).
pub const FORMAT_V2: u8 = 0x02;

/// Typical contacts and events with made-up values. zstd reads a dictionary that does
/// not start with its magic number as raw content: text to copy matches from.
const DICTIONARY_V1: &[u8] = include_bytes!("compact/dictionary-v1.json");
/// Format 1's dictionary, then events with their receipts, with made-up values; the
/// receipts last, nearest to what is packed, as the content most values copy from.
const DICTIONARY_V2: &[u8] = include_bytes!("compact/dictionary-v2.json");

/// Level 3 is zstd's default: on values this small, higher levels save almost nothing
/// and cost several times the CPU.
const LEVEL: i32 = 3;
/// An event with its receipt is ten times larger, written once per opt-in, and level 9
/// packs it a tenth smaller again for some tens of microseconds.
const RECEIPT_LEVEL: i32 = 9;

/// No stored value comes near this; a frame claiming more is corrupt, and is refused
/// before anything is allocated for it.
const MAX_VALUE_BYTES: u64 = 16 * 1024 * 1024;

/// The formats, each with its dictionary prepared once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    V1,
    V2,
}

static ENCODER_DICTIONARIES: LazyLock<[EncoderDictionary<'static>; 2]> = LazyLock::new(|| {
    [
        EncoderDictionary::copy(DICTIONARY_V1, LEVEL),
        EncoderDictionary::copy(DICTIONARY_V2, RECEIPT_LEVEL),
    ]
});
static DECODER_DICTIONARIES: LazyLock<[DecoderDictionary<'static>; 2]> = LazyLock::new(|| {
    [
        DecoderDictionary::copy(DICTIONARY_V1),
        DecoderDictionary::copy(DICTIONARY_V2),
    ]
});

impl Format {
    /// The format a value's first byte names.
    pub fn of_byte(byte: u8) -> Option<Self> {
        match byte {
            FORMAT_V1 => Some(Format::V1),
            FORMAT_V2 => Some(Format::V2),
            _ => None,
        }
    }

    fn byte(self) -> u8 {
        match self {
            Format::V1 => FORMAT_V1,
            Format::V2 => FORMAT_V2,
        }
    }

    fn index(self) -> usize {
        match self {
            Format::V1 => 0,
            Format::V2 => 1,
        }
    }
}

/// How a value's literals (what the dictionary does not hold: ids, hashes, times, the
/// address) are packed. Either way the value is a standard zstd frame of its format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Literals {
    /// Huffman-coded: the smallest value. For values written once and seldom read (events).
    Coded,
    /// Stored as they are: for a value read on every check (a contact). A contact is about
    /// a quarter larger (143 against 180 bytes) and unpacks five times quicker (1.6 µs
    /// against 0.3 µs), since a frame this small spends most of its unpacking on reading
    /// its own Huffman table.
    Raw,
}

thread_local! {
    // A zstd context allocates its tables once; one per thread, format and packing of the
    // literals keeps that off each call.
    static COMPRESSORS: RefCell<[Option<Compressor<'static>>; 4]> = const { RefCell::new([None, None, None, None]) };
    static DECOMPRESSORS: RefCell<[Option<Decompressor<'static>>; 2]> = const { RefCell::new([None, None]) };
}

#[derive(Debug, thiserror::Error)]
#[error("compact value: {0}")]
pub struct CompactError(String);

/// `json` in format 1, its literals coded.
pub fn pack(json: &[u8]) -> Result<Vec<u8>, CompactError> {
    pack_as(Format::V1, Literals::Coded, json)
}

/// `json` in `format`, its format byte first.
pub fn pack_as(format: Format, literals: Literals, json: &[u8]) -> Result<Vec<u8>, CompactError> {
    let slot_index = format.index() * 2 + usize::from(literals == Literals::Raw);
    COMPRESSORS.with(|cell| {
        let mut slots = cell.borrow_mut();
        let slot = &mut slots[slot_index];
        let compressor = match slot.as_mut() {
            Some(compressor) => compressor,
            None => slot.insert(
                Compressor::with_prepared_dictionary(&ENCODER_DICTIONARIES[format.index()])
                    .and_then(|mut compressor| {
                        // Raw-content dictionaries have no id, and a checksum would only
                        // repeat what Redis and redb already guard.
                        compressor.include_checksum(false)?;
                        compressor.include_dictid(false)?;
                        compressor.include_contentsize(true)?;
                        if literals == Literals::Raw {
                            compressor.set_parameter(CParameter::LiteralCompressionMode(
                                ParamSwitch::Disable,
                            ))?;
                        }
                        Ok(compressor)
                    })
                    .map_err(|e| CompactError(e.to_string()))?,
            ),
        };
        let frame = compressor
            .compress(json)
            .map_err(|e| CompactError(e.to_string()))?;
        let mut value = Vec::with_capacity(frame.len() + 1);
        value.push(format.byte());
        value.extend_from_slice(&frame);
        Ok(value)
    })
}

/// The JSON inside a value written by [`pack`]: `value` without its format byte.
pub fn unpack(frame: &[u8]) -> Result<Vec<u8>, CompactError> {
    unpack_as(Format::V1, frame)
}

/// The JSON inside a value of `format`, given without its format byte.
pub fn unpack_as(format: Format, frame: &[u8]) -> Result<Vec<u8>, CompactError> {
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .filter(|size| *size <= MAX_VALUE_BYTES)
        .ok_or_else(|| CompactError("the frame has no valid size".into()))?;
    DECOMPRESSORS.with(|cell| {
        let mut slots = cell.borrow_mut();
        let slot = &mut slots[format.index()];
        let decompressor = match slot.as_mut() {
            Some(decompressor) => decompressor,
            None => slot.insert(
                Decompressor::with_prepared_dictionary(&DECODER_DICTIONARIES[format.index()])
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
    fn a_contact_with_raw_literals_comes_back_and_is_still_under_half() {
        let packed = pack_as(Format::V1, Literals::Raw, CONTACT.as_bytes()).expect("packs");
        assert_eq!(packed[0], FORMAT_V1);
        assert!(packed.len() * 2 < CONTACT.len(), "{} bytes", packed.len());
        assert_eq!(unpack(&packed[1..]).expect("unpacks"), CONTACT.as_bytes());
        // The parameter took: the literals are in the frame as they are, not coded.
        let holds =
            |packed: &[u8], text: &str| packed.windows(text.len()).any(|w| w == text.as_bytes());
        assert!(holds(&packed, "a500e50f51a8f62139fa880184abe5a7"));
        let coded = pack(CONTACT.as_bytes()).expect("packs");
        assert!(!holds(&coded, "a500e50f51a8f62139fa880184abe5a7"));
        assert!(coded.len() < packed.len());
    }

    #[test]
    fn the_dictionaries_are_frozen() {
        // Every stored value depends on these exact bytes: see the module comment.
        use sha2::Digest;
        let digest = |bytes: &[u8]| hex::encode(sha2::Sha256::digest(bytes));
        assert_eq!(
            digest(DICTIONARY_V1),
            "3ca8c32372a025b88c3c4fe7332df15dd6b58728dbdfca95449c338dd88203d1",
            "dictionary-v1.json changed; add a new format byte instead"
        );
        assert_eq!(
            digest(DICTIONARY_V2),
            "c779af829d99ff10fe84b35b3535334ad23b9f6b67bcb77ceb496588359673a9",
            "dictionary-v2.json changed; add a new format byte instead"
        );
    }

    #[test]
    fn a_value_in_format_2_comes_back_and_only_format_2_reads_it() {
        let packed = pack_as(Format::V2, Literals::Coded, CONTACT.as_bytes()).expect("packs");
        assert_eq!(Format::of_byte(packed[0]), Some(Format::V2));
        assert_eq!(
            unpack_as(Format::V2, &packed[1..]).expect("unpacks"),
            CONTACT.as_bytes()
        );
        assert_ne!(
            unpack_as(Format::V1, &packed[1..]).ok().as_deref(),
            Some(CONTACT.as_bytes())
        );
        assert_eq!(Format::of_byte(b'{'), None);
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
