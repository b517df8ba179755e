//! What every token route shares: verifying the link for its purpose, the one error
//! type its pages are chosen by, and the budgets of POSTs per contact and link purpose.

use super::commit::Moved;
use super::Subscriptions;
use crate::domain::{ContactId, UnknownNotice};
use crate::store::StoreError;
use crate::tokens::{Claims, Purpose, TokenError};

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
    /// More state-changing POSTs for this contact and link purpose than
    /// `links.max_posts_per_hour`.
    #[error("too many requests for this link")]
    TooManyRequests,
    /// Export and erasure need a preferences link issued within
    /// `links.rights_max_age_minutes`.
    #[error("this action needs a fresh preferences link")]
    NeedsFreshLink,
    /// A tick whose notice the page did not show: nothing changed, and the page is shown
    /// again with today's text.
    #[error(transparent)]
    NoticeNotShown(#[from] UnknownNotice),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Moved> for LinkError {
    // Links follow a moved contact (see `Reach::Link`); were one refused, the link would
    // reach nothing any more.
    fn from(_: Moved) -> Self {
        LinkError::Gone
    }
}

/// The window of the per-contact POST budgets.
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
    /// hourly budget for links of `purpose`. Each purpose has its own budget, so that
    /// the unsubscribe link in every newsletter's headers can never spend what the
    /// person's own preferences, export, erasure or confirmation need. One-click
    /// unsubscribe never calls this: it is never refused.
    pub(crate) async fn spend_post(
        &self,
        contact: &ContactId,
        purpose: Purpose,
    ) -> Result<(), LinkError> {
        let limit = u64::from(self.config.settings.links.max_posts_per_hour);
        let key = format!("tp:{}:{contact}", purpose.code());
        let hits = self
            .store
            .count_hit(&key, POST_BUDGET_WINDOW_SECS, self.now())
            .await?;
        if hits > limit {
            tracing::info!(contact = %contact, ?purpose, "token route POST budget exhausted");
            return Err(LinkError::TooManyRequests);
        }
        Ok(())
    }
}
