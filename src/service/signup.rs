//! Signup: store a pending confirmation per request and queue one confirmation mail.
//! The answer is the same whatever the address's state, and a signup never lowers a status.

use std::collections::BTreeMap;

use super::{Plan, Planned, Subscriptions};
use crate::domain::LawfulBasis;
use crate::domain::{
    ConfirmationRequest, Contact, ContactId, EmailAddress, NoticeRef, RequestMeta, SignupEvidence,
    Source, Status, StatusChange, SubscriptionType, SubscriptionTypeId,
};
use crate::store::StoreError;
use chrono::{DateTime, Duration, Utc};

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
    #[error("too many signups from this client; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Subscriptions {
    /// Counts a signup against the limit of the client's network (an IPv4 address or an
    /// IPv6 /64, as the web layer resolved it). The count is shared by all instances on
    /// Redis. Beside the per-address mail cap, this is the other signup limit.
    pub async fn count_signup_from(&self, network: &str) -> Result<(), SignupError> {
        let limits = &self.config.settings.signup;
        let limited = self
            .count_network_hit(
                "signup-ip",
                network,
                limits.ip_window_secs,
                u64::from(limits.max_signups_per_ip),
            )
            .await?;
        if let Some(retry_after_secs) = limited {
            metrics::counter!("optin_signups_rate_limited_total").increment(1);
            return Err(SignupError::RateLimited { retry_after_secs });
        }
        Ok(())
    }
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
        let types = self.requested_types(type_ids)?;
        if types.is_empty() {
            return Err(SignupError::NoTypes);
        }
        let notices = types
            .iter()
            .map(|t| {
                let (notice_locale, current) = t.current_notice(locale, catalog.default_locale());
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

    /// The types the hosted signup form shows (`ids`, or every type when empty), in
    /// `locale`, each with the notice that a tick on the form agrees to.
    pub fn signup_form_types(
        &self,
        ids: &[String],
        locale: &str,
    ) -> Result<Vec<super::TypeView>, SignupError> {
        let catalog = &self.config().catalog;
        let types = if ids.is_empty() {
            catalog.all().iter().collect()
        } else {
            self.requested_types(ids)?
        };
        Ok(types
            .into_iter()
            .map(|t| {
                super::TypeView::of(t, Status::NotSubscribed, locale, catalog.default_locale())
            })
            .collect())
    }

    /// The types named, each once, in the order first named; an unknown one is refused.
    fn requested_types(&self, ids: &[String]) -> Result<Vec<&SubscriptionType>, SignupError> {
        let catalog = &self.config().catalog;
        let mut types: Vec<&SubscriptionType> = Vec::new();
        for id in ids {
            let found = catalog
                .get(id)
                .ok_or_else(|| SignupError::UnknownType(id.chars().take(64).collect()))?;
            if !types.iter().any(|t| t.id == found.id) {
                types.push(found);
            }
        }
        Ok(types)
    }

    pub async fn sign_up(&self, request: SignupRequest) -> Result<(), SignupError> {
        let id = self.contact_id(&request.email);
        let settings = &self.config().settings.signup;
        let ttl = Duration::days(i64::from(settings.confirmation_ttl_days));
        self.change_contact(&id, |before, now, may_mail| {
            Ok::<_, SignupError>(plan_signup(before, &id, &request, self, ttl, may_mail, now))
        })
        .await
    }
}

/// Always writes (at least a version bump), so that every kind of address costs the same
/// work and the answer's timing tells nothing. A public signup never undoes a no: an
/// unsubscribed person is asked to confirm even on a type without double opt-in, and a
/// person who blocked signups is neither stored nor mailed.
fn plan_signup(
    before: Option<&Contact>,
    id: &ContactId,
    request: &SignupRequest,
    service: &Subscriptions,
    ttl: Duration,
    may_mail: bool,
    now: DateTime<Utc>,
) -> Planned<()> {
    let contact = match before {
        None => Contact::new(id.clone(), request.email.clone(), &request.locale, now),
        // Stored as it is: the version bump keeps the work the same.
        Some(blocked) if blocked.signup_blocked_since.is_some() => {
            return Planned::Write(Plan::keep(blocked.clone(), Vec::new(), ()));
        }
        // A known contact's language changes only when they confirm.
        Some(known) => known.clone(),
    };
    plan_signup_of(contact, request, service, ttl, may_mail, now)
}

fn plan_signup_of(
    mut contact: Contact,
    request: &SignupRequest,
    service: &Subscriptions,
    ttl: Duration,
    may_mail: bool,
    now: DateTime<Utc>,
) -> Planned<()> {
    let catalog = &service.config().catalog;
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
        let current = contact.status(type_id);
        if current == Status::OptedIn {
            continue; // never lower or disturb an opt-in
        }
        let single_opt_in = catalog
            .get(type_id.as_str())
            .is_some_and(|t| !t.double_opt_in);
        if single_opt_in && current == Status::NotSubscribed {
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
    if !to_confirm.is_empty() && may_mail {
        jobs.push(contact.request_confirmation(
            ConfirmationRequest {
                types: to_confirm,
                notices,
                locale: request.locale.clone(),
                ttl,
                signup: evidence,
            },
            now,
        ));
    }
    let mut plan = Plan::keep(contact, events, ());
    plan.jobs = jobs;
    Planned::Write(plan)
}
