//! Confirming a signup: the click on a confirmation link (the auto-submitted page of the
//! browser that signed up, or the page's button) or the code from the mail. Every type
//! of that signup becomes `opted_in` on the basis of consent, with the evidence of both
//! the signup and the confirmation, and how it was confirmed.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ConfirmedSignup, Contact, StatusChange};
use crate::domain::event::{ConfirmMethod, ConfirmedHow};
use crate::domain::funnel::FunnelStage;
use crate::domain::plan::{Plan, Planned};
use crate::domain::{RequestMeta, Source, SubscriptionTypeId};

/// Wrong codes one pending confirmation takes; after them its code is dead (its link
/// still works). With a million codes, five guesses succeed once in 200,000 signups.
pub const MAX_CODE_TRIES: u8 = 5;

/// Where a confirmation link stands, and what it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// Waiting for the click (as the page shows it), or confirmed by this click.
    Now {
        types: Vec<SubscriptionTypeId>,
        locale: String,
    },
    /// The link was used before; it confirmed these types. A second click is harmless.
    Already {
        types: Vec<SubscriptionTypeId>,
        locale: String,
    },
}

impl Confirmed {
    pub fn types(&self) -> &[SubscriptionTypeId] {
        match self {
            Confirmed::Now { types, .. } | Confirmed::Already { types, .. } => types,
        }
    }

    pub fn locale(&self) -> &str {
        match self {
            Confirmed::Now { locale, .. } | Confirmed::Already { locale, .. } => locale,
        }
    }
}

/// A code entered for a pending confirmation. Whether it is that confirmation's code is
/// checked by the caller, in constant time, against the code it derives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeAttempt {
    pub pending_id: Uuid,
    pub right: bool,
}

/// What a code did. A wrong code, a dead code and a reference to nothing are one answer,
/// so that the page tells nobody whether a signup was waiting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeOutcome {
    Confirmed(Confirmed),
    Refused,
}

impl Contact {
    /// What a confirmation link is about, without changing anything (for its page).
    /// `None`: nothing is pending or remembered for it any more.
    pub fn confirmation(&self, pending_id: Uuid) -> Option<Confirmed> {
        if let Some(pending) = self.pending_confirmation(pending_id) {
            return Some(Confirmed::Now {
                types: pending.types.clone(),
                locale: pending.locale.clone(),
            });
        }
        self.confirmed_signup(pending_id)
            .map(|done| Confirmed::Already {
                types: done.types.clone(),
                locale: done.locale.clone(),
            })
    }

    /// Confirms the pending signup by its link. `None` when the link can do nothing any
    /// more (the signup expired, or was withdrawn).
    pub fn confirm(
        self,
        pending_id: Uuid,
        method: ConfirmMethod,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Planned<Confirmed>> {
        match self.pending.iter().position(|p| p.id == pending_id) {
            Some(index) => Some(self.opt_in_pending(index, method, meta, now)),
            None => self.confirmation(pending_id).map(Planned::Nothing),
        }
    }

    /// Confirms the pending signup by the code from its mail. A wrong code counts against
    /// the confirmation's [`MAX_CODE_TRIES`]; once they are spent no code confirms it.
    pub fn confirm_by_code(
        mut self,
        attempt: CodeAttempt,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Planned<CodeOutcome> {
        let Some(index) = self.pending.iter().position(|p| p.id == attempt.pending_id) else {
            // The right code of a signup confirmed before: say so, as a second click does.
            return Planned::Nothing(match self.confirmation(attempt.pending_id) {
                Some(done @ Confirmed::Already { .. }) if attempt.right => {
                    CodeOutcome::Confirmed(done)
                }
                _ => CodeOutcome::Refused,
            });
        };
        let pending = &mut self.pending[index];
        if pending.code_tries >= MAX_CODE_TRIES {
            return Planned::Nothing(CodeOutcome::Refused);
        }
        if !attempt.right {
            pending.code_tries += 1;
            return Planned::Write(Plan::keep(self, Vec::new(), CodeOutcome::Refused));
        }
        self.opt_in_pending(index, ConfirmMethod::Code, meta, now)
            .map(CodeOutcome::Confirmed)
    }

    /// Opts in every type of the pending confirmation at `index`.
    fn opt_in_pending(
        mut self,
        index: usize,
        method: ConfirmMethod,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Planned<Confirmed> {
        let pending = self.pending.remove(index);
        // From the mail the relay took; from the signup when that was not recorded.
        let sent_at = pending.mailed_at.unwrap_or(pending.signup.at);
        let how = ConfirmedHow {
            method,
            seconds_since_sent: u64::try_from((now - sent_at).num_seconds()).unwrap_or(0),
        };
        let mut events = Vec::new();
        for (type_id, notice) in pending.types.iter().zip(&pending.notices) {
            let mut change = StatusChange::consent(Source::ConfirmLink, notice.clone());
            change.signup = Some(pending.signup.clone());
            change.confirmed = Some(how);
            events.extend(self.change_status(type_id, change, meta, now));
        }
        // The person read the mail and clicked: the mailbox works, whatever bounced before.
        events.extend(self.clear_unreachable(Source::ConfirmLink, meta, now));
        // The language of the mail they answered becomes theirs.
        self.locale.clone_from(&pending.locale);
        self.confirmed.retain(|done| done.link_expires_at > now);
        self.confirmed.push(ConfirmedSignup {
            pending_id: pending.id,
            types: pending.types.clone(),
            locale: pending.locale.clone(),
            link_expires_at: pending.expires_at,
        });
        let step = pending
            .funnel_step(FunnelStage::Confirmed(method))
            .map(|mut step| {
                step.seconds = Some(how.seconds_since_sent);
                step
            });
        let confirmed = Confirmed::Now {
            types: pending.types,
            locale: pending.locale,
        };
        // A person who was erased and signs up again has given new consent themselves.
        Planned::Write(
            Plan::keep(self, events, confirmed)
                .clearing_tombstone()
                .with_funnel(step),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{notice, type_id, META};

    use super::*;

    use crate::domain::{EventKind, LawfulBasis, Status};

    fn signed_up(now: DateTime<Utc>) -> (Contact, Uuid) {
        super::super::tests::signed_up("nl", now)
    }

    #[test]
    fn the_click_opts_in_with_consent_the_notice_and_both_evidences() {
        let now = Utc::now();
        let (pending, id) = signed_up(now);
        let Some(Planned::Write(plan)) = pending.confirm(id, ConfirmMethod::Button, &META, now)
        else {
            panic!("a write")
        };
        assert_eq!(
            plan.value,
            Confirmed::Now {
                types: vec![type_id("news")],
                locale: "nl".into()
            }
        );
        let after = plan.after.as_ref().unwrap();
        assert_eq!(after.status(&type_id("news")), Status::OptedIn);
        assert_eq!(after.locale(), "nl", "the mail's language becomes theirs");
        assert!(after.pending().is_empty());
        let event = &plan.events[0];
        assert_eq!(event.kind, EventKind::StatusChanged);
        assert_eq!(event.source, Source::ConfirmLink);
        assert_eq!(event.lawful_basis, Some(LawfulBasis::Consent));
        assert_eq!(event.consent_notice, Some(notice("news")));
        assert_eq!(event.signup.as_ref().unwrap().source, Source::SignupForm);
        assert!(plan.clear_tombstone);
    }

    #[test]
    fn a_second_click_changes_nothing_and_still_names_the_types() {
        let now = Utc::now();
        let (pending, id) = signed_up(now);
        let Some(Planned::Write(plan)) = pending.confirm(id, ConfirmMethod::Button, &META, now)
        else {
            panic!("a write")
        };
        let confirmed = plan.after.unwrap();
        match confirmed
            .clone()
            .confirm(id, ConfirmMethod::Button, &META, now)
        {
            Some(Planned::Nothing(Confirmed::Already { types, .. })) => {
                assert_eq!(types, [type_id("news")]);
            }
            other => panic!("expected already confirmed, got {other:?}"),
        }
        assert_eq!(
            confirmed.confirmation(id),
            Some(Confirmed::Already {
                types: vec![type_id("news")],
                locale: "nl".into()
            })
        );
    }

    #[test]
    fn an_unknown_or_forgotten_confirmation_can_do_nothing() {
        let now = Utc::now();
        let (pending, _) = signed_up(now);
        assert!(pending
            .confirm(Uuid::now_v7(), ConfirmMethod::Button, &META, now)
            .is_none());
    }

    #[test]
    fn the_event_records_the_method_and_the_seconds_since_the_mail_was_sent() {
        let start = Utc::now();
        let (mut pending, id) = signed_up(start);
        pending.pending[0].mailed_at = Some(start + chrono::Duration::seconds(5));
        pending.pending[0].funnel = Some("hosted".into());
        let later = start + chrono::Duration::seconds(47);
        let Some(Planned::Write(plan)) =
            pending.confirm(id, ConfirmMethod::SameBrowser, &META, later)
        else {
            panic!("a write")
        };
        assert_eq!(
            plan.events[0].confirm_method,
            Some(ConfirmMethod::SameBrowser)
        );
        assert_eq!(plan.events[0].seconds_since_sent, Some(42));
        let steps = plan.funnel();
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].stage,
            FunnelStage::Confirmed(ConfirmMethod::SameBrowser)
        );
        assert_eq!(steps[0].seconds, Some(42));
        assert_eq!(steps[0].source, "hosted");
    }

    #[test]
    fn the_right_code_confirms_and_five_wrong_ones_kill_it() {
        let now = Utc::now();
        let (pending, id) = signed_up(now);
        let right = CodeAttempt {
            pending_id: id,
            right: true,
        };
        let wrong = CodeAttempt {
            pending_id: id,
            right: false,
        };
        match pending.clone().confirm_by_code(right, &META, now) {
            Planned::Write(plan) => {
                assert!(matches!(
                    plan.value,
                    CodeOutcome::Confirmed(Confirmed::Now { .. })
                ));
                assert_eq!(plan.events[0].confirm_method, Some(ConfirmMethod::Code));
                let after = plan.after.unwrap();
                assert_eq!(after.status(&type_id("news")), Status::OptedIn);
                assert!(
                    matches!(
                        after.confirm_by_code(right, &META, now),
                        Planned::Nothing(CodeOutcome::Confirmed(Confirmed::Already { .. }))
                    ),
                    "the right code again says already confirmed"
                );
            }
            Planned::Nothing(other) => panic!("expected a write, got {other:?}"),
        }
        let mut contact = pending;
        for try_number in 1..=MAX_CODE_TRIES {
            let Planned::Write(plan) = contact.confirm_by_code(wrong, &META, now) else {
                panic!("a wrong code is counted")
            };
            assert_eq!(plan.value, CodeOutcome::Refused);
            assert!(plan.events.is_empty());
            contact = plan.after.unwrap();
            assert_eq!(contact.pending()[0].code_tries, try_number);
        }
        assert!(matches!(
            contact.clone().confirm_by_code(right, &META, now),
            Planned::Nothing(CodeOutcome::Refused)
        ));
        assert!(
            matches!(
                contact.confirm(id, ConfirmMethod::Button, &META, now),
                Some(Planned::Write(_))
            ),
            "the link still works"
        );
    }

    #[test]
    fn a_code_for_a_confirmation_that_is_not_there_is_refused_without_a_write() {
        let now = Utc::now();
        let (pending, _) = signed_up(now);
        let attempt = CodeAttempt {
            pending_id: Uuid::now_v7(),
            right: true,
        };
        assert!(matches!(
            pending.confirm_by_code(attempt, &META, now),
            Planned::Nothing(CodeOutcome::Refused)
        ));
    }
}
