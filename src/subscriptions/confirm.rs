//! Confirmation: the POST behind the button on the confirmation page opts in every type
//! of that signup, with the consent evidence of both the signup and the click.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Plan, Planned, Subscriptions};
use crate::domain::{
    Contact, LawfulBasis, RequestMeta, Source, Status, StatusChange, SubscriptionTypeId,
};
use crate::store::StoreError;
use crate::tokens::{Claims, Purpose, TokenError};

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("the confirmation link is not valid")]
    InvalidToken(#[source] TokenError),
    #[error("the confirmation link has expired")]
    Expired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the person confirmed; also answered for a repeated click.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmed {
    pub types: Vec<SubscriptionTypeId>,
    pub locale: Option<String>,
    /// The contact's preference center, for the confirmed page.
    pub preferences_url: Option<String>,
}

impl Subscriptions {
    /// Checks a confirmation token without changing anything (for the GET page).
    pub fn check_confirm_token(&self, token: &str) -> Result<Claims, ConfirmError> {
        match self
            .links()
            .signer()
            .verify(token, Purpose::Confirm, self.now())
        {
            Ok(claims) if claims.pending_id.is_some() => Ok(claims),
            Ok(_) => Err(ConfirmError::InvalidToken(TokenError::Malformed)),
            Err(TokenError::Expired) => Err(ConfirmError::Expired),
            Err(other) => {
                tracing::debug!(reason = %other, "confirmation token refused");
                Err(ConfirmError::InvalidToken(other))
            }
        }
    }

    pub async fn confirm(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<Confirmed, ConfirmError> {
        let claims = self.check_confirm_token(token)?;
        let pending_id = claims.pending_id.expect("checked by check_confirm_token");
        let confirmed = self
            .change_contact(&claims.contact_id, |before, now| {
                plan_confirm(before, pending_id, meta, now)
            })
            .await?;
        let preferences_url = Some(self.links().preferences(&claims.contact_id, self.now()));
        Ok(Confirmed {
            preferences_url,
            ..confirmed
        })
    }
}

fn plan_confirm(
    before: Option<&Contact>,
    pending_id: Uuid,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Planned<Confirmed>, ConfirmError> {
    // The contact is gone (expired and purged, or erased): the link can do nothing more.
    let Some(before) = before else {
        return Err(ConfirmError::Expired);
    };
    let Some(pending) = before.pending(pending_id).cloned() else {
        // Already confirmed: a second click is harmless and shows the same page.
        let confirmed = Confirmed {
            types: Vec::new(),
            locale: Some(before.locale.clone()),
            preferences_url: None,
        };
        return Ok(Planned::Nothing(confirmed));
    };
    let mut contact = before.clone();
    let mut events = Vec::new();
    for (type_id, notice) in pending.types.iter().zip(&pending.notices) {
        let mut change = StatusChange::new(Status::OptedIn, Source::ConfirmLink)
            .with_basis(LawfulBasis::Consent);
        change.consent_notice = Some(notice.clone());
        change.signup = Some(pending.signup.clone());
        events.extend(contact.change_status(type_id, change, meta, now));
    }
    contact.pending.retain(|p| p.id != pending_id);
    let confirmed = Confirmed {
        types: pending.types.clone(),
        locale: Some(pending.locale.clone()),
        preferences_url: None,
    };
    let mut plan = Plan::keep(contact, events, confirmed);
    // A person who was erased and signs up again has given new consent themselves.
    plan.clear_tombstone = true;
    Ok(Planned::Write(plan))
}
