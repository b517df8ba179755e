//! Confirmations: the page a link's GET shows (it changes nothing, since mail scanners
//! fetch every link), the POST that confirms, and the code from the mail.
//!
//! A browser that holds the binding of the very signup a link is for (the `optin_bind`
//! cookie, see [`SignupRef`]) gets a page that submits itself: the person clicks the
//! link and is done. Any other browser, a scanner's among them, gets the button. Only
//! the first, successful confirmation shows a preferences link: a used confirmation
//! link, forwarded or archived, mints no rights.

use uuid::Uuid;

use super::commit::Reach;
use super::{LinkError, Subscriptions};
use crate::domain::{
    CodeAttempt, CodeOutcome, ConfirmMethod, Confirmed, ContactId, Planned, RequestMeta,
    SignupEvidence,
};
use crate::tokens::{Claims, Purpose, SignupRef, TokenError};

/// What a confirmation link's page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmPage {
    pub confirmed: Confirmed,
    /// The contact's preference center: only on the page of the click that confirmed,
    /// and only because the link came by mail to the address itself.
    pub preferences_url: Option<String>,
    /// The page is shown to the browser that signed up (its binding is for this link),
    /// so it may submit itself.
    pub bound: bool,
}

/// How a confirm POST came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// By the page's own script, which only a bound browser's page has.
    Automatically,
    ByButton,
}

/// A confirm POST, parsed: how it came, the browser's binding, and who sent it.
#[derive(Clone, Debug)]
pub struct ConfirmRequest {
    pub submitted: Submitted,
    pub binding: Option<SignupRef>,
    pub meta: RequestMeta,
}

/// A code entered on the "check your inbox" page, parsed: the request's reference (its
/// hidden field) and the six digits.
#[derive(Clone, Debug)]
pub struct CodeRequest {
    pub reference: SignupRef,
    pub code: String,
    pub meta: RequestMeta,
    /// The client's network (an IPv4 address or an IPv6 /64), for the per-client limit.
    pub client_network: Option<String>,
}

/// What a code did: the page of a confirmation, or one refusal whatever the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeAnswer {
    Confirmed(ConfirmPage),
    Refused,
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
    pub async fn confirmation_page(
        &self,
        token: &str,
        binding: Option<&SignupRef>,
    ) -> Result<ConfirmPage, LinkError> {
        let (claims, pending_id) = self.confirm_claims(token)?;
        let contact = self.store.load_contact(&claims.contact_id).await?;
        let confirmed = contact
            .and_then(|c| c.confirmation(pending_id))
            .ok_or(LinkError::Expired)?;
        let waiting = matches!(confirmed, Confirmed::Now { .. });
        let bound = waiting && binding.is_some_and(|b| b.is_for(&claims));
        if waiting {
            let bound_label = if bound { "true" } else { "false" };
            metrics::counter!("optin_confirm_page_views_total", "bound" => bound_label)
                .increment(1);
        }
        Ok(ConfirmPage {
            confirmed,
            preferences_url: None,
            bound,
        })
    }

    pub async fn confirm(
        &self,
        token: &str,
        request: &ConfirmRequest,
    ) -> Result<ConfirmPage, LinkError> {
        let (claims, pending_id) = self.confirm_claims(token)?;
        // Only the bound page submits itself; a scanner that copied its form has no
        // binding, and is recorded as what it is, a button press.
        let method = match (request.submitted, &request.binding) {
            (Submitted::Automatically, Some(binding)) if binding.is_for(&claims) => {
                ConfirmMethod::SameBrowser
            }
            _ => ConfirmMethod::Button,
        };
        self.spend_post(&claims.contact_id, Purpose::Confirm)
            .await?;
        let (confirmed, signup) = self
            .commit(&claims.contact_id, Reach::Link, |found| {
                // The contact is gone (expired and purged, or erased), or the signup was
                // withdrawn: the link can do nothing more.
                let contact = found.contact.ok_or(LinkError::Expired)?;
                let signup = contact
                    .pending_confirmation(pending_id)
                    .map(|p| p.signup.clone());
                contact
                    .clone()
                    .confirm(pending_id, method, &request.meta, found.now)
                    .map(|planned| planned.map(|confirmed| (confirmed, signup)))
                    .ok_or(LinkError::Expired)
            })
            .await?;
        Ok(self
            .confirmed_page(&claims.contact_id, confirmed, signup, method)
            .await)
    }

    /// A code from the "check your inbox" page. A wrong code counts against its
    /// confirmation's tries; every refusal is the same answer.
    pub async fn confirm_by_code(&self, request: &CodeRequest) -> Result<CodeAnswer, LinkError> {
        if let Some(network) = &request.client_network {
            let limits = &self.config.settings.signup;
            let limited = self
                .count_network_hit(
                    "confirm-code",
                    network,
                    limits.ip_window_secs,
                    u64::from(limits.max_signups_per_ip),
                )
                .await?;
            if limited.is_some() {
                return Err(LinkError::TooManyRequests);
            }
        }
        let reference = &request.reference;
        let attempt = CodeAttempt {
            pending_id: reference.pending_id,
            right: self
                .links()
                .signer()
                .confirmation_code_matches(reference.pending_id, &request.code),
        };
        let (outcome, signup) = self
            .commit(&reference.contact_id, Reach::Link, |found| {
                Ok::<_, LinkError>(match found.contact {
                    Some(contact) => {
                        let signup = contact
                            .pending_confirmation(attempt.pending_id)
                            .map(|p| p.signup.clone());
                        contact
                            .clone()
                            .confirm_by_code(attempt, &request.meta, found.now)
                            .map(|outcome| (outcome, signup))
                    }
                    None => Planned::Nothing((CodeOutcome::Refused, None)),
                })
            })
            .await?;
        Ok(match outcome {
            CodeOutcome::Confirmed(confirmed) => CodeAnswer::Confirmed(
                self.confirmed_page(
                    &reference.contact_id,
                    confirmed,
                    signup,
                    ConfirmMethod::Code,
                )
                .await,
            ),
            CodeOutcome::Refused => CodeAnswer::Refused,
        })
    }

    /// The page after a confirmation. One that confirmed now gives its signup's count
    /// back to the burst check, and shows the preferences link.
    async fn confirmed_page(
        &self,
        contact_id: &ContactId,
        confirmed: Confirmed,
        signup: Option<SignupEvidence>,
        method: ConfirmMethod,
    ) -> ConfirmPage {
        let preferences_url = match &confirmed {
            Confirmed::Now { locale, .. } => {
                metrics::counter!("optin_confirmations_total", "method" => method.as_str())
                    .increment(1);
                if let Some(signup) = &signup {
                    // The person is confirmed whatever the count does: a count not given
                    // back only makes the burst check stricter for the rest of the hour.
                    if let Err(error) = self.count_confirmed_from(signup).await {
                        tracing::warn!(%error, "a confirmed signup's burst count was not given back");
                    }
                }
                Some(self.links().preferences(contact_id, locale, self.now()))
            }
            Confirmed::Already { .. } => None,
        };
        ConfirmPage {
            confirmed,
            preferences_url,
            bound: false,
        }
    }
}
