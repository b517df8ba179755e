//! Consent that lapses. A type's `consent_valid_days` counts from when the consent was
//! given or last renewed. `consent_renewal_days` before the end the person is asked, once
//! and by mail, whether they still want the type; renewing counts again from then and
//! records `consent_renewed`. At the end, unrenewed, the opt-in becomes `not_subscribed`
//! with source `expiry`, recorded as `consent_lapsed`.
//!
//! The sweep finds the contacts whose work is due through [`Contact::due_times`], which
//! says when that is ([`Contact::next_consent_work`]).

use chrono::{DateTime, Utc};

use super::{Contact, StatusChange};
use crate::domain::event::{EventDraft, EventKind};
use crate::domain::outbox_job::{MailKind, OutboxJob};
use crate::domain::plan::{Plan, Planned};
use crate::domain::rules::Rules;
use crate::domain::subscription_type::{Catalog, NoticeRef, SubscriptionType};
use crate::domain::{LawfulBasis, RequestMeta, Source, Status, SubscriptionTypeId};

/// What one run of the consent sweep did to one contact.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsentSwept {
    /// Types whose renewal was asked for by mail.
    pub renewals_asked: Vec<SubscriptionTypeId>,
    /// Types whose consent lapsed.
    pub lapsed: Vec<SubscriptionTypeId>,
}

/// What a renewal link did, or would do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Renewed by this click (or, on the page before the click, waiting for it): the
    /// consent now lasts until `until`.
    Now { until: DateTime<Utc> },
    /// Renewed since the link was made; a second click is harmless.
    Already { until: DateTime<Utc> },
}

/// The work due on one subscription, by its consent's end.
enum ConsentWork {
    Lapse,
    AskRenewal { ends_at: DateTime<Utc> },
}

impl Contact {
    /// A renewal mail would reach the person and may be sent: not while processing is
    /// restricted, nor to an address that bounces.
    fn may_be_asked_to_renew(&self) -> bool {
        !self.is_restricted() && !self.is_unreachable()
    }

    /// When the next consent work of this contact is due: the earliest renewal request
    /// not made yet (while one may be sent), or lapse.
    pub(super) fn next_consent_work(&self, catalog: &Catalog) -> Option<DateTime<Utc>> {
        let may_ask = self.may_be_asked_to_renew();
        self.subscriptions
            .iter()
            .filter_map(|(type_id, subscription)| {
                let subscription_type = catalog.get(type_id.as_str())?;
                let ends_at = subscription.consent_ends_at(subscription_type)?;
                let renewal = subscription
                    .consent_given_at()
                    .and_then(|given| subscription_type.consent_renewal_due(given))
                    .filter(|_| may_ask && subscription.renewal_asked_at.is_none());
                Some(renewal.map_or(ends_at, |ask| ask.min(ends_at)))
            })
            .min()
    }

    fn consent_work(
        &self,
        subscription_type: &SubscriptionType,
        now: DateTime<Utc>,
    ) -> Option<ConsentWork> {
        let subscription = self.subscription(&subscription_type.id)?;
        let ends_at = subscription.consent_ends_at(subscription_type)?;
        if ends_at <= now {
            return Some(ConsentWork::Lapse);
        }
        let ask_at = subscription
            .consent_given_at()
            .and_then(|given| subscription_type.consent_renewal_due(given))?;
        let ask = ask_at <= now
            && subscription.renewal_asked_at.is_none()
            && self.may_be_asked_to_renew();
        ask.then_some(ConsentWork::AskRenewal { ends_at })
    }

    /// Whether the consent behind this type's opt-in has reached its end (the sweep may
    /// not have recorded the lapse yet).
    pub fn consent_has_lapsed(
        &self,
        subscription_type: &SubscriptionType,
        now: DateTime<Utc>,
    ) -> bool {
        self.subscription(&subscription_type.id)
            .and_then(|s| s.consent_ends_at(subscription_type))
            .is_some_and(|ends_at| ends_at <= now)
    }

    /// Whether this type is `not_subscribed` because its consent lapsed.
    pub fn consent_lapsed(&self, subscription_type: &SubscriptionTypeId) -> bool {
        self.subscription(subscription_type)
            .is_some_and(|s| s.status == Status::NotSubscribed && s.source == Source::Expiry)
    }

    /// One run of the consent sweep on a contact found due: lapses what has ended, asks
    /// for the renewals now due. It writes even when nothing was due: the contact was
    /// found in the due index, so its entry there is out of date (the type's validity
    /// changed since it was written), and the write sets it again.
    pub fn sweep_consent(mut self, rules: &Rules, now: DateTime<Utc>) -> Planned<ConsentSwept> {
        let mut swept = ConsentSwept::default();
        let mut events = Vec::new();
        let mut jobs = Vec::new();
        for subscription_type in rules.catalog().all() {
            let type_id = &subscription_type.id;
            match self.consent_work(subscription_type, now) {
                None => {}
                Some(ConsentWork::Lapse) => {
                    let change = StatusChange::new(Status::NotSubscribed, Source::Expiry);
                    let meta = RequestMeta::default();
                    let lapse =
                        self.record_status(EventKind::ConsentLapsed, type_id, change, &meta, now);
                    events.extend(lapse);
                    swept.lapsed.push(type_id.clone());
                }
                Some(ConsentWork::AskRenewal { ends_at }) => {
                    if let Some(subscription) = self.subscriptions.get_mut(type_id) {
                        subscription.renewal_asked_at = Some(now);
                    }
                    let mail = MailKind::ConsentRenewal {
                        subscription_type: type_id.clone(),
                        expires_at: ends_at,
                    };
                    jobs.push(OutboxJob::mail(
                        self.id.clone(),
                        self.email.clone(),
                        &self.locale,
                        mail,
                        now,
                    ));
                    swept.renewals_asked.push(type_id.clone());
                }
            }
        }
        Planned::Write(Plan::keep(self, events, swept).with_jobs(jobs))
    }

    /// What a renewal link of `subscription_type` made at `link_issued_at` does, without
    /// doing it (for its page). `None`: nothing to renew (the type is not opted in on a
    /// consent that lapses).
    pub fn renewal(
        &self,
        subscription_type: &SubscriptionType,
        link_issued_at: DateTime<Utc>,
    ) -> Option<Renewal> {
        let subscription = self.subscription(&subscription_type.id)?;
        let given = subscription.consent_given_at()?;
        let until = subscription_type.consent_expiry(given)?;
        Some(if given >= link_issued_at {
            Renewal::Already { until }
        } else {
            Renewal::Now { until }
        })
    }

    /// Renews the consent to `subscription_type` on the person's click, against the
    /// notice their page showed: it counts again from now. `None`: nothing to renew.
    pub fn renew_consent(
        mut self,
        subscription_type: &SubscriptionType,
        notice: NoticeRef,
        link_issued_at: DateTime<Utc>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Option<Planned<Renewal>> {
        let until = match self.renewal(subscription_type, link_issued_at)? {
            Renewal::Already { until } => {
                return Some(Planned::Nothing(Renewal::Already { until }))
            }
            Renewal::Now { .. } => subscription_type.consent_expiry(now)?,
        };
        let type_id = &subscription_type.id;
        let subscription = self.subscriptions.get_mut(type_id)?;
        subscription.consented_at = Some(now);
        subscription.renewal_asked_at = None;
        let mut draft = EventDraft::new(EventKind::ConsentRenewed, Source::RenewalLink, meta);
        draft.subscription_type = Some(type_id.clone());
        draft.lawful_basis = Some(LawfulBasis::Consent);
        draft.consent_notice = Some(notice);
        let event = self.record(draft, now);
        Some(Planned::Write(Plan::keep(
            self,
            vec![event],
            Renewal::Now { until },
        )))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::super::tests::{contact, notice, rules_with_validity, type_id, META};
    use super::*;
    use crate::domain::Timer;

    /// `news` lasts 100 days, asked 10 days before; `offers` lasts until withdrawn.
    fn rules() -> Rules {
        rules_with_validity("news", 100, 10)
    }

    fn news(rules: &Rules) -> &SubscriptionType {
        rules.catalog().lookup("news").unwrap()
    }

    /// A stored contact opted in to `news` and `offers` on consent given at `given`.
    fn opted_in(given: DateTime<Utc>) -> Contact {
        let mut c = contact(given).with_version(1);
        for id in ["news", "offers"] {
            c.change_status(
                &type_id(id),
                StatusChange::consent(Source::PreferenceCenter, notice(id)),
                &META,
                given,
            );
        }
        c
    }

    fn swept(c: Contact, now: DateTime<Utc>) -> (Contact, Plan<ConsentSwept>) {
        let Planned::Write(plan) = c.sweep_consent(&rules(), now) else {
            panic!("a sweep writes")
        };
        (plan.after.clone().unwrap(), plan)
    }

    #[test]
    fn the_consent_is_due_for_renewal_then_for_its_lapse() {
        let given = Utc::now();
        let c = opted_in(given);
        let rules = rules();
        let due = |c: &Contact| c.due_times(rules.catalog()).get(&Timer::Consent).copied();
        assert_eq!(due(&c), Some(given + Duration::days(90)));

        let (asked, plan) = swept(c, given + Duration::days(91));
        assert_eq!(plan.value.renewals_asked, [type_id("news")]);
        assert!(plan.events.is_empty(), "asking changes no status");
        let mail = plan.jobs[0].as_mail().unwrap();
        assert_eq!(
            mail.mail,
            MailKind::ConsentRenewal {
                subscription_type: type_id("news"),
                expires_at: given + Duration::days(100),
            }
        );
        assert_eq!(due(&asked), Some(given + Duration::days(100)), "asked once");

        // Asked again by a later run: nothing more is sent.
        let (_, again) = swept(asked.clone(), given + Duration::days(95));
        assert!(again.jobs.is_empty() && again.events.is_empty());

        let (lapsed, plan) = swept(asked, given + Duration::days(100));
        assert_eq!(plan.value.lapsed, [type_id("news")]);
        let event = &plan.events[0];
        assert_eq!(event.kind, EventKind::ConsentLapsed);
        assert_eq!(event.source, Source::Expiry);
        assert_eq!(
            (event.from, event.to),
            (Some(Status::OptedIn), Some(Status::NotSubscribed))
        );
        assert_eq!(lapsed.status(&type_id("news")), Status::NotSubscribed);
        assert!(lapsed.consent_lapsed(&type_id("news")));
        assert_eq!(
            lapsed.status(&type_id("offers")),
            Status::OptedIn,
            "no validity"
        );
        assert_eq!(due(&lapsed), None);
    }

    #[test]
    fn a_restricted_or_bouncing_contact_is_not_asked_but_still_lapses() {
        let given = Utc::now();
        let mut c = opted_in(given);
        c.restricted_since = Some(given);
        let rules = rules();
        assert_eq!(
            c.due_times(rules.catalog()).get(&Timer::Consent),
            Some(&(given + Duration::days(100)))
        );
        let (_, plan) = swept(c.clone(), given + Duration::days(95));
        assert!(plan.jobs.is_empty());
        let (_, plan) = swept(c, given + Duration::days(101));
        assert_eq!(plan.value.lapsed, [type_id("news")]);
    }

    #[test]
    fn an_import_counts_from_the_consent_time_it_gave() {
        let now = Utc::now();
        let mut c = contact(now).with_version(1);
        let mut change =
            StatusChange::new(Status::OptedIn, Source::Import).with_basis(LawfulBasis::Consent);
        change.consent_notice = Some(notice("news"));
        change.consented_at = Some(now - Duration::days(120));
        let event = c
            .change_status(&type_id("news"), change, &META, now)
            .unwrap();
        assert_eq!(event.consented_at, Some(now - Duration::days(120)));
        assert!(c.consent_has_lapsed(news(&rules()), now));
        let (_, plan) = swept(c, now);
        assert_eq!(plan.value.lapsed, [type_id("news")]);
    }

    #[test]
    fn renewing_counts_again_from_the_click_once_per_link() {
        let given = Utc::now();
        let rules = rules();
        let link_made = given + Duration::days(91);
        let (asked, _) = swept(opted_in(given), link_made);
        let click = link_made + Duration::days(2);
        let Some(Planned::Write(plan)) =
            asked
                .clone()
                .renew_consent(news(&rules), notice("news"), link_made, &META, click)
        else {
            panic!("a renewal")
        };
        assert_eq!(
            plan.value,
            Renewal::Now {
                until: click + Duration::days(100)
            }
        );
        let event = &plan.events[0];
        assert_eq!(event.kind, EventKind::ConsentRenewed);
        assert_eq!(event.source, Source::RenewalLink);
        assert_eq!(event.lawful_basis, Some(LawfulBasis::Consent));
        assert!(event.records_consent());
        let renewed = plan.after.unwrap();
        let subscription = renewed.subscription(&type_id("news")).unwrap();
        assert_eq!(subscription.consent_given_at(), Some(click));
        assert_eq!(subscription.renewal_asked_at, None);
        assert_eq!(
            renewed.due_times(rules.catalog()).get(&Timer::Consent),
            Some(&(click + Duration::days(90)))
        );
        assert!(matches!(
            renewed.renew_consent(news(&rules), notice("news"), link_made, &META, click),
            Some(Planned::Nothing(Renewal::Already { .. }))
        ));
        // Nothing to renew on a type that is not opted in on consent.
        let lapsed = swept(asked, given + Duration::days(100)).0;
        assert!(lapsed
            .renew_consent(news(&rules), notice("news"), link_made, &META, click)
            .is_none());
    }

    #[test]
    fn a_contact_found_due_by_an_older_validity_is_written_again_with_its_new_time() {
        let given = Utc::now();
        // Found due after 50 days, by a validity since lengthened to 100.
        let (after, plan) = swept(opted_in(given), given + Duration::days(50));
        assert!(plan.events.is_empty() && plan.jobs.is_empty());
        assert_eq!(
            after.due_times(rules().catalog()).get(&Timer::Consent),
            Some(&(given + Duration::days(90)))
        );
    }
}
