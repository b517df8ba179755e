//! Signup: store a pending confirmation per request and queue one confirmation mail.
//! The answer is the same whatever the address's state, and a signup never lowers a status.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{Plan, Planned, Subscriptions};
use crate::domain::LawfulBasis;
use crate::domain::{
    Contact, EmailAddress, MailKind, NoticeRef, OutboxJob, PendingConfirmation, RequestMeta,
    SignupEvidence, Source, Status, StatusChange, SubscriptionType, SubscriptionTypeId,
};
use crate::store::StoreError;

/// The window of the per-address confirmation mail limit.
const MAIL_LIMIT_WINDOW_HOURS: i64 = 24;

/// The notice version a person saw: one for all requested types, or one per type.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum NoticeVersions {
    #[default]
    Current,
    All(String),
    PerType(BTreeMap<String, String>),
}

/// A signup, parsed: every field is already valid.
#[derive(Clone, Debug)]
pub struct SignupRequest {
    pub email: EmailAddress,
    pub types: Vec<SubscriptionTypeId>,
    pub locale: String,
    pub notices: Vec<NoticeRef>,
    pub origin: Source,
    pub form_id: Option<String>,
    pub page_url: Option<String>,
    pub meta: RequestMeta,
}

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error("subscription_types: at least one subscription type is required")]
    NoTypes,
    #[error("subscription_types: unknown subscription type '{0}'")]
    UnknownType(String),
    #[error("notice_version: '{version}' is not a published consent notice of '{type_id}' in '{locale}'")]
    UnknownNoticeVersion {
        type_id: String,
        version: String,
        locale: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Subscriptions {
    /// Resolves the requested types and the notices shown, refusing unknown ones.
    pub fn resolve_signup_types(
        &self,
        type_ids: &[String],
        locale: &str,
        versions: &NoticeVersions,
    ) -> Result<(Vec<SubscriptionTypeId>, Vec<NoticeRef>), SignupError> {
        let catalog = &self.config().catalog;
        let mut types: Vec<&SubscriptionType> = Vec::new();
        for id in type_ids {
            let found = catalog
                .get(id)
                .ok_or_else(|| SignupError::UnknownType(id.chars().take(64).collect()))?;
            if !types.iter().any(|t| t.id == found.id) {
                types.push(found);
            }
        }
        if types.is_empty() {
            return Err(SignupError::NoTypes);
        }
        let notices = types
            .iter()
            .map(|t| {
                let (notice_locale, current) = t
                    .current_notice(locale, catalog.default_locale())
                    .expect("the catalog guarantees a notice in the default locale");
                let wanted = match versions {
                    NoticeVersions::Current => None,
                    NoticeVersions::All(v) => Some(v.as_str()),
                    NoticeVersions::PerType(map) => map.get(t.id.as_str()).map(String::as_str),
                };
                let notice = match wanted {
                    None => current.clone(),
                    Some(version) => {
                        t.notice_version(&notice_locale, version).ok_or_else(|| {
                            SignupError::UnknownNoticeVersion {
                                type_id: t.id.to_string(),
                                version: version.chars().take(64).collect(),
                                locale: notice_locale.clone(),
                            }
                        })?
                    }
                };
                Ok(t.notice_ref(&notice_locale, &notice))
            })
            .collect::<Result<Vec<_>, SignupError>>()?;
        Ok((types.into_iter().map(|t| t.id.clone()).collect(), notices))
    }

    pub async fn sign_up(&self, request: SignupRequest) -> Result<(), SignupError> {
        let id = self.contact_id(&request.email);
        let settings = &self.config().settings.signup;
        let ttl = Duration::days(i64::from(settings.confirmation_ttl_days));
        let mail_limit = settings.max_confirmation_mails_per_day as usize;
        self.change_contact(&id, |before, now| {
            let contact = before.cloned().unwrap_or_else(|| {
                Contact::new(id.clone(), request.email.clone(), &request.locale, now)
            });
            Ok::<_, SignupError>(plan_signup(contact, &request, self, ttl, mail_limit, now))
        })
        .await
    }
}

/// Always writes (at least a version bump), so that every kind of address costs the same
/// work and the answer's timing tells nothing.
fn plan_signup(
    mut contact: Contact,
    request: &SignupRequest,
    service: &Subscriptions,
    ttl: Duration,
    mail_limit: usize,
    now: DateTime<Utc>,
) -> Planned<()> {
    let catalog = &service.config().catalog;
    let window = Duration::hours(MAIL_LIMIT_WINDOW_HOURS);
    contact.prune_confirmation_mails(window, now);
    contact.locale = request.locale.clone();
    let evidence = SignupEvidence {
        at: now,
        source: request.origin,
        ip: request.meta.ip.clone(),
        user_agent: request.meta.user_agent.clone(),
        form_id: request.form_id.clone(),
        page_url: request.page_url.clone(),
    };
    let mut events = Vec::new();
    let mut to_confirm = Vec::new();
    let mut notices = Vec::new();
    for (type_id, notice) in request.types.iter().zip(&request.notices) {
        if contact.status(type_id) == Status::OptedIn {
            continue; // never lower or disturb an opt-in
        }
        let single_opt_in = catalog
            .get(type_id.as_str())
            .is_some_and(|t| !t.double_opt_in);
        if single_opt_in {
            let mut change =
                StatusChange::new(Status::OptedIn, request.origin).with_basis(LawfulBasis::Consent);
            change.consent_notice = Some(notice.clone());
            change.signup = Some(evidence.clone());
            events.extend(contact.change_status(type_id, change, &request.meta, now));
        } else {
            to_confirm.push(type_id.clone());
            notices.push(notice.clone());
        }
    }
    let mut jobs = Vec::new();
    if !to_confirm.is_empty() && contact.confirmation_mails_within(window, now) < mail_limit {
        let pending = PendingConfirmation {
            id: Uuid::now_v7(),
            types: to_confirm.clone(),
            notices,
            locale: request.locale.clone(),
            expires_at: now + ttl,
            signup: evidence,
        };
        let mail = MailKind::Confirmation {
            pending_id: pending.id,
            types: to_confirm,
            expires_at: pending.expires_at,
        };
        jobs.push(OutboxJob::new(
            contact.id.clone(),
            contact.email.clone(),
            &request.locale,
            mail,
            now,
        ));
        contact.pending.push(pending);
        contact.confirmation_mails.push(now);
    }
    let mut plan = Plan::keep(contact, events, ());
    plan.jobs = jobs;
    Planned::Write(plan)
}
