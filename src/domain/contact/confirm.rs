//! The click on a confirmation link: every type of that signup becomes `opted_in` on the
//! basis of consent, with the evidence of both the signup and the click.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ConfirmedSignup, Contact, StatusChange};
use crate::domain::plan::{Plan, Planned};
use crate::domain::{RequestMeta, Source, SubscriptionTypeId};

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

    /// Confirms the pending signup. `None` when the link can do nothing any more (the
    /// signup expired, or was withdrawn).
    pub fn confirm(
        mut self,
        pending_id: Uuid,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Planned<Confirmed>> {
        let Some(index) = self.pending.iter().position(|p| p.id == pending_id) else {
            return self.confirmation(pending_id).map(Planned::Nothing);
        };
        let pending = self.pending.remove(index);
        let mut events = Vec::new();
        for (type_id, notice) in pending.types.iter().zip(&pending.notices) {
            let mut change = StatusChange::consent(Source::ConfirmLink, notice.clone());
            change.signup = Some(pending.signup.clone());
            events.extend(self.change_status(type_id, change, meta, now));
        }
        // The person read the mail and clicked: the mailbox works, whatever bounced before.
        events.extend(self.clear_unreachable(Source::ConfirmLink, meta, now));
        // The language of the mail they answered becomes theirs.
        self.locale.clone_from(&pending.locale);
        self.confirmed.retain(|done| done.link_expires_at > now);
        self.confirmed.push(ConfirmedSignup {
            pending_id,
            types: pending.types.clone(),
            locale: pending.locale.clone(),
            link_expires_at: pending.expires_at,
        });
        let confirmed = Confirmed::Now {
            types: pending.types,
            locale: pending.locale,
        };
        // A person who was erased and signs up again has given new consent themselves.
        Some(Planned::Write(
            Plan::keep(self, events, confirmed).clearing_tombstone(),
        ))
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
        let Some(Planned::Write(plan)) = pending.confirm(id, &META, now) else {
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
        let Some(Planned::Write(plan)) = pending.confirm(id, &META, now) else {
            panic!("a write")
        };
        let confirmed = plan.after.unwrap();
        match confirmed.clone().confirm(id, &META, now) {
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
        assert!(pending.confirm(Uuid::now_v7(), &META, now).is_none());
    }
}
