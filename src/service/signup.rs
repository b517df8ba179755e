//! Public signups (`POST /v1/signups`, `POST /signup`): one call does the whole request:
//! the per-client limit, the types and the notices shown, the firewall (see
//! [`super::screening`]), and the pending confirmation with its mail, or the signup held
//! in quarantine. The answer is the same whatever the address's state, held or not: a
//! reference to what the request created (see [`SignupRef`]) that has the same shape
//! when it created nothing, because the address was opted in, blocked, held or out of
//! mails.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::commit::Reach;
use super::{SignupError, Subscriptions, TypeView};
use crate::domain::{
    Contact, ContactId, EmailAddress, Evidence, QuarantineReason, RequestMeta, SignupDoor,
    SignupIntent, Status, UnknownType,
};
use crate::tokens::SignupRef;

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
    /// The API, an operator's form or the hosted form.
    pub door: SignupDoor,
    /// Whether to ask "Did you mean …?" first (the hosted form, until the person chose).
    pub typos: TypoCheck,
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

/// Whether a signup asks about a likely typing error in the address first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypoCheck {
    Ask,
    /// The API, an operator's form, or a person who already chose an address.
    Skip,
}

/// What a signup answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignupAnswer {
    /// Received: the reference the browser keeps. Its shape is the same whatever the
    /// address's state, and whether or not anything was created.
    Received(SignupRef),
    /// The address's domain is one edit away from well-known mailbox domains: the person
    /// is asked which they meant. Nothing was stored or counted.
    DidYouMean(Vec<EmailAddress>),
}

impl Subscriptions {
    pub async fn sign_up(&self, request: SignupRequest) -> Result<SignupAnswer, SignupError> {
        let started = std::time::Instant::now();
        if let (Some(network), false) = (&request.client_network, request.keyed) {
            self.count_signup_from(network).await?;
        }
        let intent = self.signup_intent(&request)?;
        if request.typos == TypoCheck::Ask {
            let suggestions = crate::typo::suggestions(&request.email);
            if !suggestions.is_empty() {
                return Ok(SignupAnswer::DidYouMean(suggestions));
            }
        }
        let hold = self.screen(&request).await?;
        tracing::info!(to = %request.email.masked(), types = intent.types.len(), held = hold.map(QuarantineReason::as_str), "signup");
        let door = match request.door {
            SignupDoor::Api => "api",
            SignupDoor::Form | SignupDoor::HostedForm => "form",
        };
        metrics::counter!("optin_signups_total", "source" => door).increment(1);
        let id = self.contact_id(&request.email);
        let (created, held) = self
            .commit(&id, Reach::Signup, |found| {
                let contact = found.contact.cloned().unwrap_or_else(|| {
                    Contact::new(id.clone(), request.email.clone(), &intent.locale, found.now)
                });
                Ok::<_, SignupError>(match hold {
                    None => contact
                        .sign_up(&intent, &self.rules, found.mail, found.now)
                        .map(|created| (created, None)),
                    Some(reason) => contact
                        .hold_signup(&intent, reason, &self.rules, found.now)
                        .map(|held| (None, held.then_some(reason))),
                })
            })
            .await?;
        if let Some(reason) = held {
            metrics::counter!("optin_signups_quarantined_total", "reason" => reason.as_str())
                .increment(1);
        }
        // The answer's time must not tell what it created either (see `signup_pace`).
        self.signup_pace.answer(started, created.is_some()).await;
        // The address's own id either way, so that two signups of one address carry the
        // same contact id whatever they created.
        Ok(SignupAnswer::Received(self.signup_ref(id, created)))
    }

    /// The reference of a form answer that took no signup (a filled honeypot, the form
    /// again for a browser that held no binding): of the same shape as any other, to
    /// nothing.
    pub fn ignored_signup(&self) -> SignupRef {
        let mut random = [0u8; 16];
        // Without randomness the reference is still unusable: it points at no contact.
        let _ = getrandom::fill(&mut random);
        let id = ContactId::parse(&hex::encode(random))
            .unwrap_or_else(|_| ContactId::for_test_delivery());
        self.signup_ref(id, None)
    }

    /// A reference to the pending confirmation a request created, or to a fresh id that
    /// names none (a v7 id like a real one, made at the same moment).
    fn signup_ref(&self, contact_id: ContactId, created: Option<Uuid>) -> SignupRef {
        SignupRef {
            contact_id,
            pending_id: created.unwrap_or_else(Uuid::now_v7),
            expires_at: crate::clock::later(self.now(), self.rules.confirmation_ttl()),
        }
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
            door: request.door,
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
