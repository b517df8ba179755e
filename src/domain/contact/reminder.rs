//! The one reminder of a pending confirmation, and what the mail relay took.
//!
//! A confirmation still pending when its `remind_at` comes gets one reminder mail with
//! the same link and code, counted against the per-address cap like the first. Never to
//! an address that blocked confirmation requests, left every type, or bounced; either
//! way the reminder is done with, so it comes once at most.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Contact;
use crate::domain::funnel::FunnelStage;
use crate::domain::outbox_job::{MailKind, OutboxJob};
use crate::domain::plan::{Plan, Planned};
use crate::domain::rules::{MailAllowance, Rules};
use crate::domain::Status;

/// What a reminder run did for one contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reminded {
    Mailed,
    /// Due, but not mailed: the address must not get it, or its cap is spent.
    Skipped,
    /// No reminder of this contact is due.
    NothingDue,
}

/// A mail of a pending confirmation that the relay took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SentMail {
    Confirmation,
    Reminder,
}

impl Contact {
    /// Every type the catalog has is `unsubscribed`: the person left everything.
    pub fn has_left_everything(&self, rules: &Rules) -> bool {
        rules
            .catalog()
            .all()
            .iter()
            .all(|t| self.status(&t.id) == Status::Unsubscribed)
    }

    /// Sends (or skips) the earliest reminder that is due. One a call, since one plan
    /// takes one mail from the cap; a contact with more due is due again at once.
    pub fn remind(
        mut self,
        rules: &Rules,
        mail: MailAllowance,
        now: DateTime<Utc>,
    ) -> Planned<Reminded> {
        let due = self
            .pending
            .iter()
            .enumerate()
            .filter(|(_, p)| p.remind_at.is_some_and(|at| at <= now))
            .min_by_key(|(_, p)| p.remind_at)
            .map(|(index, _)| index);
        let Some(index) = due else {
            return Planned::Nothing(Reminded::NothingDue);
        };
        let quiet = self.is_signup_blocked()
            || self.is_unreachable()
            || self.has_left_everything(rules)
            || mail == MailAllowance::Spent;
        let pending = &mut self.pending[index];
        pending.remind_at = None;
        if quiet {
            return Planned::Write(Plan::keep(self, Vec::new(), Reminded::Skipped));
        }
        let reminder = MailKind::Reminder {
            pending_id: pending.id,
            types: pending.types.clone(),
            expires_at: pending.expires_at,
        };
        let locale = pending.locale.clone();
        let job = OutboxJob::mail(self.id.clone(), self.email.clone(), &locale, reminder, now);
        Planned::Write(Plan::keep(self, Vec::new(), Reminded::Mailed).with_jobs([job]))
    }

    /// Records that the relay took a mail of a pending confirmation: the time the
    /// confirmation is measured from, and the funnel's `mailed` or `reminded`. Only the
    /// first send of each counts (a retried or revived job may be sent again).
    pub fn note_mail_sent(
        mut self,
        pending_id: Uuid,
        mail: SentMail,
        now: DateTime<Utc>,
    ) -> Planned<()> {
        let Some(pending) = self.pending.iter_mut().find(|p| p.id == pending_id) else {
            return Planned::Nothing(());
        };
        let (sent_at, stage) = match mail {
            SentMail::Confirmation => (&mut pending.mailed_at, FunnelStage::Mailed),
            SentMail::Reminder => (&mut pending.reminded_at, FunnelStage::Reminded),
        };
        if sent_at.is_some() {
            return Planned::Nothing(());
        }
        *sent_at = Some(now);
        let step = pending.funnel_step(stage);
        Planned::Write(Plan::keep(self, Vec::new(), ()).with_funnel(step))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{rules, signed_up, type_id, META};
    use super::*;
    use crate::domain::{Source, StatusChange, Timer};
    use chrono::Duration;

    fn due_later(now: DateTime<Utc>) -> DateTime<Utc> {
        now + Duration::hours(24)
    }

    #[test]
    fn a_due_reminder_mails_the_same_confirmation_once() {
        let now = Utc::now();
        let (pending, id) = signed_up("nl", now);
        assert!(matches!(
            pending
                .clone()
                .remind(&rules(), MailAllowance::Available, now),
            Planned::Nothing(Reminded::NothingDue)
        ));
        let planned = pending.remind(&rules(), MailAllowance::Available, due_later(now));
        assert!(planned.mails_others_requested(), "counted against the cap");
        let Planned::Write(plan) = planned else {
            panic!("a write")
        };
        assert_eq!(plan.value, Reminded::Mailed);
        let mail = plan.jobs[0].as_mail().unwrap();
        assert_eq!(mail.locale, "nl");
        assert!(matches!(mail.mail, MailKind::Reminder { pending_id, .. } if pending_id == id));
        let after = plan.after.unwrap();
        assert!(
            !after
                .due_times(rules().catalog())
                .contains_key(&Timer::Reminder),
            "once"
        );
        assert!(matches!(
            after.remind(&rules(), MailAllowance::Available, due_later(now)),
            Planned::Nothing(Reminded::NothingDue)
        ));
    }

    #[test]
    fn blocked_unreachable_left_or_capped_addresses_get_no_reminder_and_it_is_done_with() {
        let now = Utc::now();
        let later = due_later(now);
        let (pending, _) = signed_up("en", now);
        let mut blocked = pending.clone();
        blocked.block_signups(Source::UnsubscribePage, &META, now);
        let mut left = pending.clone();
        for t in ["news", "offers", "alerts"] {
            left.change_status(
                &type_id(t),
                StatusChange::new(Status::Unsubscribed, Source::PreferenceCenter),
                &META,
                now,
            );
        }
        let mut unreachable = pending.clone();
        unreachable.unreachable = Some(super::super::Unreachable {
            since: now,
            reason: super::super::BounceType::HardBounce,
            detail: None,
        });
        for (name, contact, mail) in [
            ("blocked", blocked, MailAllowance::Available),
            ("left everything", left, MailAllowance::Available),
            ("unreachable", unreachable, MailAllowance::Available),
            ("cap spent", pending, MailAllowance::Spent),
        ] {
            let Planned::Write(plan) = contact.remind(&rules(), mail, later) else {
                panic!("{name}: a write that clears the reminder")
            };
            assert_eq!(plan.value, Reminded::Skipped, "{name}");
            assert!(plan.jobs.is_empty(), "{name}");
            assert!(
                plan.after.unwrap().due_times(rules().catalog()).is_empty(),
                "{name}: not due again"
            );
        }
    }

    #[test]
    fn the_first_send_of_each_mail_is_noted_once() {
        let now = Utc::now();
        let (mut pending, id) = signed_up("en", now);
        pending.pending[0].funnel = Some("api".into());
        let Planned::Write(plan) = pending.note_mail_sent(id, SentMail::Confirmation, now) else {
            panic!("a write")
        };
        assert_eq!(plan.funnel[0].stage, FunnelStage::Mailed);
        let after = plan.after.unwrap();
        assert_eq!(after.pending()[0].mailed_at, Some(now));
        assert!(matches!(
            after
                .clone()
                .note_mail_sent(id, SentMail::Confirmation, now),
            Planned::Nothing(())
        ));
        let Planned::Write(plan) = after.note_mail_sent(id, SentMail::Reminder, now) else {
            panic!("a write")
        };
        assert_eq!(plan.funnel[0].stage, FunnelStage::Reminded);
    }
}
