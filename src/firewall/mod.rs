//! The signup firewall: what stops bots before a confirmation mail reaches a stranger,
//! with no third-party captcha.
//!
//! - [`altcha`]: ALTCHA-compatible proof-of-work challenges and the check of a solution;
//! - [`mx`]: whether the address's domain can receive mail at all (MX, null MX, A/AAAA);
//! - [`disposable`]: throw-away address domains, and the operator's blocked and allowed
//!   domains;
//! - [`hosted_solver`]: the hosted form's own solver script;
//! - [`form_time`]: the hosted form's signed render time, for `too_fast`;
//! - here: the [`Firewall`] built from plain settings, with the checks a signup makes:
//!   [`Firewall::verify_proof`], [`Firewall::judge`] and [`Firewall::filled_too_fast`]. Which door asks for which, and
//!   what a refusal looks like there, is the signup's business, not this module's.

pub mod altcha;
pub mod disposable;
pub mod form_time;
pub mod hosted_solver;
pub mod mx;

use std::net::SocketAddr;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::domain::EmailAddress;
use crate::store::{Store, StoreError};

pub use altcha::{Challenge, ProofOfWork, ProofRefusal};
pub use disposable::{DomainClass, DomainListError, DomainLists};
pub use form_time::FormClock;
pub use mx::{MailHost, MxChecker, ResolverConfigError, Undeliverable};

/// What `signup.disposable_domains` does with an address at a throw-away domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum DisposableAction {
    /// Held for an admin instead of mailed, with the same answer as any signup.
    #[default]
    Quarantine,
    Refuse,
    Allow,
}

impl TryFrom<String> for DisposableAction {
    type Error = &'static str;

    // Spelled out, so that a wrong value is answered with the values that are right.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "quarantine" => Ok(Self::Quarantine),
            "refuse" => Ok(Self::Refuse),
            "allow" => Ok(Self::Allow),
            _ => Err("setting `signup.disposable_domains`: must be quarantine, refuse or allow"),
        }
    }
}

/// The firewall's settings, checked and parsed (config builds them from `[signup]`).
#[derive(Clone, Debug)]
pub struct FirewallSettings {
    pub proof_of_work: bool,
    pub challenge_ttl: Duration,
    pub proof_of_work_max_number: u64,
    pub check_mx: bool,
    /// Resolvers for the MX check; empty: the system's.
    pub dns_servers: Vec<SocketAddr>,
    pub disposable_domains: DisposableAction,
    pub blocked_domains: Vec<String>,
    pub allowed_domains: Vec<String>,
    /// The hosted form posted sooner than this after it was rendered is held as
    /// `too_fast`; zero turns it off.
    pub min_fill: Duration,
}

/// A setting the firewall cannot be built from, named.
#[derive(Debug, thiserror::Error)]
pub enum FirewallConfigError {
    #[error("setting `signup.blocked_domains` or `signup.allowed_domains`: {0}")]
    Domains(#[from] DomainListError),
    #[error("setting `signup.dns_servers`: {0}")]
    Resolver(#[from] ResolverConfigError),
    #[error("setting `security.signing_keys`: the proof of work needs a key")]
    NoKey,
}

/// The firewall's judgement of an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Not accepted: the signup is answered with an error naming the reason.
    Refuse(RefuseReason),
    /// Accepted as any other, but held instead of mailed.
    Quarantine(QuarantineReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    /// No mail can reach the domain.
    Undeliverable(Undeliverable),
    /// The domain is in `signup.blocked_domains`.
    BlockedDomain,
    /// A throw-away domain, with `signup.disposable_domains = "refuse"`.
    DisposableDomain,
}

/// Why a signup is held: the firewall's own reason is `disposable_domain`; the signup
/// adds `too_fast` and `ip_burst` from what it knows of the request.
pub use crate::domain::QuarantineReason;

/// Why a proof of work was not accepted: the client's fault, or the store's.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ProofError {
    #[error(transparent)]
    Refused(#[from] ProofRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The firewall, built once from the settings and shared by every request.
#[derive(Debug)]
pub struct Firewall {
    proof_of_work: Option<ProofOfWork>,
    mx: Option<MxChecker>,
    domains: DomainLists,
    disposable_domains: DisposableAction,
    forms: Option<FormClock>,
}

impl Firewall {
    /// `altcha_keys`: the HMAC keys of the challenges, the first signing (see
    /// `TokenSigner::derived_keys`); the form's render times are signed with keys derived
    /// from them.
    pub fn new(
        settings: &FirewallSettings,
        altcha_keys: &[[u8; 32]],
    ) -> Result<Self, FirewallConfigError> {
        let proof_of_work = if settings.proof_of_work {
            Some(
                ProofOfWork::new(
                    altcha_keys,
                    settings.challenge_ttl,
                    settings.proof_of_work_max_number,
                )
                .ok_or(FirewallConfigError::NoKey)?,
            )
        } else {
            None
        };
        let mx = if settings.check_mx {
            Some(MxChecker::new(&settings.dns_servers)?)
        } else {
            None
        };
        Ok(Self {
            proof_of_work,
            mx,
            domains: DomainLists::new(&settings.blocked_domains, &settings.allowed_domains)?,
            disposable_domains: settings.disposable_domains,
            forms: FormClock::new(altcha_keys, settings.min_fill),
        })
    }

    /// The signed render time for the hosted form, when `signup.min_fill_seconds` is on.
    pub fn form_stamp(&self, now: DateTime<Utc>) -> Option<String> {
        self.forms.as_ref().map(|forms| forms.stamp(now))
    }

    /// Whether a form with this render time came back too fast to be a person's.
    pub fn filled_too_fast(&self, stamp: Option<&str>, now: DateTime<Utc>) -> bool {
        self.forms
            .as_ref()
            .is_some_and(|forms| forms.too_fast(stamp, now))
    }

    /// Whether addresses' domains are looked up in DNS (`signup.check_mx`).
    pub fn checks_mx(&self) -> bool {
        self.mx.is_some()
    }

    /// The challenge maker, when `signup.proof_of_work` is on.
    pub fn proof_of_work(&self) -> Option<&ProofOfWork> {
        self.proof_of_work.as_ref()
    }

    /// Accepts a solved challenge once, before it expires; with the proof of work off,
    /// accepts anything (the payload is not looked at). `payload` is the `altcha` field
    /// as sent; `None` or blank when it was missing.
    pub async fn verify_proof(
        &self,
        store: &dyn Store,
        payload: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), ProofError> {
        let Some(proof_of_work) = &self.proof_of_work else {
            return Ok(());
        };
        let solved = proof_of_work.check(payload.unwrap_or_default(), now)?;
        if store
            .spend_once(&solved.replay_key, solved.expires_at, now)
            .await?
        {
            Ok(())
        } else {
            Err(ProofRefusal::Replayed.into())
        }
    }

    /// The address checks, cheapest first: the operator's blocked list, a refusal of
    /// throw-away domains, the domain's DNS (when `signup.check_mx`), then the quarantine
    /// of throw-away domains. A DNS failure never refuses.
    pub async fn judge(&self, email: &EmailAddress, now: DateTime<Utc>) -> Verdict {
        let domain = email.domain();
        let class = self.domains.classify(domain);
        let disposable = class == DomainClass::Disposable;
        if class == DomainClass::Blocked {
            return Verdict::Refuse(RefuseReason::BlockedDomain);
        }
        if disposable && self.disposable_domains == DisposableAction::Refuse {
            return Verdict::Refuse(RefuseReason::DisposableDomain);
        }
        if let Some(mx) = &self.mx {
            if let MailHost::Undeliverable(why) = mx.check(domain, now).await {
                return Verdict::Refuse(RefuseReason::Undeliverable(why));
            }
        }
        if disposable && self.disposable_domains == DisposableAction::Quarantine {
            return Verdict::Quarantine(QuarantineReason::DisposableDomain);
        }
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> FirewallSettings {
        FirewallSettings {
            proof_of_work: false,
            challenge_ttl: Duration::seconds(300),
            proof_of_work_max_number: 1000,
            check_mx: false,
            dns_servers: Vec::new(),
            disposable_domains: DisposableAction::Quarantine,
            blocked_domains: vec!["blocked.example".into()],
            allowed_domains: vec!["yopmail.com".into()],
            min_fill: Duration::seconds(2),
        }
    }

    async fn judge(firewall: &Firewall, text: &str) -> Verdict {
        let email = EmailAddress::parse(text).unwrap();
        firewall.judge(&email, Utc::now()).await
    }

    #[tokio::test]
    async fn each_domain_list_leads_to_its_verdict() {
        let quarantine = Firewall::new(&settings(), &[[1; 32]]).unwrap();
        assert_eq!(
            judge(&quarantine, "a@blocked.example").await,
            Verdict::Refuse(RefuseReason::BlockedDomain)
        );
        assert_eq!(
            judge(&quarantine, "a@mailinator.com").await,
            Verdict::Quarantine(QuarantineReason::DisposableDomain)
        );
        assert_eq!(judge(&quarantine, "a@yopmail.com").await, Verdict::Pass);
        assert_eq!(judge(&quarantine, "a@example.org").await, Verdict::Pass);

        let refuse = Firewall::new(
            &FirewallSettings {
                disposable_domains: DisposableAction::Refuse,
                ..settings()
            },
            &[],
        )
        .unwrap();
        assert_eq!(
            judge(&refuse, "a@mailinator.com").await,
            Verdict::Refuse(RefuseReason::DisposableDomain)
        );
        let allow = Firewall::new(
            &FirewallSettings {
                disposable_domains: DisposableAction::Allow,
                ..settings()
            },
            &[],
        )
        .unwrap();
        assert_eq!(judge(&allow, "a@mailinator.com").await, Verdict::Pass);
        assert_eq!(
            judge(&allow, "a@blocked.example").await,
            Verdict::Refuse(RefuseReason::BlockedDomain)
        );
    }

    #[test]
    fn the_proof_of_work_needs_a_key_and_is_absent_when_off() {
        let on = FirewallSettings {
            proof_of_work: true,
            ..settings()
        };
        assert!(matches!(
            Firewall::new(&on, &[]),
            Err(FirewallConfigError::NoKey)
        ));
        assert!(Firewall::new(&on, &[[1; 32]])
            .unwrap()
            .proof_of_work()
            .is_some());
        assert!(Firewall::new(&settings(), &[[1; 32]])
            .unwrap()
            .proof_of_work()
            .is_none());
    }
}
