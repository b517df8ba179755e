//! A public signup: a pending confirmation for the types asked for and one confirmation
//! mail. A signup never lowers a status, never undoes a no, and leaves a person who
//! blocked confirmation requests alone.

use chrono::{DateTime, Utc};

use uuid::Uuid;

use super::{ConfirmationRequest, Contact, StatusChange};
use crate::domain::evidence::Evidence;
use crate::domain::funnel::{FunnelStage, SignupDoor};
use crate::domain::plan::{Plan, Planned};
use crate::domain::rules::{MailAllowance, Rules};
use crate::domain::{NoticeRef, RequestMeta, SignupEvidence, Status, SubscriptionTypeId};

/// A signup, parsed: the types are known and each comes with the notice shown for it.
#[derive(Clone, Debug)]
pub struct SignupIntent {
    /// Each type asked for, once, with the notice shown beside it.
    pub types: Vec<(SubscriptionTypeId, NoticeRef)>,
    pub locale: String,
    /// The API, an operator's form or the hosted form.
    pub door: SignupDoor,
    pub form_id: Option<Evidence>,
    pub page_url: Option<Evidence>,
    pub meta: RequestMeta,
}

impl SignupIntent {
    /// The evidence of this request, made at `now`.
    pub fn evidence(&self, now: DateTime<Utc>) -> SignupEvidence {
        SignupEvidence {
            at: now,
            source: self.door.source(),
            ip: self.meta.ip.clone(),
            user_agent: self.meta.user_agent.clone(),
            form_id: self.form_id.clone().map(Evidence::into_string),
            page_url: self.page_url.clone().map(Evidence::into_string),
        }
    }
}

/// What a signup asks, wherever it comes from: a request now, or a held signup that an
/// admin released (with the evidence of the request that was held).
pub(super) struct Ask<'a> {
    pub types: &'a [(SubscriptionTypeId, NoticeRef)],
    pub locale: &'a str,
    pub evidence: SignupEvidence,
    /// The request that makes the change now, recorded on status events.
    pub meta: &'a RequestMeta,
    /// The confirmation funnel's source key (see [`SignupDoor::funnel_key`]).
    pub funnel: Option<String>,
}

/// What planning a signup found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Asked {
    /// Types wait for a confirmation that the spent mail cap keeps from being sent.
    pub withheld_mail: bool,
    /// The pending confirmation the signup created, if any.
    pub pending: Option<Uuid>,
}

impl Contact {
    /// Plans a public signup of this contact (a new one is made by the caller with the
    /// signup's locale; a known contact keeps its language until it confirms).
    ///
    /// Always writes (at least a version bump), so that every kind of address costs the
    /// same work and the answer's timing tells nothing. An unsubscribed person is asked
    /// to confirm even on a type without double opt-in, and a person who blocked signups
    /// is neither changed nor mailed. Answers the pending confirmation it created, if any.
    pub fn sign_up(
        self,
        intent: &SignupIntent,
        rules: &Rules,
        mail: MailAllowance,
        now: DateTime<Utc>,
    ) -> Planned<Option<Uuid>> {
        let asked = Ask {
            types: &intent.types,
            locale: &intent.locale,
            evidence: intent.evidence(now),
            meta: &intent.meta,
            funnel: Some(
                intent
                    .door
                    .funnel_key(intent.form_id.as_ref().map(Evidence::as_str)),
            ),
        };
        self.ask(asked, rules, mail, now).map(|asked| asked.pending)
    }

    /// The rules of a signup, for a request now and for a released one alike.
    pub(super) fn ask(
        self,
        asked: Ask,
        rules: &Rules,
        mail: MailAllowance,
        now: DateTime<Utc>,
    ) -> Planned<Asked> {
        if self.is_signup_blocked() {
            return Planned::Write(Plan::keep(self, Vec::new(), Asked::default()));
        }
        let mut contact = self;
        let mut events = Vec::new();
        let mut to_confirm = Vec::new();
        let mut notices = Vec::new();
        for (type_id, notice) in asked.types {
            let current = contact.status(type_id);
            if current == Status::OptedIn {
                continue;
            }
            let single_opt_in = rules
                .catalog()
                .get(type_id.as_str())
                .is_some_and(|t| !t.double_opt_in);
            if single_opt_in && current == Status::NotSubscribed {
                let mut change = StatusChange::consent(asked.evidence.source, notice.clone());
                change.signup = Some(asked.evidence.clone());
                events.extend(contact.change_status(type_id, change, asked.meta, now));
            } else {
                to_confirm.push(type_id.clone());
                notices.push(notice.clone());
            }
        }
        if to_confirm.is_empty() || mail == MailAllowance::Spent {
            let outcome = Asked {
                withheld_mail: !to_confirm.is_empty(),
                pending: None,
            };
            return Planned::Write(Plan::keep(contact, events, outcome));
        }
        let job = contact.request_confirmation(
            ConfirmationRequest {
                types: to_confirm,
                notices,
                locale: asked.locale.to_string(),
                ttl: rules.confirmation_ttl(),
                signup: asked.evidence,
                remind_after: rules.reminder_after(),
                funnel: asked.funnel,
            },
            now,
        );
        let created = contact.pending.last();
        let step = created.and_then(|p| p.funnel_step(FunnelStage::Requested));
        let outcome = Asked {
            withheld_mail: false,
            pending: created.map(|p| p.id),
        };
        Planned::Write(
            Plan::keep(contact, events, outcome)
                .with_jobs([job])
                .with_funnel(step),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{contact, intent, notice, rules, type_id, META};
    use super::*;
    use crate::domain::{LawfulBasis, Source};

    #[test]
    fn a_new_address_gets_one_pending_confirmation_and_one_mail_and_no_status() {
        let now = Utc::now();
        let planned = contact(now).sign_up(
            &intent(&["news", "offers"]),
            &rules(),
            MailAllowance::Available,
            now,
        );
        let plan = planned.plan().expect("a write");
        let after = plan.after().unwrap();
        assert_eq!(after.pending().len(), 1);
        assert_eq!(
            after.pending()[0].types,
            [type_id("news"), type_id("offers")]
        );
        assert_eq!(after.pending()[0].signup.form_id.as_deref(), Some("footer"));
        assert_eq!(after.pending()[0].locale, "nl");
        assert!(after.subscriptions().is_empty());
        assert_eq!(plan.jobs().len(), 1);
        assert!(plan.events().is_empty());
        assert!(planned.mails_others_requested());
        assert_eq!(*planned.value(), Some(after.pending()[0].id));
        let step = &plan.funnel()[0];
        assert_eq!(step.stage, FunnelStage::Requested);
        assert_eq!(step.source, "footer", "the form's id is the funnel's key");
        assert_eq!(
            after.pending()[0].remind_at,
            Some(now + chrono::Duration::hours(24))
        );
        assert_eq!(
            after
                .due_times(rules().catalog())
                .get(&crate::domain::Timer::Reminder),
            Some(&(now + chrono::Duration::hours(24)))
        );
    }

    #[test]
    fn an_opted_in_type_is_left_alone_and_never_lowered() {
        let now = Utc::now();
        let mut known = contact(now);
        known.change_status(
            &type_id("news"),
            StatusChange::consent(Source::ConfirmLink, notice("news")),
            &META,
            now,
        );
        let planned = known.sign_up(&intent(&["news"]), &rules(), MailAllowance::Available, now);
        let plan = planned
            .plan()
            .expect("a write all the same, for equal work");
        assert_eq!(
            plan.after().unwrap().status(&type_id("news")),
            Status::OptedIn
        );
        assert!(plan.jobs().is_empty());
        assert!(plan.after().unwrap().pending().is_empty());
    }

    #[test]
    fn a_blocked_address_is_written_unchanged_and_not_mailed() {
        let now = Utc::now();
        let mut blocked = contact(now);
        blocked.block_signups(Source::UnsubscribePage, &META, now);
        let before = blocked.clone();
        let planned = blocked.sign_up(&intent(&["news"]), &rules(), MailAllowance::Available, now);
        let plan = planned.plan().expect("a write");
        assert_eq!(plan.after(), Some(&before));
        assert!(plan.jobs().is_empty());
    }

    #[test]
    fn a_single_opt_in_type_opts_in_a_new_person_but_only_asks_an_unsubscribed_one() {
        let now = Utc::now();
        let sign_up = |c: Contact| {
            c.sign_up(
                &intent(&["alerts"]),
                &rules(),
                MailAllowance::Available,
                now,
            )
        };
        let planned = sign_up(contact(now));
        let plan = planned.plan().unwrap();
        let status = |plan: &Plan<Option<Uuid>>| plan.after().unwrap().status(&type_id("alerts"));
        assert_eq!(status(plan), Status::OptedIn);
        assert_eq!(plan.events()[0].lawful_basis, Some(LawfulBasis::Consent));
        assert_eq!(plan.events()[0].source, Source::SignupForm);
        assert!(plan.jobs().is_empty());

        let mut left = contact(now);
        left.change_status(
            &type_id("alerts"),
            StatusChange::new(Status::Unsubscribed, Source::OneClick),
            &META,
            now,
        );
        let planned = sign_up(left);
        let plan = planned.plan().unwrap();
        assert_eq!(status(plan), Status::Unsubscribed);
        assert_eq!(plan.jobs().len(), 1, "a confirmation mail instead");
    }

    #[test]
    fn with_the_mail_allowance_spent_nothing_is_pending_and_nothing_is_mailed() {
        let now = Utc::now();
        let planned = contact(now).sign_up(&intent(&["news"]), &rules(), MailAllowance::Spent, now);
        let plan = planned.plan().unwrap();
        assert!(plan.jobs().is_empty());
        assert!(plan.after().unwrap().pending().is_empty());
        assert_eq!(*planned.value(), None);
        assert!(plan.funnel().is_empty(), "nothing was requested");
    }
}
