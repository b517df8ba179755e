//! The dump format, version 1: zstd-compressed JSON lines. The first line is the
//! [`Header`], the last the [`Trailer`] (counts per kind and the SHA-256 of every line
//! before it); between them one line per record, each an object whose `kind` names it.
//!
//! Adding a kind of record: a variant of [`Record`] (its name in snake case is its
//! `kind`), its line type, where [`super::dump`] writes it and [`super::restore`] reads
//! it. A reader that meets a kind it does not know refuses the dump, naming the kind and
//! the format version, rather than drop what it cannot read; and a record with fields it
//! does not know is refused the same way.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::BackupError;
use crate::domain::{Contact, ContactId, ContactIndex, Event, OutboxJob, Tombstone};
use crate::store::{Consistency, EndpointState, StoreKind};

/// The `format` of every header.
pub const FORMAT: &str = "optin-dump";
/// The version this release writes and the highest it reads.
pub const VERSION: u32 = 1;

/// The longest line a reader accepts: far above any contact (a contact with ten
/// thousand events is a few MB), and a bound on what a damaged dump can make it hold.
const MAX_LINE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// When the dump began: every change before it is in the dump.
    pub created_at: DateTime<Utc>,
    pub source: StoreKind,
    pub consistency: Consistency,
    /// A keyed hash of a fixed text under the index key (see [`index_fingerprint`]): a
    /// restore under another key would find no contact by its address.
    pub index_key_fingerprint: String,
    /// The release that wrote the dump.
    pub optin_version: String,
}

/// One event as stored, with the SHA-256 of its canonical JSON: the link its successor
/// (or the contact's chain head) holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashedEvent {
    pub hash: String,
    pub event: Event,
}

/// A contact as stored (statuses, pending confirmations, a signup held in quarantine,
/// restriction, reachability, block, locale, address, version, chain head) with its
/// events, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactLine {
    pub contact: Contact,
    pub events: Vec<HashedEvent>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TombstoneLine {
    pub contact_id: ContactId,
    pub tombstone: Tombstone,
}

/// The mails that others' requests caused for one contact, and when the allowance
/// expires (the newest of them plus the window).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailAllowanceLine {
    pub contact_id: ContactId,
    pub taken_at: Vec<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStanding {
    Queued,
    Dead,
}

/// An outbox job (its attempts and last error inside), queued with its due time or dead.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobLine {
    pub state: JobStanding,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    pub job: OutboxJob,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointStateLine {
    pub endpoint: String,
    pub state: EndpointState,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trailer {
    /// Records per kind, header and trailer not counted.
    pub counts: BTreeMap<String, u64>,
    /// Hex SHA-256 of every byte before the trailer line (the lines with their `\n`).
    pub sha256: String,
}

/// One line of a dump.
// One line at a time is read or written, never kept in bulk: boxing the large variants
// would only add an allocation per line.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Header(Header),
    Contact(ContactLine),
    Tombstone(TombstoneLine),
    MailAllowance(MailAllowanceLine),
    Job(JobLine),
    EndpointState(EndpointStateLine),
    Trailer(Trailer),
}

/// Every `kind` of version 1, in the order a dump holds them.
pub const KINDS: [&str; 7] = [
    "header",
    "contact",
    "tombstone",
    "mail_allowance",
    "job",
    "endpoint_state",
    "trailer",
];

impl Record {
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Header(_) => "header",
            Record::Contact(_) => "contact",
            Record::Tombstone(_) => "tombstone",
            Record::MailAllowance(_) => "mail_allowance",
            Record::Job(_) => "job",
            Record::EndpointState(_) => "endpoint_state",
            Record::Trailer(_) => "trailer",
        }
    }
}

/// The fingerprint of an index key: a keyed hash of a fixed text, which tells two keys
/// apart and reveals nothing of either.
pub fn index_fingerprint(index: &ContactIndex) -> String {
    index.pseudonym("optin-dump", "index key fingerprint")
}

/// Writes records as lines into `out` (the compressor), hashing and counting them.
pub struct LineWriter<W: Write> {
    out: W,
    digest: Sha256,
    counts: BTreeMap<String, u64>,
    line: Vec<u8>,
}

impl<W: Write> LineWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            digest: Sha256::new(),
            counts: BTreeMap::new(),
            line: Vec::new(),
        }
    }

    pub fn write(&mut self, record: &Record) -> Result<(), BackupError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record)
            .map_err(|e| BackupError::Write(e.to_string()))?;
        self.line.push(b'\n');
        self.digest.update(&self.line);
        if !matches!(record, Record::Header(_)) {
            *self.counts.entry(record.kind().to_string()).or_default() += 1;
        }
        self.out
            .write_all(&self.line)
            .map_err(|e| BackupError::Write(e.to_string()))
    }

    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    /// Writes the trailer and hands back the output, to be finished by its owner.
    pub fn finish(mut self) -> Result<(W, Trailer), BackupError> {
        let trailer = Trailer {
            counts: self.counts.clone(),
            sha256: hex::encode(self.digest.clone().finalize()),
        };
        let line = serde_json::to_vec(&Record::Trailer(trailer.clone()))
            .map_err(|e| BackupError::Write(e.to_string()))?;
        self.out
            .write_all(&line)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|e| BackupError::Write(e.to_string()))?;
        Ok((self.out, trailer))
    }
}

/// Reads a dump's lines back: checks the header, refuses unknown kinds and fields, and
/// at the end checks the trailer's counts and hash. Records come one at a time, so a
/// dump of any size is read in bounded memory.
pub struct LineReader<R: BufRead> {
    input: R,
    header: Header,
    digest: Sha256,
    counts: BTreeMap<String, u64>,
    line_number: u64,
    line: Vec<u8>,
    done: bool,
}

impl<R: BufRead> LineReader<R> {
    /// Reads the header line; refuses anything that is not a dump this release reads.
    pub fn open(mut input: R) -> Result<Self, BackupError> {
        let mut line = Vec::new();
        read_line(&mut input, &mut line)?;
        if line.is_empty() {
            return Err(BackupError::NotADump("it is empty".into()));
        }
        let value: serde_json::Value = serde_json::from_slice(&line)
            .map_err(|_| BackupError::NotADump("its first line is not JSON".into()))?;
        if value.get("kind").and_then(|k| k.as_str()) != Some("header")
            || value.get("format").and_then(|f| f.as_str()) != Some(FORMAT)
        {
            return Err(BackupError::NotADump(
                "its first line is not an optin dump header".into(),
            ));
        }
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if version != u64::from(VERSION) {
            return Err(BackupError::Version(version));
        }
        let Record::Header(header) = parse_record(value, 1)? else {
            return Err(BackupError::NotADump("no header".into()));
        };
        let mut digest = Sha256::new();
        digest.update(&line);
        Ok(Self {
            input,
            header,
            digest,
            counts: BTreeMap::new(),
            line_number: 1,
            line,
            done: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next record; `None` once the trailer was read and matched everything before it.
    pub fn next_record(&mut self) -> Result<Option<Record>, BackupError> {
        if self.done {
            return Ok(None);
        }
        read_line(&mut self.input, &mut self.line)?;
        self.line_number += 1;
        if self.line.is_empty() {
            return Err(BackupError::Incomplete);
        }
        let value: serde_json::Value =
            serde_json::from_slice(&self.line).map_err(|e| BackupError::Malformed {
                line: self.line_number,
                reason: e.to_string(),
            })?;
        let record = parse_record(value, self.line_number)?;
        match record {
            Record::Trailer(trailer) => {
                self.check_trailer(&trailer)?;
                let mut rest = Vec::new();
                read_line(&mut self.input, &mut rest)?;
                if !rest.is_empty() {
                    return Err(BackupError::Malformed {
                        line: self.line_number + 1,
                        reason: "there is more after the trailer".into(),
                    });
                }
                self.done = true;
                Ok(None)
            }
            Record::Header(_) => Err(BackupError::Malformed {
                line: self.line_number,
                reason: "a second header".into(),
            }),
            record => {
                self.digest.update(&self.line);
                *self.counts.entry(record.kind().to_string()).or_default() += 1;
                Ok(Some(record))
            }
        }
    }

    fn check_trailer(&self, trailer: &Trailer) -> Result<(), BackupError> {
        let sha256 = hex::encode(self.digest.clone().finalize());
        if trailer.sha256 != sha256 {
            return Err(BackupError::Trailer(
                "the SHA-256 of the lines does not match the trailer's".into(),
            ));
        }
        if trailer.counts != self.counts {
            return Err(BackupError::Trailer(format!(
                "the trailer counts {:?}, the dump holds {:?}",
                trailer.counts, self.counts
            )));
        }
        Ok(())
    }
}

/// One line into `line` (with its `\n`), at most [`MAX_LINE_BYTES`]; empty at the end.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> Result<(), BackupError> {
    line.clear();
    let read = std::io::Read::take(&mut *input, MAX_LINE_BYTES)
        .read_until(b'\n', line)
        .map_err(|e| BackupError::Read(e.to_string()))?;
    if read > 0 && line.last() != Some(&b'\n') {
        return Err(if read as u64 >= MAX_LINE_BYTES {
            BackupError::Malformed {
                line: 0,
                reason: format!("a line is longer than {MAX_LINE_BYTES} bytes"),
            }
        } else {
            BackupError::Incomplete
        });
    }
    Ok(())
}

/// A line's record, refusing a kind this release does not know and any field that its
/// type would not keep: nothing in a dump is ever dropped unnoticed.
fn parse_record(value: serde_json::Value, line: u64) -> Result<Record, BackupError> {
    let kind =
        value
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or_else(|| BackupError::Malformed {
                line,
                reason: "a line without a `kind`".into(),
            })?;
    if !KINDS.contains(&kind) {
        return Err(BackupError::UnknownKind {
            line,
            kind: kind.to_string(),
        });
    }
    let record: Record =
        serde_json::from_value(value.clone()).map_err(|e| BackupError::Malformed {
            line,
            reason: e.to_string(),
        })?;
    let again = serde_json::to_value(&record).map_err(|e| BackupError::Malformed {
        line,
        reason: e.to_string(),
    })?;
    if again != value {
        return Err(BackupError::Malformed {
            line,
            reason: format!(
                "a {} record holds values this release would not keep as they are",
                record.kind()
            ),
        });
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT.into(),
            version: VERSION,
            created_at: DateTime::from_timestamp(1_700_000_000, 0).expect("a time"),
            source: StoreKind::Embedded,
            consistency: Consistency::Snapshot,
            index_key_fingerprint: "ab".into(),
            optin_version: "0.1.0".into(),
        }
    }

    fn dump(extra: &[&str]) -> Vec<u8> {
        let mut writer = LineWriter::new(Vec::new());
        writer.write(&Record::Header(header())).expect("writes");
        writer
            .write(&Record::Tombstone(TombstoneLine {
                contact_id: ContactId::parse("00112233445566778899aabbccddeeff").expect("id"),
                tombstone: Tombstone {
                    erased_at: DateTime::from_timestamp(1_700_000_100, 0).expect("a time"),
                    reason: crate::domain::ErasureReason::default(),
                    request_id: None,
                    moved_to: None,
                },
            }))
            .expect("writes");
        let (mut out, _) = writer.finish().expect("finishes");
        for line in extra {
            out.extend_from_slice(line.as_bytes());
        }
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Record>, BackupError> {
        let mut reader = LineReader::open(bytes)?;
        let mut records = Vec::new();
        while let Some(record) = reader.next_record()? {
            records.push(record);
        }
        Ok(records)
    }

    #[test]
    fn a_dump_reads_back_and_its_trailer_matches() {
        let records = read_all(&dump(&[])).expect("reads");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].kind(), "tombstone");
    }

    #[test]
    fn an_unknown_kind_is_refused_by_name_with_the_version() {
        let bytes = dump(&[]);
        let text = String::from_utf8(bytes).expect("utf-8");
        let mut lines: Vec<&str> = text.lines().collect();
        lines.insert(1, r#"{"kind":"quarantined_signup","id":"x"}"#);
        let error = read_all((lines.join("\n") + "\n").as_bytes()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("quarantined_signup"), "{message}");
        assert!(message.contains("version 1"), "{message}");
    }

    #[test]
    fn an_unknown_field_is_refused_not_dropped() {
        let text = String::from_utf8(dump(&[])).expect("utf-8");
        let changed = text.replacen(r#""request_id":"#, r#""later_field":1,"request_id":"#, 1);
        let changed = if changed == text {
            text.replacen(
                r#""reason":"erasure""#,
                r#""reason":"erasure","later_field":1"#,
                1,
            )
        } else {
            changed
        };
        assert_ne!(changed, text);
        assert!(matches!(
            read_all(changed.as_bytes()),
            Err(BackupError::Malformed { line: 2, .. })
        ));
    }

    #[test]
    fn a_changed_byte_a_missing_trailer_or_extra_lines_are_refused() {
        let bytes = dump(&[]);
        let mut changed = bytes.clone();
        let at = bytes.iter().position(|b| *b == b'T').expect("a time") + 1;
        changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
        assert!(matches!(read_all(&changed), Err(BackupError::Trailer(_))));
        let cut = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .expect("lines");
        assert!(matches!(
            read_all(&bytes[..=cut]),
            Err(BackupError::Incomplete)
        ));
        assert!(read_all(&dump(&["{}\n"])).is_err());
    }

    #[test]
    fn a_newer_version_and_other_files_are_not_read() {
        let text = String::from_utf8(dump(&[])).expect("utf-8");
        let newer = text.replacen(r#""version":1"#, r#""version":2"#, 1);
        assert!(matches!(
            read_all(newer.as_bytes()),
            Err(BackupError::Version(2))
        ));
        assert!(matches!(
            read_all(b"hello\n"),
            Err(BackupError::NotADump(_))
        ));
    }
}
