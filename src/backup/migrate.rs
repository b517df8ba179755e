//! Copies one store into another, empty one (`optin migrate`), record by record through
//! the same conversions as a dump and a restore, then compares the two: the counts of
//! every kind, and every contact's version and chain head.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::dump::{each_record, RecordSink};
use super::format::Record;
use super::restore::{begin, Loader, Target};
use super::{BackupError, PAGE};
use crate::domain::event::verify_chain;
use crate::store::Store;

/// How many contacts that differ a report names; the count covers them all.
const NAMED_MISMATCHES: usize = 20;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrateReport {
    /// Records copied, per kind.
    pub copied: BTreeMap<String, u64>,
    /// Records the target holds after the copy, per kind.
    pub found: BTreeMap<String, u64>,
    /// Contacts whose version or chain head differ between the stores, or whose chain
    /// does not verify in the target.
    pub mismatches: u64,
    /// The first few of them, by contact id.
    pub named: Vec<String>,
}

impl MigrateReport {
    pub fn matches(&self) -> bool {
        self.mismatches == 0 && self.copied == self.found
    }
}

/// Copies `source` into `target.store`, which must be empty, and compares them. The
/// restore mark is removed only when they match: a target that differs (the source
/// changed during the copy, say) is not one to serve from.
pub async fn migrate(
    source: &dyn Store,
    target: &Target<'_>,
    allowance_window: Duration,
    now: DateTime<Utc>,
) -> Result<MigrateReport, BackupError> {
    begin(target.store, "migrate", now).await?;
    let view = source.backup_view().await?;
    let mut loader = Loader::new(target);
    each_record(view.as_ref(), allowance_window, true, &mut loader).await?;
    let copied = loader.finish().await?.counts;
    let mut report = compare(source, target.store, allowance_window).await?;
    report.copied = copied;
    if report.matches() {
        target.store.clear_restore_mark().await?;
    }
    Ok(report)
}

#[async_trait::async_trait]
impl RecordSink for Loader<'_> {
    async fn take(&mut self, record: Record) -> Result<(), BackupError> {
        self.add(record).await
    }
}

/// Counts records per kind.
#[derive(Default)]
struct Counter(BTreeMap<String, u64>);

#[async_trait::async_trait]
impl RecordSink for Counter {
    async fn take(&mut self, record: Record) -> Result<(), BackupError> {
        *self.0.entry(record.kind().to_string()).or_default() += 1;
        Ok(())
    }
}

/// Counts the target's records and compares each of its contacts with the source's.
async fn compare(
    source: &dyn Store,
    target: &dyn Store,
    allowance_window: Duration,
) -> Result<MigrateReport, BackupError> {
    let mut report = MigrateReport::default();
    let view = target.backup_view().await?;
    let mut cursor = None;
    loop {
        let page = view.contacts(cursor, PAGE).await?;
        let mut records = Vec::with_capacity(page.items.len());
        for read in page.items {
            *report.found.entry("contact".into()).or_default() += 1;
            match read {
                Ok(record) => records.push(record),
                Err(unreadable) => note(&mut report, unreadable.id.to_string()),
            }
        }
        let ids: Vec<_> = records.iter().map(|r| r.contact.id().clone()).collect();
        let originals = source.load_contacts(&ids).await?;
        for (record, original) in records.iter().zip(originals) {
            let same = original.is_some_and(|original| {
                original.version() == record.contact.version()
                    && original.head() == record.contact.head()
            }) && verify_chain(&record.events, record.contact.head()).chain_valid;
            if !same {
                note(&mut report, record.contact.id().to_string());
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    // The other kinds are counted as a dump of the target would hold them.
    let mut others = Counter::default();
    each_record(view.as_ref(), allowance_window, false, &mut others).await?;
    report.found.extend(others.0);
    Ok(report)
}

fn note(report: &mut MigrateReport, contact: String) {
    report.mismatches += 1;
    if report.named.len() < NAMED_MISMATCHES {
        report.named.push(contact);
    }
}
