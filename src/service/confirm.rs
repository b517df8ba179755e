//! Confirmation links: the page a GET shows (it changes nothing, since mail scanners
//! fetch every link), and the POST behind its button, which opts in every type of that
//! signup. Only the first, successful POST shows a preferences link: a used
//! confirmation link, forwarded or archived, mints no rights.

use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

use super::commit::Reach;
use super::{LinkError, Subscriptions};
use crate::domain::{Confirmed, RequestMeta};
use crate::tokens::{Claims, Purpose, TokenError};

/// What a confirmation link's page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmPage {
    pub confirmed: Confirmed,
    /// The contact's preference center: only on the page of the click that confirmed,
    /// and only because the link came by mail to the address itself.
    pub preferences_url: Option<String>,
}

impl Subscriptions {
    fn confirm_claims(&self, token: &str) -> Result<(Claims, Uuid), LinkError> {
        let claims = self.verify_link(token, Purpose::Confirm)?;
        match claims.pending_id {
            Some(pending_id) => Ok((claims, pending_id)),
            None => Err(LinkError::Invalid(TokenError::Malformed)),
        }
    }

    /// The page of `GET /confirm/{token}`: the signup waiting for the click, or the one
    /// the link already confirmed. Changes nothing.
    pub async fn confirmation_page(&self, token: &str) -> Result<ConfirmPage, LinkError> {
        let (claims, pending_id) = self.confirm_claims(token)?;
        let contact = self.store.load_contact(&claims.contact_id).await?;
        let confirmed = contact
            .and_then(|c| c.confirmation(pending_id))
            .ok_or(LinkError::Expired)?;
        Ok(ConfirmPage {
            confirmed,
            preferences_url: None,
        })
    }

    pub async fn confirm(&self, token: &str, meta: &RequestMeta) -> Result<ConfirmPage, LinkError> {
        let (claims, pending_id) = self.confirm_claims(token)?;
        self.spend_post(&claims.contact_id, Purpose::Confirm)
            .await?;
        // The signup's evidence, as read by the attempt that was written.
        let signup = Mutex::new(None);
        let confirmed = self
            .commit(&claims.contact_id, Reach::Link, |found| {
                // The contact is gone (expired and purged, or erased), or the signup was
                // withdrawn: the link can do nothing more.
                let contact = found.contact.ok_or(LinkError::Expired)?;
                *signup.lock().unwrap_or_else(PoisonError::into_inner) = contact
                    .pending_confirmation(pending_id)
                    .map(|pending| pending.signup.clone());
                contact
                    .clone()
                    .confirm(pending_id, meta, found.now)
                    .ok_or(LinkError::Expired)
            })
            .await?;
        let preferences_url = match &confirmed {
            Confirmed::Now { locale, .. } => {
                metrics::counter!("optin_confirmations_total").increment(1);
                let signup = signup.into_inner().unwrap_or_else(PoisonError::into_inner);
                if let Some(signup) = signup {
                    // The person is confirmed whatever the count does: a count not given
                    // back only makes the burst check stricter for the rest of the hour.
                    if let Err(error) = self.count_confirmed_from(&signup).await {
                        tracing::warn!(%error, "a confirmed signup's burst count was not given back");
                    }
                }
                Some(
                    self.links()
                        .preferences(&claims.contact_id, locale, self.now()),
                )
            }
            Confirmed::Already { .. } => None,
        };
        Ok(ConfirmPage {
            confirmed,
            preferences_url,
        })
    }
}
