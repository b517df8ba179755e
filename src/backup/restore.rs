//! Loads a dump into an empty store, of any kind, and applies erasures made after it.
//!
//! The order of a restore: refuse a dump made under another index key and a target that
//! is not empty (or holds an unfinished restore) before anything is written; set the
//! restore mark; write every record, a page at a time; check the trailer; apply the
//! later erasures; remove the mark. A restore that stops anywhere before the end leaves
//! the mark, and `optin serve` refuses to start on that store.
//!
//! Each contact is written as the change that creates it, derived by
//! `ContactChange::between` as the service derives every change (counters, expiry and
//! retention entries), with its own version and its events as they were, and its member
//! index entry from the caller: so a restored store's indexes are rebuilt, never copied,
//! and cannot disagree with its contacts.

use std::collections::BTreeMap;
use std::io::BufRead;

use chrono::{DateTime, Utc};

use super::format::{ContactLine, JobStanding, LineReader, Record};
use super::tombstones::Erasures;
use super::{BackupError, Progress, PAGE};
use crate::domain::{
    Catalog, Contact, ContactChange, ContactId, ContactWrite, MemberIndexChange, Tombstone,
};
use crate::store::{
    JobRecord, JobState, MailAllowance, RestoreBatch, RestoreMark, Store, StoreError,
};

/// The member index entries a contact write needs (see `service::members`): a keyed
/// hash of its address's MD5, which only the service knows how to make.
pub type MemberKeys = dyn Fn(Option<&Contact>, &ContactWrite) -> MemberIndexChange + Send + Sync;

/// What every load into a store needs besides the records.
pub struct Target<'a> {
    pub store: &'a dyn Store,
    /// Which types are marketing ones, for the statistics counters.
    pub catalog: &'a Catalog,
    /// The fingerprint of the configured index key.
    pub index_fingerprint: &'a str,
    pub member_keys: &'a MemberKeys,
    pub progress: &'a dyn Progress,
}

/// What a restore wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Records per kind.
    pub counts: BTreeMap<String, u64>,
    /// Contacts erased, and tombstones added, from `--erasures-from`.
    pub erased: u64,
    pub tombstones_added: u64,
}

/// Refuses a dump made under another index key.
pub fn check_fingerprint(dump: &str, configured: &str) -> Result<(), BackupError> {
    if dump == configured {
        Ok(())
    } else {
        Err(BackupError::ForeignIndexKey {
            dump: dump.to_string(),
            configured: configured.to_string(),
        })
    }
}

/// Refuses a target with an unfinished restore or anything in it, then marks it: the
/// first write of every load.
pub async fn begin(store: &dyn Store, by: &str, now: DateTime<Utc>) -> Result<(), BackupError> {
    if let Some(mark) = store.restore_mark().await? {
        return Err(BackupError::Unfinished {
            by: mark.by,
            started_at: mark.started_at.to_rfc3339(),
        });
    }
    if !store.is_empty().await? {
        return Err(BackupError::NotEmpty);
    }
    store
        .set_restore_mark(&RestoreMark {
            started_at: now,
            by: by.to_string(),
        })
        .await?;
    Ok(())
}

/// Restores `reader`'s records into `target`, which must be empty, then applies
/// `erasures` (already read, see [`Erasures`]).
pub async fn restore<R: BufRead>(
    target: &Target<'_>,
    mut reader: LineReader<R>,
    erasures: Option<Erasures>,
    now: DateTime<Utc>,
) -> Result<RestoreReport, BackupError> {
    check_fingerprint(
        &reader.header().index_key_fingerprint,
        target.index_fingerprint,
    )?;
    begin(target.store, "restore", now).await?;
    let mut loader = Loader::new(target);
    while let Some(record) = reader.next_record()? {
        loader.add(record).await?;
    }
    // The trailer matched (`next_record` checks it before it answers `None`).
    let mut report = loader.finish().await?;
    if let Some(erasures) = erasures {
        let (erased, added) = apply_erasures(target, erasures).await?;
        report.erased = erased;
        report.tombstones_added = added;
    }
    target.store.clear_restore_mark().await?;
    Ok(report)
}

/// Collects records into batches and writes each to the store.
pub(super) struct Loader<'a> {
    target: &'a Target<'a>,
    batch: RestoreBatch,
    pending: BTreeMap<&'static str, u64>,
    counts: BTreeMap<String, u64>,
}

impl<'a> Loader<'a> {
    pub(super) fn new(target: &'a Target<'a>) -> Self {
        Self {
            target,
            batch: RestoreBatch::default(),
            pending: BTreeMap::new(),
            counts: BTreeMap::new(),
        }
    }

    pub(super) async fn add(&mut self, record: Record) -> Result<(), BackupError> {
        let kind = record.kind();
        match record {
            Record::Contact(line) => {
                let change = contact_change(line, self.target)?;
                self.batch.contacts.push(change);
            }
            Record::Tombstone(line) => {
                self.batch
                    .tombstones
                    .push((line.contact_id, line.tombstone));
            }
            Record::MailAllowance(line) => self.batch.mail_allowances.push((
                MailAllowance {
                    contact_id: line.contact_id,
                    taken_at: line.taken_at,
                },
                line.expires_at,
            )),
            Record::Job(line) => {
                let state = match (line.state, line.due_at) {
                    (JobStanding::Dead, _) => JobState::Dead,
                    (JobStanding::Queued, Some(due)) => JobState::Queued { due },
                    (JobStanding::Queued, None) => {
                        return Err(BackupError::Contact(format!(
                            "job {} is queued without a due time",
                            line.job.id
                        )))
                    }
                };
                self.batch.jobs.push(JobRecord {
                    job: line.job,
                    state,
                });
            }
            Record::EndpointState(line) => {
                self.batch.endpoint_states.push((line.endpoint, line.state));
            }
            // The reader never answers these; a copy never makes them.
            Record::Header(_) | Record::Trailer(_) => return Ok(()),
        }
        *self.pending.entry(kind).or_default() += 1;
        if self.batch.len() >= PAGE {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), BackupError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.target
            .store
            .restore(batch)
            .await
            .map_err(|error| match error {
                StoreError::Conflict => BackupError::Contact(
                    "a contact of the dump is in the target already: the dump holds it twice, or something else writes to the target".into(),
                ),
                other => other.into(),
            })?;
        for (kind, written) in std::mem::take(&mut self.pending) {
            self.target.progress.advance(kind, written);
            *self.counts.entry(kind.to_string()).or_default() += written;
        }
        Ok(())
    }

    pub(super) async fn finish(mut self) -> Result<RestoreReport, BackupError> {
        self.flush().await?;
        Ok(RestoreReport {
            counts: self.counts,
            ..RestoreReport::default()
        })
    }
}

/// The change that creates a contact as the dump holds it. Each event must still have
/// the hash the dump gives it: an event whose JSON this release would write differently
/// (say, with a field it does not know) would break its chain, so it is refused.
fn contact_change(line: ContactLine, target: &Target<'_>) -> Result<ContactChange, BackupError> {
    let ContactLine { contact, events } = line;
    for hashed in &events {
        if hashed.event.hash() != hashed.hash {
            return Err(BackupError::Contact(format!(
                "event {} of contact {} does not have the hash the dump gives it: the dump is damaged, or was written by a release with event fields this one does not know",
                hashed.event.id, contact.id()
            )));
        }
    }
    let version = contact.version();
    if version == 0 {
        return Err(BackupError::Contact(format!(
            "contact {} has version 0, which no stored contact has",
            contact.id()
        )));
    }
    let events = events.into_iter().map(|hashed| hashed.event).collect();
    let mut change = ContactChange::between(
        contact.id().clone(),
        None,
        Some(contact),
        events,
        Vec::new(),
        target.catalog,
    );
    // The contact keeps the version it had, so receivers of its webhooks see it rise.
    if let ContactWrite::Put(restored) = &change.write {
        change.write = ContactWrite::Put(restored.clone().with_version(version));
    }
    change.member_index = (target.member_keys)(None, &change.write);
    Ok(change)
}

/// Applies erasures made after the dump: a contact the restore brought back is erased
/// again (under the tombstone of that erasure, so its time and reason stay), unless it
/// was created after that erasure (the person came back); a tombstone newer than the
/// restored one is written. Their webhook notices are not sent again: they went when the
/// erasure was made. Returns (contacts erased, tombstones written).
async fn apply_erasures(
    target: &Target<'_>,
    erasures: Erasures,
) -> Result<(u64, u64), BackupError> {
    let (mut erased, mut added) = (0, 0);
    for (id, tombstone) in erasures.into_tombstones() {
        match erase_again(target, &id, tombstone).await? {
            Erased::Contact => erased += 1,
            Erased::TombstoneOnly => added += 1,
            Erased::Nothing => {}
        }
        target.progress.advance("erasure", 1);
    }
    Ok((erased, added))
}

enum Erased {
    Contact,
    TombstoneOnly,
    Nothing,
}

async fn erase_again(
    target: &Target<'_>,
    id: &ContactId,
    tombstone: Tombstone,
) -> Result<Erased, BackupError> {
    let store = target.store;
    let contact = store.load_contact(id).await?;
    let change = match contact {
        Some(contact) if contact.created_at() <= tombstone.erased_at => {
            let mut change = ContactChange::between(
                id.clone(),
                Some(&contact),
                None,
                Vec::new(),
                Vec::new(),
                target.catalog,
            )
            .with_tombstone(tombstone);
            change.member_index = (target.member_keys)(Some(&contact), &change.write);
            store.apply(change).await?;
            return Ok(Erased::Contact);
        }
        Some(_) => return Ok(Erased::Nothing),
        None => {
            let newer = store
                .tombstone(id)
                .await?
                .is_none_or(|stored| stored.erased_at < tombstone.erased_at);
            if !newer {
                return Ok(Erased::Nothing);
            }
            ContactChange::tombstone_only(id.clone()).with_tombstone(tombstone)
        }
    };
    store.apply(change).await?;
    Ok(Erased::TombstoneOnly)
}
