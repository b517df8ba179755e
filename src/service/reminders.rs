//! The confirmation's one reminder, run by the scheduler, and what the outbox reports of
//! the mails of a confirmation: the time a confirmation is measured from, and the
//! funnel's `mailed` and `reminded`.

use uuid::Uuid;

use super::commit::Reach;
use super::Subscriptions;
use crate::domain::{ContactId, Planned, Reminded, SentMail, Timer};
use crate::store::StoreError;

/// How many due contacts one round of the sweep looks at.
const REMINDER_BATCH: usize = 500;

/// What one run of the reminder sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReminderReport {
    pub mailed: usize,
    /// Due, but for an address that must not get one, or whose mail cap was spent.
    pub skipped: usize,
}

impl Subscriptions {
    /// Mails every reminder that is due by now (or skips it), each once.
    pub async fn send_reminders(&self) -> Result<ReminderReport, StoreError> {
        let mut report = ReminderReport::default();
        loop {
            let due = self
                .store
                .due_contacts(Timer::Reminder, self.now(), REMINDER_BATCH)
                .await?;
            if due.is_empty() {
                return Ok(report);
            }
            let mut progress = false;
            for id in &due {
                match self.remind(id).await? {
                    Reminded::Mailed => report.mailed += 1,
                    Reminded::Skipped => report.skipped += 1,
                    Reminded::NothingDue => continue,
                }
                progress = true;
            }
            if !progress {
                // The index and the contacts are written together, so this means a bug;
                // stop rather than loop over the same entries.
                tracing::warn!(
                    entries = due.len(),
                    "reminder index lists contacts with nothing due"
                );
                return Ok(report);
            }
        }
    }

    async fn remind(&self, id: &ContactId) -> Result<Reminded, StoreError> {
        self.commit(id, Reach::Signup, |found| {
            Ok::<_, StoreError>(match found.contact {
                Some(contact) => contact.clone().remind(&self.rules, found.mail, found.now),
                None => Planned::Nothing(Reminded::NothingDue),
            })
        })
        .await
    }

    /// The relay took a mail of the pending confirmation `pending_id`.
    pub async fn note_mail_sent(
        &self,
        id: &ContactId,
        pending_id: Uuid,
        mail: SentMail,
    ) -> Result<(), StoreError> {
        self.commit(id, Reach::Link, |found| {
            Ok::<_, StoreError>(match found.contact {
                Some(contact) => contact.clone().note_mail_sent(pending_id, mail, found.now),
                None => Planned::Nothing(()),
            })
        })
        .await
    }
}
