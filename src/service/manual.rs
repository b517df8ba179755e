//! Manual changes by an admin or an import, with their lawful basis. The rules that keep
//! such changes honest: an opt-in needs a basis; `consent` needs evidence of it (or a
//! normal double opt-in is started instead); an `unsubscribed` person is never opted in
//! again without evidence of new consent; an erased person is not quietly re-added.

use chrono::{DateTime, Duration, Utc};

use super::{Plan, Planned, Subscriptions};
use crate::domain::{
    ConfirmationRequest, Contact, EmailAddress, LawfulBasis, RequestMeta, SignupEvidence, Source,
    Status, StatusChange, SubscriptionTypeId,
};
use crate::store::StoreError;

/// Longest free text kept as an explanation or as consent evidence.
pub const MAX_EVIDENCE_CHARS: usize = 2048;

#[derive(Clone, Debug)]
pub struct ManualChange {
    pub subscription_type: SubscriptionTypeId,
    pub status: Status,
    pub lawful_basis: Option<LawfulBasis>,
    pub explanation: Option<String>,
    /// Where and when consent was given: free text or a reference.
    pub consent_evidence: Option<String>,
    /// Start a normal double opt-in instead of recording an opt-in.
    pub send_confirmation: bool,
}

#[derive(Debug, thiserror::Error)]
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
    #[error("subscription_type: unknown subscription type '{0}'")]
    UnknownType(String),
    #[error("send_confirmation: this address has had as many confirmation mails as allowed today")]
    MailLimitReached,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a manual change did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualOutcome {
    Changed,
    Unchanged,
    ConfirmationSent,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ManualResult {
    pub outcome: ManualOutcome,
    pub status: Status,
}

impl ManualChange {
    /// Rules that need no stored state.
    pub fn check(&self) -> Result<(), ManualChangeError> {
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

impl Subscriptions {
    /// Applies one manual change, recorded with `source` (`admin_api` or `import`).
    pub async fn change_manually(
        &self,
        email: &EmailAddress,
        change: &ManualChange,
        source: Source,
        meta: &RequestMeta,
    ) -> Result<ManualResult, ManualChangeError> {
        change.check()?;
        let id = self.contact_id(email);
        let tombstoned = self.store.tombstone(&id).await?.is_some();
        let ttl = Duration::days(i64::from(
            self.config().settings.signup.confirmation_ttl_days,
        ));
        let catalog = &self.config().catalog;
        self.change_contact(&id, |before, now, may_mail| {
            // Whatever the status: storing the address again is re-adding the person.
            if before.is_none() && tombstoned && change.consent_evidence.is_none() {
                return Err(ManualChangeError::Erased);
            }
            let contact = before.cloned().unwrap_or_else(|| {
                Contact::new(id.clone(), email.clone(), catalog.default_locale(), now)
            });
            let mut planned =
                plan_manual(contact, change, source, meta, ttl, catalog, may_mail, now)?;
            if let Planned::Write(plan) = &mut planned {
                plan.clear_tombstone = tombstoned && change.consent_evidence.is_some();
            }
            Ok(planned)
        })
        .await
    }
}

#[allow(clippy::too_many_arguments)]
fn plan_manual(
    mut contact: Contact,
    change: &ManualChange,
    source: Source,
    meta: &RequestMeta,
    ttl: Duration,
    catalog: &crate::domain::Catalog,
    may_mail: bool,
    now: DateTime<Utc>,
) -> Result<Planned<ManualResult>, ManualChangeError> {
    let type_id = &change.subscription_type;
    let current = contact.status(type_id);
    if current == change.status {
        return Ok(Planned::Nothing(ManualResult {
            outcome: ManualOutcome::Unchanged,
            status: current,
        }));
    }
    // An admin who opts someone in, or asks them to confirm, acts on their request: a
    // block on confirmation requests no longer stands.
    let mut events: Vec<_> = if change.status == Status::OptedIn {
        contact
            .lift_signup_block(source, meta, now)
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    if change.send_confirmation {
        if !may_mail {
            return Err(ManualChangeError::MailLimitReached);
        }
        let notice = catalog
            .get(type_id.as_str())
            .map(|t| t.current_notice_ref(&contact.locale, catalog.default_locale()))
            .ok_or_else(|| ManualChangeError::UnknownType(type_id.to_string()))?;
        let locale = contact.locale.clone();
        let job = contact.request_confirmation(
            ConfirmationRequest {
                types: vec![type_id.clone()],
                notices: vec![notice],
                locale,
                ttl,
                signup: SignupEvidence::from_request(source, meta, now),
            },
            now,
        );
        let mut plan = Plan::keep(
            contact,
            events,
            ManualResult {
                outcome: ManualOutcome::ConfirmationSent,
                status: current,
            },
        );
        plan.jobs.push(job);
        return Ok(Planned::Write(plan));
    }
    if change.status == Status::OptedIn
        && current == Status::Unsubscribed
        && change.consent_evidence.is_none()
    {
        return Err(ManualChangeError::Unsubscribed);
    }
    let mut status_change = StatusChange::new(change.status, source);
    status_change.lawful_basis = change.lawful_basis;
    status_change.explanation = change.explanation.clone();
    status_change.consent_evidence = change.consent_evidence.clone();
    events.extend(contact.change_status(type_id, status_change, meta, now));
    Ok(Planned::Write(Plan::keep(
        contact,
        events,
        ManualResult {
            outcome: ManualOutcome::Changed,
            status: change.status,
        },
    )))
}
