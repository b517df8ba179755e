//! Checks every hash chain: of every contact in a store (`optin verify --config C`), or
//! in a dump, offline, with no store at all (`optin verify --from FILE`), so a dump kept
//! for years can still prove that its events are the ones recorded.

use std::io::BufRead;

use uuid::Uuid;

use super::format::{LineReader, Record};
use super::{BackupError, Progress, PAGE};
use crate::domain::event::verify_chain;
use crate::domain::{Contact, Event};
use crate::store::BackupView;

/// A contact whose chain does not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenChain {
    /// The masked address (`j***@example.com`), or the contact id when the contact
    /// itself cannot be read.
    pub contact: String,
    /// The earliest event that no longer matches its link, when there is one to name.
    pub first_broken_event: Option<Uuid>,
    pub reason: String,
}

impl std::fmt::Display for BrokenChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.contact, self.reason)?;
        if let Some(event) = self.first_broken_event {
            write!(f, " (first broken event {event})")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub contacts: u64,
    pub events: u64,
    pub broken: u64,
}

/// The verdict on one contact's chain.
fn check(contact: &Contact, events: &[Event]) -> Option<BrokenChain> {
    let verdict = verify_chain(events, contact.head());
    (!verdict.chain_valid).then(|| BrokenChain {
        contact: contact.email().masked(),
        first_broken_event: verdict.first_broken_event,
        reason: "the hash chain does not verify".into(),
    })
}

/// Walks every contact of the store and checks its chain; each broken one goes to
/// `broken` as it is found.
pub async fn verify_store(
    view: &dyn BackupView,
    progress: &dyn Progress,
    broken: &mut (dyn FnMut(BrokenChain) + Send),
) -> Result<VerifyReport, BackupError> {
    let mut report = VerifyReport::default();
    let mut cursor = None;
    loop {
        let page = view.contacts(cursor, PAGE).await?;
        let read = page.items.len() as u64;
        for item in page.items {
            report.contacts += 1;
            let found = match item {
                Ok(record) => {
                    report.events += record.events.len() as u64;
                    check(&record.contact, &record.events)
                }
                Err(unreadable) => Some(BrokenChain {
                    contact: format!("contact {}", unreadable.id),
                    first_broken_event: None,
                    reason: format!("cannot be read: {}", unreadable.reason),
                }),
            };
            if let Some(found) = found {
                report.broken += 1;
                broken(found);
            }
        }
        progress.advance("contact", read);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(report),
        }
    }
}

/// Checks every chain in a dump, and the dump itself (each event's recorded hash, and the
/// trailer's counts and hash over every line).
pub fn verify_dump<R: BufRead>(
    mut reader: LineReader<R>,
    progress: &dyn Progress,
    broken: &mut dyn FnMut(BrokenChain),
) -> Result<VerifyReport, BackupError> {
    let mut report = VerifyReport::default();
    while let Some(record) = reader.next_record()? {
        let Record::Contact(line) = record else {
            continue;
        };
        report.contacts += 1;
        report.events += line.events.len() as u64;
        let altered = line
            .events
            .iter()
            .find(|hashed| hashed.event.hash() != hashed.hash);
        let events: Vec<Event> = line.events.iter().map(|h| h.event.clone()).collect();
        let found = match altered {
            Some(hashed) => Some(BrokenChain {
                contact: line.contact.email().masked(),
                first_broken_event: Some(hashed.event.id),
                reason: "an event differs from the hash the dump records for it".into(),
            }),
            None => check(&line.contact, &events),
        };
        if let Some(found) = found {
            report.broken += 1;
            broken(found);
        }
        if report.contacts % PAGE as u64 == 0 {
            progress.advance("contact", PAGE as u64);
        }
    }
    progress.advance("contact", report.contacts % PAGE as u64);
    Ok(report)
}
