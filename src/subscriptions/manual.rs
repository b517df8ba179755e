//! Manual changes by an admin or an import, with their lawful basis. The rules that keep
//! such changes honest: an opt-in needs a basis; `consent` needs evidence of it (or a
//! normal double opt-in is started instead); an `unsubscribed` person is never opted in
//! again without evidence of new consent; an erased person is not quietly re-added.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{Plan, Planned, Subscriptions};
use crate::domain::{
    Contact, EmailAddress, LawfulBasis, MailKind, OutboxJob, PendingConfirmation, RequestMeta,
    SignupEvidence, Source, Status, StatusChange, SubscriptionTypeId, Tombstone,
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
        let tombstoned = self.store().tombstone(&id).await?.is_some();
        let ttl = Duration::days(i64::from(
            self.config().settings.signup.confirmation_ttl_days,
        ));
        let catalog = &self.config().catalog;
        self.change_contact(&id, |before, now| {
            // Whatever the status: storing the address again is re-adding the person.
            if before.is_none() && tombstoned && change.consent_evidence.is_none() {
                return Err(ManualChangeError::Erased);
            }
            let contact = before.cloned().unwrap_or_else(|| {
                Contact::new(id.clone(), email.clone(), catalog.default_locale(), now)
            });
            let mut planned = plan_manual(contact, change, source, meta, ttl, catalog, now)?;
            if let Planned::Write(plan) = &mut planned {
                plan.clear_tombstone = tombstoned && change.consent_evidence.is_some();
            }
            Ok(planned)
        })
        .await
    }
}

fn plan_manual(
    mut contact: Contact,
    change: &ManualChange,
    source: Source,
    meta: &RequestMeta,
    ttl: Duration,
    catalog: &crate::domain::Catalog,
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
    if change.send_confirmation {
        let subscription_type = catalog
            .get(type_id.as_str())
            .expect("the route checked the type");
        let (locale, notice) = subscription_type
            .current_notice(&contact.locale, catalog.default_locale())
            .expect("the catalog guarantees a notice in the default locale");
        let pending = PendingConfirmation {
            id: Uuid::now_v7(),
            types: vec![type_id.clone()],
            notices: vec![subscription_type.notice_ref(&locale, notice)],
            locale: contact.locale.clone(),
            expires_at: now + ttl,
            signup: SignupEvidence {
                at: now,
                source,
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                form_id: None,
                page_url: None,
            },
        };
        let mail = MailKind::Confirmation {
            pending_id: pending.id,
            types: vec![type_id.clone()],
            expires_at: pending.expires_at,
        };
        let job = OutboxJob::new(
            contact.id.clone(),
            contact.email.clone(),
            &contact.locale,
            mail,
            now,
        );
        contact.pending.push(pending);
        contact.confirmation_mails.push(now);
        let mut plan = Plan::keep(
            contact,
            Vec::new(),
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
    let events: Vec<_> = contact
        .change_status(type_id, status_change, meta, now)
        .into_iter()
        .collect();
    Ok(Planned::Write(Plan::keep(
        contact,
        events,
        ManualResult {
            outcome: ManualOutcome::Changed,
            status: change.status,
        },
    )))
}

/// A tombstone for an erasure or a retention purge.
pub fn tombstone(reason: &str, meta: &RequestMeta, now: DateTime<Utc>) -> Tombstone {
    Tombstone {
        erased_at: now,
        reason: reason.to_string(),
        request_id: meta.request_id.clone(),
    }
}
