//! Why an operation was refused. One enum per kind of caller: public signups
//! ([`SignupError`]), link pages ([`super::LinkError`]), the authenticated API in all its
//! doors ([`RequestError`]) and feedback inputs ([`super::FeedbackError`]). The web layer
//! maps each to an answer in one place.

use super::commit::Moved;
use crate::domain::{ManualChangeError, MemberError, OptInRefused, UnknownNotice, UnknownType};
use crate::firewall::{ProofError, ProofRefusal, RefuseReason};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error("subscription_types: at least one subscription type is required")]
    NoTypes,
    #[error("subscription_types: {0}")]
    UnknownType(#[from] UnknownType),
    #[error("notice_version: {0}")]
    UnknownNotice(#[from] UnknownNotice),
    #[error("too many signups from this client; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// `signup.proof_of_work` is on and the `altcha` proof is missing or not accepted.
    #[error("altcha: {0}")]
    ProofOfWork(ProofRefusal),
    /// The firewall refuses the address: no mail can reach its domain, or the domain is
    /// blocked or a refused throw-away one.
    #[error("email: {}", refusal_text(*.0))]
    Undeliverable(RefuseReason),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refusal_text(reason: RefuseReason) -> String {
    match reason {
        RefuseReason::Undeliverable(why) => {
            format!("no mail can be delivered to this domain ({})", why.as_str())
        }
        RefuseReason::BlockedDomain => "addresses at this domain are not accepted".into(),
        RefuseReason::DisposableDomain => "addresses at throw-away domains are not accepted".into(),
    }
}

impl From<ProofError> for SignupError {
    fn from(error: ProofError) -> Self {
        match error {
            ProofError::Refused(refusal) => SignupError::ProofOfWork(refusal),
            ProofError::Store(error) => SignupError::Store(error),
        }
    }
}

impl From<Moved> for SignupError {
    // A signup never refuses a moved address (see `Reach::Signup`), so this cannot occur;
    // should it, the store's conflict answer is the honest one.
    fn from(_: Moved) -> Self {
        SignupError::Store(StoreError::Conflict)
    }
}

/// Why a request of the authenticated API (the native `/v1` routes, the console, the
/// HubSpot and Mailchimp APIs) was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("nothing is held for this address")]
    NotFound,
    #[error("subscription_type: {0}")]
    UnknownType(#[from] UnknownType),
    /// A rule of manual changes, or of asking someone to confirm.
    #[error(transparent)]
    Refused(#[from] ManualChangeError),
    /// A Mailchimp member write that does not fit the member's standing.
    #[error(transparent)]
    Member(MemberError),
    #[error("new_email: the new address already has its own data; erase or merge it first")]
    TargetExists,
    #[error("new_email: the new address is the same as the old one")]
    SameAddress,
    #[error(transparent)]
    Moved(#[from] Moved),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<MemberError> for RequestError {
    fn from(error: MemberError) -> Self {
        match error {
            MemberError::Refused(refused) => RequestError::Refused(refused),
            other => RequestError::Member(other),
        }
    }
}

impl From<OptInRefused> for RequestError {
    fn from(refused: OptInRefused) -> Self {
        RequestError::Refused(refused.into())
    }
}
