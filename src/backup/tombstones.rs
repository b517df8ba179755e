//! Tombstones on their own: the list `GET /v1/tombstones` answers, and the erasures a
//! restore applies after loading an older dump (`--erasures-from`), read from such a
//! list or from a later dump.

use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::format::Record;
use super::restore::check_fingerprint;
use super::{open_dump, BackupError, Identities, PAGE};
use crate::domain::{ContactId, Tombstone};
use crate::store::BackupView;

/// One entry of the list: the contact id and what its tombstone holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TombstoneEntry {
    pub contact_id: ContactId,
    #[serde(flatten)]
    pub tombstone: Tombstone,
}

/// The body of `GET /v1/tombstones`.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct TombstoneList {
    pub index_key_fingerprint: String,
    pub tombstones: Vec<TombstoneEntry>,
}

/// Streams the list of every erasure's tombstone (of those at or after `since`, when
/// given) as JSON, page by page from `view`.
pub fn stream_list(
    view: Box<dyn BackupView>,
    index_fingerprint: String,
    since: Option<DateTime<Utc>>,
) -> mpsc::Receiver<Result<Vec<u8>, BackupError>> {
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        let result = async {
            let opening = format!(
                "{{\"index_key_fingerprint\":{},\"tombstones\":[",
                serde_json::Value::String(index_fingerprint)
            );
            send(&sender, opening.into_bytes()).await?;
            let mut first = true;
            let mut cursor = None;
            loop {
                let page = view.tombstones(cursor, PAGE).await?;
                let mut chunk = Vec::new();
                for (contact_id, tombstone) in page.items {
                    // A move's record is no erasure: a restore has nothing to do again.
                    if !tombstone.is_erasure()
                        || since.is_some_and(|since| tombstone.erased_at < since)
                    {
                        continue;
                    }
                    if !first {
                        chunk.push(b',');
                    }
                    first = false;
                    serde_json::to_writer(
                        &mut chunk,
                        &TombstoneEntry {
                            contact_id,
                            tombstone,
                        },
                    )
                    .map_err(|e| BackupError::Write(e.to_string()))?;
                }
                send(&sender, chunk).await?;
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            send(&sender, b"]}\n".to_vec()).await
        }
        .await;
        if let Err(error) = result {
            let _ = sender.send(Err(error)).await;
        }
    });
    receiver
}

async fn send(
    sender: &mpsc::Sender<Result<Vec<u8>, BackupError>>,
    chunk: Vec<u8>,
) -> Result<(), BackupError> {
    if chunk.is_empty() {
        return Ok(());
    }
    sender
        .send(Ok(chunk))
        .await
        .map_err(|_| BackupError::Write("the reader went away".into()))
}

/// Erasures made after a dump, to apply after restoring it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Erasures(Vec<(ContactId, Tombstone)>);

impl Erasures {
    /// The tombstones of erasures after `after` (the restored dump's time) in `path`: a
    /// later dump (checked whole, trailer included) or a `GET /v1/tombstones` list. Both
    /// must come from a store under the same index key.
    pub fn load(
        path: &Path,
        identities: Option<&Identities>,
        index_fingerprint: &str,
        after: DateTime<Utc>,
    ) -> Result<Self, BackupError> {
        let file = std::fs::File::open(path)
            .map_err(|e| BackupError::Read(format!("cannot open {}: {e}", path.display())))?;
        let mut input = BufReader::new(file);
        let is_json = input
            .fill_buf()
            .map_err(|e| BackupError::Read(e.to_string()))?
            .iter()
            .find(|byte| !byte.is_ascii_whitespace())
            == Some(&b'{');
        let mut later = Vec::new();
        if is_json {
            let list: TombstoneList = serde_json::from_reader(input)
                .map_err(|e| BackupError::NotADump(format!("not a tombstone list: {e}")))?;
            check_fingerprint(&list.index_key_fingerprint, index_fingerprint)?;
            later.extend(
                list.tombstones
                    .into_iter()
                    .map(|entry| (entry.contact_id, entry.tombstone)),
            );
        } else {
            drop(input);
            let mut reader = open_dump(path, identities)?;
            check_fingerprint(&reader.header().index_key_fingerprint, index_fingerprint)?;
            while let Some(record) = reader.next_record()? {
                if let Record::Tombstone(line) = record {
                    later.push((line.contact_id, line.tombstone));
                }
            }
        }
        later.retain(|(_, tombstone)| tombstone.is_erasure() && tombstone.erased_at > after);
        later.sort_by_key(|(_, tombstone)| tombstone.erased_at);
        Ok(Self(later))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn into_tombstones(self) -> Vec<(ContactId, Tombstone)> {
        self.0
    }
}
