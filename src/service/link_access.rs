//! What every token route shares: verifying the link for its purpose, the one error
//! type its pages are chosen by, and the per-contact budget of POSTs.

use crate::domain::ContactId;
use crate::store::StoreError;
use crate::tokens::{Claims, Purpose, TokenError};

use super::Subscriptions;

/// Why a link could not do what was asked. Routes map it to a page in one place.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Forged, malformed or for another purpose. The reason is logged at debug level only.
    #[error("the link is not valid")]
    Invalid(#[source] TokenError),
    #[error("the link has expired")]
    Expired,
    /// The contact no longer exists (erased, or its only signup expired).
    #[error("there is nothing stored for this link any more")]
    Gone,
    /// More state-changing POSTs for this contact than `links.max_posts_per_hour`.
    #[error("too many requests for this link")]
    TooManyRequests,
    /// Export and erasure need a preferences link issued within
    /// `links.rights_max_age_minutes`.
    #[error("this action needs a fresh preferences link")]
    NeedsFreshLink,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The window of the per-contact POST budget.
const POST_BUDGET_WINDOW_SECS: u64 = 3600;

impl Subscriptions {
    /// Verifies a link for one purpose; every failure is one generic answer.
    pub fn verify_link(&self, token: &str, purpose: Purpose) -> Result<Claims, LinkError> {
        self.links()
            .signer()
            .verify(token, purpose, self.now())
            .map_err(|reason| {
                tracing::debug!(%reason, ?purpose, "link refused");
                match reason {
                    TokenError::Expired => LinkError::Expired,
                    other => LinkError::Invalid(other),
                }
            })
    }

    /// Counts one state-changing or export POST on a token route against the contact's
    /// hourly budget. One-click unsubscribe never calls this: it is never refused.
    pub(crate) async fn spend_post(&self, contact: &ContactId) -> Result<(), LinkError> {
        let limit = u64::from(self.config().settings.links.max_posts_per_hour);
        let hits = self
            .store
            .count_hit(
                &format!("tp:{contact}"),
                POST_BUDGET_WINDOW_SECS,
                self.now(),
            )
            .await?;
        if hits > limit {
            tracing::info!(contact = %contact, "token route POST budget exhausted");
            return Err(LinkError::TooManyRequests);
        }
        Ok(())
    }
}
