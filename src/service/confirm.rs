//! Confirmation: the POST behind the button on the confirmation page opts in every type
//! of that signup, with the consent evidence of both the signup and the click.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::LinkError;
use super::{Plan, Planned, Subscriptions};
use crate::domain::{
    Contact, LawfulBasis, RequestMeta, Source, Status, StatusChange, SubscriptionTypeId,
};
use crate::tokens::{Claims, Purpose, TokenError};

/// What the person confirmed; also answered for a repeated click.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmed {
    pub types: Vec<SubscriptionTypeId>,
    pub locale: Option<String>,
    /// The contact's preference center, for the confirmed page.
    pub preferences_url: Option<String>,
}

impl Subscriptions {
    /// Checks a confirmation token without changing anything (for the GET page), and
    /// gives the pending confirmation it is for.
    pub fn check_confirm_token(&self, token: &str) -> Result<(Claims, Uuid), LinkError> {
        let claims = self.verify_link(token, Purpose::Confirm)?;
        match claims.pending_id {
            Some(pending_id) => Ok((claims, pending_id)),
            None => Err(LinkError::Invalid(TokenError::Malformed)),
        }
    }

    pub async fn confirm(&self, token: &str, meta: &RequestMeta) -> Result<Confirmed, LinkError> {
        let (claims, pending_id) = self.check_confirm_token(token)?;
        self.spend_post(&claims.contact_id).await?;
        let confirmed = self
            .change_contact(&claims.contact_id, |before, now, _| {
                plan_confirm(before, pending_id, meta, now)
            })
            .await?;
        // The confirmation mail went to the address itself, so its page may link there.
        let locale = confirmed
            .locale
            .clone()
            .or(claims.locale)
            .unwrap_or_else(|| self.config().catalog.default_locale().to_string());
        let preferences_url = Some(self.links().preferences(
            &claims.contact_id,
            &locale,
            self.now(),
        ));
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
) -> Result<Planned<Confirmed>, LinkError> {
    // The contact is gone (expired and purged, or erased): the link can do nothing more.
    let Some(before) = before else {
        return Err(LinkError::Expired);
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
    // The person read the mail and clicked: the mailbox works, whatever bounced before.
    events.extend(contact.clear_unreachable(Source::ConfirmLink, meta, now));
    // The language of the mail they answered becomes theirs.
    contact.locale = pending.locale.clone();
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
