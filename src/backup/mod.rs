//! Backups, restores, copies between stores and offline chain checks, on one dump format.
//!
//! - [`format`]: the dump format (version 1): header, record kinds, trailer;
//! - [`dump`]: streams a store into a dump, in bounded memory;
//! - [`restore`]: loads a dump into an empty store, and applies later erasures;
//! - [`migrate`]: copies one store into another and compares them;
//! - [`verify`]: checks every hash chain, in a store or in a dump;
//! - [`encrypt`]: age encryption of dumps.
//!
//! Stores hold no rules: the indexes a restored contact needs come from
//! `ContactChange::between`, as for every change the service makes.

pub mod dump;
pub mod encrypt;
pub mod format;
pub mod migrate;
pub mod restore;
pub mod tombstones;
pub mod verify;

use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::store::StoreError;

pub use dump::{DumpOptions, DumpStream};
pub use encrypt::{Identities, Recipients};
pub use format::{index_fingerprint, Header, LineReader};
pub use restore::{MemberKeys, RestoreReport, Target};
pub use tombstones::Erasures;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the dump: {0}")]
    Write(String),
    #[error("cannot read the dump: {0}")]
    Read(String),
    #[error("this is not an optin dump: {0}")]
    NotADump(String),
    #[error("the dump is in format version {0}; this release reads version {version}: restore it with the release that wrote it or a newer one", version = format::VERSION)]
    Version(u64),
    #[error("line {line} of the dump: {reason}")]
    Malformed { line: u64, reason: String },
    #[error("line {line} of the dump holds a record of kind `{kind}`, which dump format version {version} does not have: it was written by a newer release; restore it with that release or a newer one", version = format::VERSION)]
    UnknownKind { line: u64, kind: String },
    #[error("the dump ends before its trailer: it is incomplete")]
    Incomplete,
    #[error("the dump's trailer does not match its records: {0}")]
    Trailer(String),
    #[error("the dump is encrypted with age: give the identity file with --identity")]
    NeedsIdentity,
    #[error("cannot decrypt the dump: {0}")]
    Decrypt(String),
    #[error("cannot encrypt the dump: {0}")]
    Encrypt(String),
    #[error("the dump was made under another index key (fingerprint {dump}, configured {configured}): restored contacts would not be found by their addresses; configure the index key the dump was made with")]
    ForeignIndexKey { dump: String, configured: String },
    #[error("the target store is not empty: a restore or copy only goes into an empty store")]
    NotEmpty,
    #[error("the target store holds an unfinished {by} (started {started_at}): empty it (remove the file, or FLUSHALL on every Redis primary) and run again")]
    Unfinished { by: String, started_at: String },
    #[error("{0}")]
    Contact(String),
}

/// Where a long command tells how far it got: a bar on a terminal, lines in a log.
pub trait Progress: Send + Sync {
    /// `records` more records of `kind` are done.
    fn advance(&self, kind: &'static str, records: u64);
}

/// Reports nothing (the HTTP endpoint; tests).
pub struct Silent;

impl Progress for Silent {
    fn advance(&self, _kind: &'static str, _records: u64) {}
}

/// Records read or written per store call.
pub const PAGE: usize = 500;

/// The first bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A dump file opened for reading: decrypted (with `identities`) when it is an age
/// file, decompressed, its header read and checked.
pub fn open_dump(
    path: &Path,
    identities: Option<&Identities>,
) -> Result<LineReader<Box<dyn BufRead>>, BackupError> {
    let file = std::fs::File::open(path)
        .map_err(|e| BackupError::Read(format!("cannot open {}: {e}", path.display())))?;
    let mut plain = BufReader::new(encrypt::open_sealed(BufReader::new(file), identities)?);
    let is_zstd = plain
        .fill_buf()
        .map_err(|e| BackupError::Read(e.to_string()))?
        .starts_with(&ZSTD_MAGIC);
    if !is_zstd {
        return Err(BackupError::NotADump(
            "it is neither zstd-compressed nor age-encrypted".into(),
        ));
    }
    let decoder = zstd::stream::read::Decoder::with_buffer(plain)
        .map_err(|e| BackupError::Read(e.to_string()))?;
    LineReader::open(Box::new(BufReader::new(decoder)) as Box<dyn BufRead>)
}

/// What the running service serves: its store as a dump (`GET /v1/backup`), and its
/// tombstones (`GET /v1/tombstones`).
pub struct Backups {
    store: crate::store::SharedStore,
    index_fingerprint: String,
    recipients: Recipients,
    clock: crate::clock::SharedClock,
}

impl Backups {
    pub fn new(
        store: crate::store::SharedStore,
        index: &crate::domain::ContactIndex,
        recipients: Recipients,
        clock: crate::clock::SharedClock,
    ) -> Self {
        Self {
            store,
            index_fingerprint: index_fingerprint(index),
            recipients,
            clock,
        }
    }

    /// Whether dumps are encrypted (to `backup.age_recipients`).
    pub fn encrypted(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// Starts a dump of the store; `allowance_window` as in [`DumpOptions`]. The store
    /// is asked for its view first, so a store that is down fails here, not mid-stream.
    pub async fn dump(
        &self,
        allowance_window: chrono::Duration,
    ) -> Result<DumpStream, BackupError> {
        let view = self.store.backup_view().await?;
        let options = DumpOptions {
            index_fingerprint: self.index_fingerprint.clone(),
            recipients: self.recipients.clone(),
            allowance_window,
            created_at: self.clock.now(),
        };
        Ok(dump::start(view, options, std::sync::Arc::new(Silent)))
    }

    /// Starts the list of tombstones (of erasures at or after `since`, when given).
    pub async fn tombstones(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<Vec<u8>, BackupError>>, BackupError> {
        let view = self.store.backup_view().await?;
        Ok(tombstones::stream_list(
            view,
            self.index_fingerprint.clone(),
            since,
        ))
    }
}
