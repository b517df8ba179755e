//! Public signups (`POST /v1/signups`, `POST /signup`): one call does the whole request:
//! the per-client limit, the types and the notices shown, the firewall (see
//! [`super::screening`]), and the pending confirmation with its mail, or the signup held
//! in quarantine. The answer is the same whatever the address's state, held or not.

use std::collections::BTreeMap;

use super::commit::Reach;
use super::{SignupError, Subscriptions, TypeView};
use crate::domain::{
    Contact, EmailAddress, Evidence, QuarantineReason, RequestMeta, SignupIntent, Source, Status,
    UnknownType,
};

/// The notice version a person saw: one for all requested types, or one per type; none
/// means the text shown today.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum NoticeVersions {
    #[default]
    Current,
    All(String),
    PerType(BTreeMap<String, String>),
}

impl NoticeVersions {
    fn for_type(&self, type_id: &str) -> Option<&str> {
        match self {
            NoticeVersions::Current => None,
            NoticeVersions::All(version) => Some(version),
            NoticeVersions::PerType(map) => map.get(type_id).map(String::as_str),
        }
    }
}

/// A public signup, parsed at the door: the address and the free text are valid; the
/// types and notice versions are checked here, against the catalog.
#[derive(Clone, Debug)]
pub struct SignupRequest {
    pub email: EmailAddress,
    pub types: Vec<String>,
    /// The language of the page or the request: the mail's and its links' language.
    pub locale: String,
    pub notice_versions: NoticeVersions,
    /// `signup_form` or `signup_api`.
    pub origin: Source,
    pub form_id: Option<Evidence>,
    pub page_url: Option<Evidence>,
    pub meta: RequestMeta,
    /// The client's network (an IPv4 address or an IPv6 /64) for the per-client limits;
    /// `None` when the client is unknown.
    pub client_network: Option<String>,
    /// The `altcha` field as sent: the solved proof of work; `None` when absent.
    pub proof: Option<String>,
    /// Made with a key of scope `signup` (a server-to-server integration): no proof of
    /// work, and none of the per-client judgements, which would all see one client.
    pub keyed: bool,
    /// The hosted form's signed render time, as posted; `None` from any other form.
    pub form_rendered: Option<String>,
}

/// What the hosted signup form shows and carries.
#[derive(Clone, Debug)]
pub struct SignupForm {
    pub types: Vec<TypeView>,
    /// `signup.proof_of_work` is on: the page solves a challenge before it posts.
    pub proof_of_work: bool,
    /// The signed render time, when `signup.min_fill_seconds` is on.
    pub rendered_at: Option<String>,
}

impl Subscriptions {
    pub async fn sign_up(&self, request: SignupRequest) -> Result<(), SignupError> {
        if let (Some(network), false) = (&request.client_network, request.keyed) {
            self.count_signup_from(network).await?;
        }
        let intent = self.signup_intent(&request)?;
        let hold = self.screen(&request).await?;
        tracing::info!(to = %request.email.masked(), types = intent.types.len(), held = hold.map(QuarantineReason::as_str), "signup");
        let origin = if request.origin == Source::SignupForm {
            "form"
        } else {
            "api"
        };
        metrics::counter!("optin_signups_total", "source" => origin).increment(1);
        let id = self.contact_id(&request.email);
        let held = self
            .commit(&id, Reach::Signup, |found| {
                let contact = found.contact.cloned().unwrap_or_else(|| {
                    Contact::new(id.clone(), request.email.clone(), &intent.locale, found.now)
                });
                Ok::<_, SignupError>(match hold {
                    None => contact
                        .sign_up(&intent, &self.rules, found.mail, found.now)
                        .map(|()| None),
                    Some(reason) => contact
                        .hold_signup(&intent, reason, &self.rules, found.now)
                        .map(|held| held.then_some(reason)),
                })
            })
            .await?;
        if let Some(reason) = held {
            metrics::counter!("optin_signups_quarantined_total", "reason" => reason.as_str())
                .increment(1);
        }
        Ok(())
    }

    /// The types asked for, each once, with the notice shown for each; unknown types and
    /// notice versions are refused.
    fn signup_intent(&self, request: &SignupRequest) -> Result<SignupIntent, SignupError> {
        let catalog = self.catalog();
        let types = catalog.lookup_all(&request.types)?;
        if types.is_empty() {
            return Err(SignupError::NoTypes);
        }
        let types = types
            .into_iter()
            .map(|t| {
                let version = request.notice_versions.for_type(t.id.as_str());
                let notice = t.notice_shown(&request.locale, catalog.default_locale(), version)?;
                Ok((t.id.clone(), notice))
            })
            .collect::<Result<Vec<_>, SignupError>>()?;
        Ok(SignupIntent {
            types,
            locale: request.locale.clone(),
            origin: request.origin,
            form_id: request.form_id.clone(),
            page_url: request.page_url.clone(),
            meta: request.meta.clone(),
        })
    }

    /// Counts a signup against the limit of the client's network. The count is shared by
    /// all instances on Redis. Beside the per-address mail cap, this is the other signup
    /// limit.
    async fn count_signup_from(&self, network: &str) -> Result<(), SignupError> {
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

    /// The hosted signup form: the types it shows (`ids`, or every type when empty), in
    /// `locale`, each with the notice that a tick on the form agrees to, and what the
    /// firewall needs of the page.
    pub fn signup_form(&self, ids: &[String], locale: &str) -> Result<SignupForm, UnknownType> {
        let catalog = self.catalog();
        let types = if ids.is_empty() {
            catalog.all().iter().collect()
        } else {
            catalog.lookup_all(ids)?
        };
        let firewall = &self.config.firewall;
        Ok(SignupForm {
            types: types
                .into_iter()
                .map(|t| TypeView::of(t, Status::NotSubscribed, locale, catalog.default_locale()))
                .collect(),
            proof_of_work: firewall.proof_of_work().is_some(),
            rendered_at: firewall.form_stamp(self.now()),
        })
    }
}
