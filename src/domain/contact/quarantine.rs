//! The quarantine: a public signup the firewall judged risky is held on the contact
//! instead of mailed. An admin releases it (the confirmation goes out as the signup would
//! have sent it) or drops it; otherwise it expires with the confirmation TTL. Held on the
//! contact, it lives in the contact's own record: an erasure takes it in the same write,
//! and the due index of [`Timer::Quarantine`](crate::domain::Timer) both expires and lists
//! held signups.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::signup::Ask;
use super::{Contact, OptInRefused, SignupIntent};
use crate::domain::contact_id::ContactId;
use crate::domain::event::{RequestMeta, SignupEvidence};
use crate::domain::plan::{Announcement, Plan, Planned};
use crate::domain::rules::{MailAllowance, Rules};
use crate::domain::status::Status;
use crate::domain::subscription_type::{NoticeRef, SubscriptionTypeId};

/// Why a signup was held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineReason {
    /// A throw-away domain, with `signup.disposable_domains = "quarantine"`.
    DisposableDomain,
    /// The hosted form came back sooner after it was shown than a person fills it in.
    TooFast,
    /// Too many unconfirmed signups from the client's network within the hour.
    IpBurst,
}

impl QuarantineReason {
    /// The reason's name in the listing, webhooks and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::DisposableDomain => "disposable_domain",
            QuarantineReason::TooFast => "too_fast",
            QuarantineReason::IpBurst => "ip_burst",
        }
    }
}

/// A signup held instead of mailed: what it asked for, with the evidence of the request,
/// until it is released, dropped or expires.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeldSignup {
    pub id: Uuid,
    pub reason: QuarantineReason,
    pub types: Vec<SubscriptionTypeId>,
    /// The notice shown for each type, in the order of `types`.
    pub notices: Vec<NoticeRef>,
    pub locale: String,
    pub expires_at: DateTime<Utc>,
    /// The (latest) request that was held: its time, door, form and client.
    pub signup: SignupEvidence,
    /// Its confirmation funnel's source key, counted when it is released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funnel: Option<String>,
}

/// How the API and webhooks name a held signup: the contact's id and the held signup's,
/// as `<contact id>.<held id>`. The contact id finds the record; the held id makes sure
/// a release or drop reaches the signup that was listed, not a later one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineId {
    pub contact: ContactId,
    pub held: Uuid,
}

impl fmt::Display for QuarantineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.contact.as_str(), self.held.simple())
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a quarantine id")]
pub struct InvalidQuarantineId;

impl FromStr for QuarantineId {
    type Err = InvalidQuarantineId;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (contact, held) = text.split_once('.').ok_or(InvalidQuarantineId)?;
        Ok(Self {
            contact: ContactId::parse(contact).map_err(|_| InvalidQuarantineId)?,
            held: Uuid::try_parse(held).map_err(|_| InvalidQuarantineId)?,
        })
    }
}

/// What a release did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Asked to confirm (or opted in, for single opt-in types), as the signup would have.
    Released,
    /// No held signup with that id (released, dropped or expired meanwhile).
    NotFound,
    /// The person blocked confirmation requests, or the address's mail cap is spent;
    /// the signup stays held.
    Refused(OptInRefused),
}

impl Contact {
    pub fn held(&self) -> Option<&HeldSignup> {
        self.held.as_ref()
    }

    /// Holds a signup instead of mailing: the types not opted in yet are kept (merged into
    /// a signup already held, which keeps its id) with the request's evidence, until the
    /// confirmation TTL from now. Answers whether anything is held.
    ///
    /// Like [`Contact::sign_up`], always writes, so that a held signup costs the same work
    /// as any other; a person who blocked signups is not changed.
    pub fn hold_signup(
        self,
        intent: &SignupIntent,
        reason: QuarantineReason,
        rules: &Rules,
        now: DateTime<Utc>,
    ) -> Planned<bool> {
        let asked: Vec<_> = intent
            .types
            .iter()
            .filter(|(type_id, _)| self.status(type_id) != Status::OptedIn)
            .cloned()
            .collect();
        if self.is_signup_blocked() || asked.is_empty() {
            return Planned::Write(Plan::keep(self, Vec::new(), false));
        }
        let mut contact = self;
        let (id, mut types, mut notices) = match contact.held.take() {
            Some(held) => (held.id, held.types, held.notices),
            None => (Uuid::now_v7(), Vec::new(), Vec::new()),
        };
        for (type_id, notice) in asked {
            match types.iter().position(|t| *t == type_id) {
                Some(i) => notices[i] = notice,
                None => {
                    types.push(type_id);
                    notices.push(notice);
                }
            }
        }
        let held = HeldSignup {
            id,
            reason,
            types,
            notices,
            locale: intent.locale.clone(),
            expires_at: crate::clock::later(now, rules.confirmation_ttl()),
            signup: intent.evidence(now),
            funnel: Some(
                intent
                    .door
                    .funnel_key(intent.form_id.as_ref().map(crate::domain::Evidence::as_str)),
            ),
        };
        contact.held = Some(held.clone());
        Planned::Write(
            Plan::keep(contact, Vec::new(), true)
                .announcing(Announcement::Quarantined(Box::new(held))),
        )
    }

    /// Releases the held signup `id`: it is planned as the signup it was, with its own
    /// evidence, under the same rules and mail cap, and no longer held.
    pub fn release_held(
        self,
        id: Uuid,
        rules: &Rules,
        mail: MailAllowance,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Planned<Release> {
        let Some(held) = self.held.as_ref().filter(|h| h.id == id).cloned() else {
            return Planned::Nothing(Release::NotFound);
        };
        if self.is_signup_blocked() {
            return Planned::Nothing(Release::Refused(OptInRefused::Blocked));
        }
        let mut contact = self;
        contact.held = None;
        let types: Vec<_> = held.types.into_iter().zip(held.notices).collect();
        let asked = Ask {
            types: &types,
            locale: &held.locale,
            evidence: held.signup,
            meta,
            funnel: held.funnel,
        };
        let planned = contact.ask(asked, rules, mail, now);
        if mail == MailAllowance::Spent && planned.value().withheld_mail {
            return Planned::Nothing(Release::Refused(OptInRefused::MailLimitReached));
        }
        planned.map(|_| Release::Released)
    }

    /// Drops the held signup `id` unasked; the contact goes too when it held nothing
    /// else. Answers whether there was one.
    pub fn drop_held(self, id: Uuid) -> Planned<bool> {
        if self.held.as_ref().is_none_or(|held| held.id != id) {
            return Planned::Nothing(false);
        }
        Planned::Write(self.without_held(true))
    }

    /// Drops the held signup when it expired by `now`; answers whether it did.
    pub fn expire_held(self, now: DateTime<Utc>) -> Planned<bool> {
        if self.held.as_ref().is_none_or(|held| held.expires_at > now) {
            return Planned::Nothing(false);
        }
        Planned::Write(self.without_held(true))
    }

    fn without_held<T>(mut self, value: T) -> Plan<T> {
        self.held = None;
        if self.holds_nothing_but_the_address() {
            Plan::delete(value)
        } else {
            Plan::keep(self, Vec::new(), value)
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::super::tests::{contact, intent, notice, rules, type_id, META};
    use super::super::StatusChange;
    use super::*;
    use crate::domain::Source;

    fn held_contact(types: &[&str], now: DateTime<Utc>) -> Contact {
        let planned =
            contact(now).hold_signup(&intent(types), QuarantineReason::TooFast, &rules(), now);
        match planned {
            Planned::Write(plan) => plan.after.expect("kept"),
            Planned::Nothing(_) => panic!("a hold writes"),
        }
    }

    #[test]
    fn a_held_signup_mails_nothing_keeps_its_evidence_and_is_announced() {
        let now = Utc::now();
        let planned = contact(now).hold_signup(
            &intent(&["news", "alerts"]),
            QuarantineReason::DisposableDomain,
            &rules(),
            now,
        );
        let plan = planned.plan().expect("a write");
        assert_eq!(plan.value(), &true);
        assert!(plan.jobs().is_empty(), "nothing is mailed");
        assert!(
            plan.events().is_empty(),
            "no status changes, single opt-in included"
        );
        let after = plan.after().unwrap();
        assert!(after.pending().is_empty());
        let held = after.held().expect("held");
        assert_eq!(held.types, [type_id("news"), type_id("alerts")]);
        assert_eq!(held.reason, QuarantineReason::DisposableDomain);
        assert_eq!(held.expires_at, now + Duration::days(7));
        assert_eq!(held.signup.form_id.as_deref(), Some("footer"));
        assert_eq!(
            after.due_times(rules().catalog())[&crate::domain::Timer::Quarantine],
            held.expires_at
        );
        assert!(matches!(
            &plan.announcement,
            Some(Announcement::Quarantined(h)) if **h == *held
        ));
    }

    #[test]
    fn a_second_hold_merges_into_the_first_and_keeps_its_id() {
        let now = Utc::now();
        let first = held_contact(&["news"], now);
        let first_id = first.held().unwrap().id;
        let later = now + Duration::hours(1);
        let planned = first.hold_signup(
            &intent(&["offers", "news"]),
            QuarantineReason::IpBurst,
            &rules(),
            later,
        );
        let after = planned.plan().unwrap().after().unwrap().clone();
        let held = after.held().unwrap();
        assert_eq!(held.id, first_id);
        assert_eq!(held.types, [type_id("news"), type_id("offers")]);
        assert_eq!(held.reason, QuarantineReason::IpBurst);
        assert_eq!(held.expires_at, later + Duration::days(7));
    }

    #[test]
    fn opted_in_types_and_blocked_people_are_not_held() {
        let now = Utc::now();
        let mut opted_in = contact(now);
        opted_in.change_status(
            &type_id("news"),
            StatusChange::consent(Source::ConfirmLink, notice("news")),
            &META,
            now,
        );
        let planned =
            opted_in.hold_signup(&intent(&["news"]), QuarantineReason::TooFast, &rules(), now);
        let plan = planned.plan().expect("a write all the same");
        assert_eq!(plan.value(), &false);
        assert!(plan.after().unwrap().held().is_none());
        assert!(plan.announcement.is_none());

        let mut blocked = contact(now);
        blocked.block_signups(Source::UnsubscribePage, &META, now);
        let planned = blocked.hold_signup(
            &intent(&["offers"]),
            QuarantineReason::TooFast,
            &rules(),
            now,
        );
        assert!(planned.plan().unwrap().after().unwrap().held().is_none());
    }

    #[test]
    fn a_release_asks_to_confirm_with_the_held_evidence_and_respects_the_cap() {
        let now = Utc::now();
        let held = held_contact(&["news", "alerts"], now);
        let id = held.held().unwrap().id;
        let signed_at = held.held().unwrap().signup.at;
        let later = now + Duration::hours(2);

        let capped = held
            .clone()
            .release_held(id, &rules(), MailAllowance::Spent, &META, later);
        assert!(matches!(
            capped,
            Planned::Nothing(Release::Refused(OptInRefused::MailLimitReached))
        ));
        assert!(matches!(
            held.clone().release_held(
                Uuid::now_v7(),
                &rules(),
                MailAllowance::Available,
                &META,
                later
            ),
            Planned::Nothing(Release::NotFound)
        ));

        let planned = held.release_held(id, &rules(), MailAllowance::Available, &META, later);
        assert!(planned.mails_others_requested());
        let plan = planned.plan().unwrap();
        assert_eq!(plan.value(), &Release::Released);
        let after = plan.after().unwrap();
        assert!(after.held().is_none());
        assert_eq!(after.pending().len(), 1);
        assert_eq!(after.pending()[0].types, [type_id("news")]);
        assert_eq!(
            after.pending()[0].signup.at,
            signed_at,
            "the signup's own time"
        );
        assert_eq!(after.pending()[0].locale, "nl");
        assert_eq!(after.status(&type_id("alerts")), Status::OptedIn);
    }

    #[test]
    fn a_drop_or_expiry_removes_the_signup_and_a_contact_that_held_nothing_else() {
        let now = Utc::now();
        let held = held_contact(&["news"], now);
        let id = held.held().unwrap().id;
        assert!(matches!(
            held.clone().drop_held(Uuid::now_v7()),
            Planned::Nothing(false)
        ));
        let dropped = held.clone().drop_held(id);
        assert!(
            dropped.plan().unwrap().after().is_none(),
            "nothing else was held"
        );

        assert!(matches!(
            held.clone().expire_held(now + Duration::days(6)),
            Planned::Nothing(false)
        ));
        let expired = held.expire_held(now + Duration::days(7));
        assert!(expired.plan().unwrap().after().is_none());

        let mut known = held_contact(&["news"], now);
        known.change_status(
            &type_id("offers"),
            StatusChange::consent(Source::ConfirmLink, notice("offers")),
            &META,
            now,
        );
        let own = known.held().unwrap().id;
        let kept = known.drop_held(own);
        let after = kept.plan().unwrap().after().expect("the contact stays");
        assert!(after.held().is_none());
        assert!(after.due_times(rules().catalog()).is_empty());
    }

    #[test]
    fn quarantine_ids_round_trip_and_refuse_garbage() {
        let id = QuarantineId {
            contact: super::super::tests::contact_id("c1"),
            held: Uuid::now_v7(),
        };
        assert_eq!(id.to_string().parse::<QuarantineId>(), Ok(id));
        for bad in ["", "abc", "c1c1.x", ".", "zz.0"] {
            assert!(bad.parse::<QuarantineId>().is_err(), "{bad}");
        }
    }
}
