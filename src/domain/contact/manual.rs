//! Changes by an admin or an import, with their lawful basis, and asking someone to
//! confirm. The rules that keep them honest: an opt-in needs a basis; `consent` needs
//! evidence of it (or the person is asked by a double opt-in instead); an `unsubscribed`
//! person is never opted in again without evidence of new consent; an erased person is
//! not quietly re-added; and asking someone to confirm respects their block on such
//! requests and the per-address mail cap, whichever door the request came through.

use chrono::{DateTime, Utc};

use super::{ConfirmationRequest, Contact, StatusChange};
use crate::domain::evidence::Evidence;
use crate::domain::plan::{Plan, Planned};
use crate::domain::rules::{MailAllowance, Rules};
use crate::domain::{
    LawfulBasis, RequestMeta, SignupEvidence, Source, Status, SubscriptionType, Tombstone,
};

/// One manual change, parsed.
#[derive(Clone, Debug)]
pub struct ManualChange {
    pub subscription_type: SubscriptionType,
    pub status: Status,
    pub lawful_basis: Option<LawfulBasis>,
    pub explanation: Option<Evidence>,
    /// Where and when consent was given: free text or a reference.
    pub consent_evidence: Option<Evidence>,
    /// Ask the person by a double opt-in instead of recording an opt-in.
    pub send_confirmation: bool,
    /// `admin_api` or `import`.
    pub source: Source,
    /// When the person gave the consent, where not now: a consent that lapses counts
    /// from it.
    pub consented_at: Option<DateTime<Utc>>,
}

/// Why asking someone to confirm sent nothing; never silent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptInRefused {
    /// Only the person (through their preferences) or an admin's explicit
    /// `DELETE /v1/contacts/{email}/signup-block` lifts it.
    #[error("this person asked not to be sent confirmation requests; lift the signup block first (DELETE /v1/contacts/{{email}}/signup-block)")]
    Blocked,
    #[error("this address has had as many confirmation mails as allowed today")]
    MailLimitReached,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManualChangeError {
    #[error("lawful_basis: an opt-in needs a lawful basis")]
    BasisRequired,
    #[error("consent_evidence: the basis 'consent' needs consent_evidence, or send_confirmation: true to ask the person")]
    EvidenceRequired,
    #[error("consent_evidence: this person unsubscribed; opting them in again needs evidence of new consent")]
    Unsubscribed,
    #[error("consent_evidence: this person's data was erased; re-adding them needs evidence of new consent")]
    Erased,
    #[error("send_confirmation: a confirmation can only be sent for status opted_in")]
    ConfirmationNeedsOptIn,
    #[error("send_confirmation: {0}")]
    OptIn(#[from] OptInRefused),
    #[error("consented_at: only an opt-in on the basis of consent has a consent time")]
    ConsentedAtWithoutConsent,
    #[error("consented_at: the consent cannot have been given in the future")]
    ConsentedAtInFuture,
}

/// What a manual change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualOutcome {
    Changed,
    Unchanged,
    ConfirmationSent,
}

/// The answer to a manual change: what it did, the status of its type afterwards, and
/// the contact afterwards (for the doors that answer with more).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ManualResult {
    pub outcome: ManualOutcome,
    pub status: Status,
    #[serde(skip)]
    pub contact: Contact,
}

impl ManualChange {
    /// The rules that need no stored state: checked once, before anything is read.
    pub fn check(&self) -> Result<(), ManualChangeError> {
        let on_consent = self.status == Status::OptedIn
            && self.lawful_basis == Some(LawfulBasis::Consent)
            && !self.send_confirmation;
        if self.consented_at.is_some() && !on_consent {
            return Err(ManualChangeError::ConsentedAtWithoutConsent);
        }
        if self.send_confirmation {
            return if self.status == Status::OptedIn {
                Ok(())
            } else {
                Err(ManualChangeError::ConfirmationNeedsOptIn)
            };
        }
        if self.status == Status::OptedIn {
            match self.lawful_basis {
                None => return Err(ManualChangeError::BasisRequired),
                Some(LawfulBasis::Consent) if self.consent_evidence.is_none() => {
                    return Err(ManualChangeError::EvidenceRequired)
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Contact {
    /// True for a contact that is not stored yet (made by the caller for this change).
    fn is_new(&self) -> bool {
        self.version == 0
    }

    /// Applies one manual change. `tombstone`: the erasure left for this address, if
    /// any. A block on confirmation requests stays as it is: an opt-in with evidence
    /// does not need it lifted.
    pub fn change_manually(
        mut self,
        change: &ManualChange,
        tombstone: Option<&Tombstone>,
        rules: &Rules,
        mail: MailAllowance,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Planned<ManualResult>, ManualChangeError> {
        change.check()?;
        if change.consented_at.is_some_and(|at| at > now) {
            return Err(ManualChangeError::ConsentedAtInFuture);
        }
        let erased_before = self.is_new() && tombstone.is_some();
        if erased_before && change.consent_evidence.is_none() {
            // Whatever the status: storing the address again is re-adding the person.
            return Err(ManualChangeError::Erased);
        }
        let subscription_type = &change.subscription_type;
        let type_id = &subscription_type.id;
        let current = self.status(type_id);
        if current == change.status {
            let status = current;
            return Ok(Planned::Nothing(ManualResult {
                outcome: ManualOutcome::Unchanged,
                status,
                contact: self,
            }));
        }
        if change.send_confirmation {
            let planned =
                self.request_opt_in(subscription_type, change.source, rules, mail, meta, now)?;
            return Ok(planned.map(|contact| ManualResult {
                outcome: ManualOutcome::ConfirmationSent,
                status: current,
                contact,
            }));
        }
        if change.status == Status::OptedIn
            && current == Status::Unsubscribed
            && change.consent_evidence.is_none()
        {
            return Err(ManualChangeError::Unsubscribed);
        }
        let mut status_change = StatusChange::new(change.status, change.source);
        status_change.lawful_basis = change.lawful_basis;
        status_change.explanation = change.explanation.clone().map(Evidence::into_string);
        status_change.consent_evidence = change.consent_evidence.clone().map(Evidence::into_string);
        if change.status == Status::OptedIn && change.lawful_basis == Some(LawfulBasis::Consent) {
            // The person's consent is in the evidence; the receipt names the notice of
            // today, in their language, as what the consent is to.
            status_change.consent_notice =
                Some(subscription_type.current_notice_ref(&self.locale, rules.default_locale()));
            status_change.consented_at = change.consented_at;
        }
        let events: Vec<_> = self
            .change_status(type_id, status_change, meta, now)
            .into_iter()
            .collect();
        let result = ManualResult {
            outcome: ManualOutcome::Changed,
            status: change.status,
            contact: self.clone(),
        };
        let plan = Plan::keep(self, events, result);
        Ok(Planned::Write(if erased_before {
            // Evidence of new consent: the person may be stored again.
            plan.clearing_tombstone()
        } else {
            plan
        }))
    }

    /// Asks the person to confirm one type by a double opt-in: the one rule for every
    /// door that asks (the native API's `send_confirmation`, HubSpot's subscribe without
    /// evidence, Mailchimp's `pending`). Refused, never silently skipped, when the person
    /// blocked such requests or the address's mail cap is spent. An opted-in person is
    /// left as they are. Answers the contact afterwards.
    pub fn request_opt_in(
        mut self,
        subscription_type: &SubscriptionType,
        source: Source,
        rules: &Rules,
        mail: MailAllowance,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Planned<Contact>, OptInRefused> {
        if self.status(&subscription_type.id) == Status::OptedIn {
            return Ok(Planned::Nothing(self));
        }
        if self.is_signup_blocked() {
            return Err(OptInRefused::Blocked);
        }
        if mail == MailAllowance::Spent {
            return Err(OptInRefused::MailLimitReached);
        }
        let locale = self.locale.clone();
        let notice = subscription_type.current_notice_ref(&locale, rules.default_locale());
        let job = self.request_confirmation(
            ConfirmationRequest {
                types: vec![subscription_type.id.clone()],
                notices: vec![notice],
                locale,
                ttl: rules.confirmation_ttl(),
                signup: SignupEvidence::from_request(source, meta, now),
                remind_after: rules.reminder_after(),
                funnel: None,
            },
            now,
        );
        Ok(Planned::Write(
            Plan::keep(self.clone(), Vec::new(), self).with_jobs([job]),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{contact, notice, rules, type_id, META};
    use super::*;
    use crate::domain::ErasureReason;

    fn change(status: Status, basis: Option<LawfulBasis>, evidence: Option<&str>) -> ManualChange {
        ManualChange {
            subscription_type: rules().catalog().lookup("news").unwrap().clone(),
            status,
            lawful_basis: basis,
            explanation: None,
            consent_evidence: Evidence::parse(evidence).unwrap(),
            send_confirmation: false,
            source: Source::AdminApi,
            consented_at: None,
        }
    }

    fn apply(
        c: Contact,
        change: &ManualChange,
        tombstone: Option<&Tombstone>,
        mail: MailAllowance,
    ) -> Result<Planned<ManualResult>, ManualChangeError> {
        c.change_manually(change, tombstone, &rules(), mail, &META, Utc::now())
    }

    fn stored(c: Contact) -> Contact {
        c.with_version(1)
    }

    #[test]
    fn an_opt_in_needs_a_basis_and_consent_needs_evidence() {
        let now = Utc::now();
        assert_eq!(
            apply(
                contact(now),
                &change(Status::OptedIn, None, None),
                None,
                MailAllowance::Available
            )
            .unwrap_err(),
            ManualChangeError::BasisRequired
        );
        assert_eq!(
            apply(
                contact(now),
                &change(Status::OptedIn, Some(LawfulBasis::Consent), None),
                None,
                MailAllowance::Available
            )
            .unwrap_err(),
            ManualChangeError::EvidenceRequired
        );
        let Ok(Planned::Write(plan)) = apply(
            contact(now),
            &change(
                Status::OptedIn,
                Some(LawfulBasis::Consent),
                Some("paper form 12"),
            ),
            None,
            MailAllowance::Available,
        ) else {
            panic!("a write")
        };
        assert_eq!(
            plan.events[0].consent_evidence.as_deref(),
            Some("paper form 12")
        );
        assert_eq!(plan.value.outcome, ManualOutcome::Changed);
    }

    #[test]
    fn an_unsubscribed_person_needs_evidence_of_new_consent() {
        let now = Utc::now();
        let mut left = stored(contact(now));
        left.change_status(
            &type_id("news"),
            StatusChange::new(Status::Unsubscribed, Source::OneClick),
            &META,
            now,
        );
        let contract = change(Status::OptedIn, Some(LawfulBasis::Contract), None);
        assert_eq!(
            apply(left.clone(), &contract, None, MailAllowance::Available).unwrap_err(),
            ManualChangeError::Unsubscribed
        );
        let with_evidence = change(
            Status::OptedIn,
            Some(LawfulBasis::Consent),
            Some("new form"),
        );
        assert!(apply(left, &with_evidence, None, MailAllowance::Available).is_ok());
    }

    #[test]
    fn an_erased_person_is_re_added_only_with_evidence_which_clears_the_tombstone() {
        let now = Utc::now();
        let tombstone = Tombstone::new(ErasureReason::Erasure, &META, now);
        let unsubscribe = change(Status::Unsubscribed, None, None);
        assert_eq!(
            apply(
                contact(now),
                &unsubscribe,
                Some(&tombstone),
                MailAllowance::Available
            )
            .unwrap_err(),
            ManualChangeError::Erased
        );
        let Ok(Planned::Write(plan)) = apply(
            contact(now),
            &change(
                Status::OptedIn,
                Some(LawfulBasis::Consent),
                Some("new form"),
            ),
            Some(&tombstone),
            MailAllowance::Available,
        ) else {
            panic!("a write")
        };
        assert!(plan.clear_tombstone);
        // A stored contact with a tombstone left over from before is not a re-add.
        assert!(apply(
            stored(contact(now)),
            &unsubscribe,
            Some(&tombstone),
            MailAllowance::Available
        )
        .is_ok());
    }

    #[test]
    fn asking_to_confirm_keeps_the_block_and_the_cap_and_never_lifts_either() {
        let now = Utc::now();
        let mut ask = change(Status::OptedIn, Some(LawfulBasis::Consent), None);
        ask.send_confirmation = true;
        let Ok(Planned::Write(plan)) =
            apply(stored(contact(now)), &ask, None, MailAllowance::Available)
        else {
            panic!("a write")
        };
        assert_eq!(plan.value.outcome, ManualOutcome::ConfirmationSent);
        assert_eq!(plan.value.status, Status::NotSubscribed);
        assert_eq!(plan.jobs.len(), 1);
        assert_eq!(
            plan.after.as_ref().unwrap().pending()[0].signup.source,
            Source::AdminApi
        );

        let mut blocked = stored(contact(now));
        blocked.block_signups(Source::UnsubscribePage, &META, now);
        assert_eq!(
            apply(blocked.clone(), &ask, None, MailAllowance::Available).unwrap_err(),
            ManualChangeError::OptIn(OptInRefused::Blocked)
        );
        assert_eq!(
            apply(stored(contact(now)), &ask, None, MailAllowance::Spent).unwrap_err(),
            ManualChangeError::OptIn(OptInRefused::MailLimitReached)
        );

        // An opt-in with evidence does not need the block lifted, and does not lift it.
        let Ok(Planned::Write(plan)) = apply(
            blocked,
            &change(Status::OptedIn, Some(LawfulBasis::Consent), Some("form")),
            None,
            MailAllowance::Available,
        ) else {
            panic!("a write")
        };
        assert!(plan.after.unwrap().is_signup_blocked());
    }

    #[test]
    fn a_consent_time_is_kept_only_for_consent_and_never_in_the_future() {
        let now = Utc::now();
        let mut given = change(Status::OptedIn, Some(LawfulBasis::Consent), Some("form"));
        given.consented_at = Some(now - chrono::Duration::days(3));
        let Ok(Planned::Write(plan)) = apply(contact(now), &given, None, MailAllowance::Available)
        else {
            panic!("a write")
        };
        let event = &plan.events[0];
        assert_eq!(event.consented_at, given.consented_at);
        assert_eq!(
            event.consent_notice,
            Some(notice("news")),
            "the receipt names a notice"
        );
        assert!(event.records_consent());
        assert_eq!(
            plan.value
                .contact
                .subscription(&type_id("news"))
                .unwrap()
                .consent_given_at(),
            given.consented_at
        );

        given.consented_at = Some(now + chrono::Duration::minutes(1));
        assert_eq!(
            apply(contact(now), &given, None, MailAllowance::Available).unwrap_err(),
            ManualChangeError::ConsentedAtInFuture
        );
        let mut contract = change(Status::OptedIn, Some(LawfulBasis::Contract), None);
        contract.consented_at = Some(now);
        assert_eq!(
            contract.check().unwrap_err(),
            ManualChangeError::ConsentedAtWithoutConsent
        );
        assert!(ManualChangeError::ConsentedAtInFuture
            .to_string()
            .starts_with("consented_at:"));
    }

    #[test]
    fn a_confirmation_can_only_be_asked_for_an_opt_in() {
        let mut ask = change(Status::Unsubscribed, None, None);
        ask.send_confirmation = true;
        assert_eq!(
            ask.check().unwrap_err(),
            ManualChangeError::ConfirmationNeedsOptIn
        );
    }
}
