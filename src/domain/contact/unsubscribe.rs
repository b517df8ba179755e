//! Leaving: RFC 8058 one-click and the unsubscribe page, honoured at once; unsubscribe
//! from all; and the unsubscribe page's "resubscribe", which only ever asks again by mail.
//!
//! Two unsubscribe links carry no type: the one in a confirmation mail cancels that
//! pending signup (and may block further confirmation requests), and the one in a
//! "your preferences link" mail blocks further confirmation requests.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ConfirmationRequest, Contact, StatusChange};
use crate::domain::funnel::FunnelStage;
use crate::domain::plan::{Plan, Planned};
use crate::domain::rules::{MailAllowance, Rules};
use crate::domain::{NoticeRef, RequestMeta, SignupEvidence, Source, Status, SubscriptionTypeId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnsubscribeTarget {
    /// Leave one subscription type.
    Type(SubscriptionTypeId),
    /// Withdraw the pending signup a confirmation mail was about.
    Signup(Uuid),
    /// Stop confirmation requests (the link of a mail someone else asked for).
    Requests,
}

/// On a cancelled signup, whether the person also asked not to be asked again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockRequests {
    Yes,
    No,
}

/// What an unsubscribe link is about, before or after its POST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribed {
    pub target: UnsubscribeTarget,
    /// The types the link concerns (for a cancelled signup, the types it asked for; empty
    /// when nothing is pending for it any more).
    pub types: Vec<SubscriptionTypeId>,
    /// Every type the link concerns is already unsubscribed (as read before any change).
    pub already_unsubscribed: bool,
    /// Confirmation requests are blocked (after the change, if any).
    pub requests_blocked: bool,
}

impl Unsubscribed {
    /// What a link says when nothing is held for it any more: its type, if it names one.
    pub fn nothing_held(target: UnsubscribeTarget) -> Self {
        let types = match &target {
            UnsubscribeTarget::Type(type_id) => vec![type_id.clone()],
            UnsubscribeTarget::Signup(_) | UnsubscribeTarget::Requests => Vec::new(),
        };
        Unsubscribed {
            target,
            types,
            already_unsubscribed: false,
            requests_blocked: false,
        }
    }
}

impl Contact {
    /// What the unsubscribe page shows before anything is done.
    pub fn describe_unsubscribe(&self, target: UnsubscribeTarget) -> Unsubscribed {
        let types = match &target {
            UnsubscribeTarget::Type(type_id) => vec![type_id.clone()],
            UnsubscribeTarget::Signup(pending) => self
                .pending_confirmation(*pending)
                .map(|p| p.types.clone())
                .unwrap_or_default(),
            UnsubscribeTarget::Requests => Vec::new(),
        };
        let already_unsubscribed =
            !types.is_empty() && types.iter().all(|t| self.status(t) == Status::Unsubscribed);
        Unsubscribed {
            target,
            types,
            already_unsubscribed,
            requests_blocked: self.is_signup_blocked(),
        }
    }

    /// Leaves what the link is about. `source` is `one_click` or `unsubscribe_page`.
    pub fn unsubscribe(
        mut self,
        target: UnsubscribeTarget,
        source: Source,
        block: BlockRequests,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Planned<Unsubscribed> {
        let mut outcome = self.describe_unsubscribe(target.clone());
        let pending_before = self.pending.clone();
        let mut events = Vec::new();
        for type_id in &outcome.types {
            self.withdraw_pending(type_id, &target);
            if self.status(type_id) == Status::OptedIn {
                events.extend(self.change_status(
                    type_id,
                    StatusChange::new(Status::Unsubscribed, source),
                    meta,
                    now,
                ));
            }
        }
        let blocks = match target {
            UnsubscribeTarget::Requests => true,
            UnsubscribeTarget::Signup(_) => block == BlockRequests::Yes,
            UnsubscribeTarget::Type(_) => false,
        };
        if blocks {
            events.extend(self.block_signups(source, meta, now));
        }
        outcome.requests_blocked = self.is_signup_blocked();
        if events.is_empty() && self.pending.len() == pending_before.len() {
            return Planned::Nothing(outcome);
        }
        let withdrawn = self.funnel_removed(&pending_before, FunnelStage::Cancelled);
        if self.holds_nothing_but_the_address() {
            // Nothing but a withdrawn signup was held: keep no personal data at all.
            return Planned::Write(Plan::delete(outcome).with_funnel(withdrawn));
        }
        Planned::Write(Plan::keep(self, events, outcome).with_funnel(withdrawn))
    }

    /// Unsubscribe from all, as one change: every type not yet unsubscribed becomes
    /// `unsubscribed` (a no on record, which no admin can turn into a yes without evidence
    /// of new consent) and every pending signup is withdrawn. All its events share the
    /// request and the time.
    pub fn unsubscribe_all(
        mut self,
        rules: &Rules,
        source: Source,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Planned<Contact> {
        let pending_before = self.pending.clone();
        match self.leave_everything(rules, source, meta, now) {
            Some(events) => {
                let withdrawn = self.funnel_removed(&pending_before, FunnelStage::Cancelled);
                Planned::Write(Plan::keep(self.clone(), events, self).with_funnel(withdrawn))
            }
            None => Planned::Nothing(self),
        }
    }

    /// The change behind unsubscribe from all; `None` when there was nothing to leave.
    pub(super) fn leave_everything(
        &mut self,
        rules: &Rules,
        source: Source,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Vec<crate::domain::Event>> {
        let withdrew = !self.pending.is_empty();
        self.pending.clear();
        let mut events = Vec::new();
        for subscription_type in rules.catalog().all() {
            events.extend(self.change_status(
                &subscription_type.id,
                StatusChange::new(Status::Unsubscribed, source),
                meta,
                now,
            ));
        }
        (withdrew || !events.is_empty()).then_some(events)
    }

    /// "Resubscribe" on the unsubscribe page: a new confirmation mail for the link's type,
    /// never a direct opt-in, since whoever holds the link need not own the address. The
    /// answer is the same whether or not a mail goes, so the page tells nothing.
    /// `notice` names the link's type and the notice shown today in the link's language.
    pub fn resubscribe(
        mut self,
        notice: NoticeRef,
        locale: &str,
        rules: &Rules,
        mail: MailAllowance,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Planned<()> {
        if mail == MailAllowance::Spent
            || self.is_signup_blocked()
            || self.status(&notice.id) == Status::OptedIn
        {
            return Planned::Nothing(());
        }
        let job = self.request_confirmation(
            ConfirmationRequest {
                types: vec![notice.id.clone()],
                notices: vec![notice],
                locale: locale.to_string(),
                ttl: rules.confirmation_ttl(),
                signup: SignupEvidence::from_request(Source::UnsubscribePage, meta, now),
                remind_after: rules.reminder_after(),
                funnel: None,
            },
            now,
        );
        Planned::Write(Plan::keep(self, Vec::new(), ()).with_jobs([job]))
    }

    /// Removes the type from pending signups (or the whole signup the link was about).
    fn withdraw_pending(&mut self, type_id: &SubscriptionTypeId, target: &UnsubscribeTarget) {
        for pending in &mut self.pending {
            if let Some(index) = pending.types.iter().position(|t| t == type_id) {
                pending.types.remove(index);
                pending.notices.retain(|n| &n.id != type_id);
            }
        }
        self.pending
            .retain(|p| !p.types.is_empty() && *target != UnsubscribeTarget::Signup(p.id));
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{contact, notice, rules, signed_up, type_id, META};

    use super::*;

    fn opted_in(types: &[&str], now: DateTime<Utc>) -> Contact {
        let mut c = contact(now);
        for t in types {
            c.change_status(
                &type_id(t),
                StatusChange::consent(Source::ConfirmLink, notice(t)),
                &META,
                now,
            );
        }
        c
    }

    #[test]
    fn one_click_unsubscribes_one_type_and_a_repeat_changes_nothing() {
        let now = Utc::now();
        let c = opted_in(&["news", "offers"], now);
        let target = UnsubscribeTarget::Type(type_id("news"));
        let Planned::Write(plan) = c.unsubscribe(
            target.clone(),
            Source::OneClick,
            BlockRequests::No,
            &META,
            now,
        ) else {
            panic!("a write")
        };
        let after = plan.after.unwrap();
        assert_eq!(after.status(&type_id("news")), Status::Unsubscribed);
        assert_eq!(after.status(&type_id("offers")), Status::OptedIn);
        assert_eq!(plan.events[0].source, Source::OneClick);
        let again = after.unsubscribe(target, Source::OneClick, BlockRequests::No, &META, now);
        assert!(matches!(
            again,
            Planned::Nothing(Unsubscribed {
                already_unsubscribed: true,
                ..
            })
        ));
    }

    #[test]
    fn cancelling_the_only_signup_of_a_new_address_keeps_nothing_and_may_block() {
        let now = Utc::now();
        let (pending, id) = signed_up("en", now);
        let cancel = pending.clone().unsubscribe(
            UnsubscribeTarget::Signup(id),
            Source::UnsubscribePage,
            BlockRequests::No,
            &META,
            now,
        );
        assert!(
            matches!(&cancel, Planned::Write(plan) if plan.after.is_none()),
            "deleted"
        );
        let Planned::Write(blocked) = pending.unsubscribe(
            UnsubscribeTarget::Signup(id),
            Source::UnsubscribePage,
            BlockRequests::Yes,
            &META,
            now,
        ) else {
            panic!("a write")
        };
        let after = blocked.after.unwrap();
        assert!(after.is_signup_blocked());
        assert!(after.pending().is_empty());
        assert!(blocked.value.requests_blocked);
    }

    #[test]
    fn unsubscribe_all_is_one_change_that_leaves_every_type_and_withdraws_signups() {
        let now = Utc::now();
        let mut c = opted_in(&["news"], now);
        c.request_confirmation(
            ConfirmationRequest {
                types: vec![type_id("offers")],
                notices: vec![notice("offers")],
                locale: "en".into(),
                ttl: chrono::Duration::days(7),
                signup: SignupEvidence::from_request(Source::SignupApi, &META, now),
                remind_after: None,
                funnel: Some("api".into()),
            },
            now,
        );
        let Planned::Write(plan) =
            c.unsubscribe_all(&rules(), Source::PreferenceCenter, &META, now)
        else {
            panic!("a write")
        };
        let after = plan.after.unwrap();
        for t in ["news", "offers", "alerts"] {
            assert_eq!(after.status(&type_id(t)), Status::Unsubscribed, "{t}");
        }
        assert!(after.pending().is_empty());
        assert_eq!(plan.events.len(), 3);
        assert!(plan
            .events
            .iter()
            .all(|e| e.at == now && e.meta.request_id.as_deref() == Some("req-1")));
        assert!(matches!(
            after.unsubscribe_all(&rules(), Source::PreferenceCenter, &META, now),
            Planned::Nothing(_)
        ));
    }

    #[test]
    fn resubscribe_only_ever_asks_by_mail_and_never_a_blocked_or_opted_in_person() {
        let now = Utc::now();
        let mut left = opted_in(&["news"], now);
        left.change_status(
            &type_id("news"),
            StatusChange::new(Status::Unsubscribed, Source::OneClick),
            &META,
            now,
        );
        let Planned::Write(plan) = left.clone().resubscribe(
            notice("news"),
            "en",
            &rules(),
            MailAllowance::Available,
            &META,
            now,
        ) else {
            panic!("a write")
        };
        assert_eq!(plan.jobs.len(), 1);
        assert_eq!(
            plan.after.unwrap().status(&type_id("news")),
            Status::Unsubscribed
        );
        let mut blocked = left.clone();
        blocked.block_signups(Source::UnsubscribePage, &META, now);
        assert!(matches!(
            blocked.resubscribe(
                notice("news"),
                "en",
                &rules(),
                MailAllowance::Available,
                &META,
                now
            ),
            Planned::Nothing(())
        ));
        assert!(matches!(
            left.resubscribe(
                notice("news"),
                "en",
                &rules(),
                MailAllowance::Spent,
                &META,
                now
            ),
            Planned::Nothing(())
        ));
    }
}
