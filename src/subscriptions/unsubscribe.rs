//! Unsubscribe: RFC 8058 one-click and the unsubscribe page. Honoured at once, with an
//! event. The unsubscribe link of a confirmation mail cancels that pending signup instead,
//! recording nothing as unsubscribed that was never subscribed unless the person asks to
//! block further signups.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Plan, Planned, Subscriptions};
use crate::domain::{
    Contact, ContactId, RequestMeta, Source, Status, StatusChange, SubscriptionTypeId,
};
use crate::store::StoreError;
use crate::tokens::{Claims, Purpose, TokenError};

#[derive(Debug, thiserror::Error)]
pub enum UnsubscribeError {
    #[error("the unsubscribe link is not valid")]
    InvalidToken(#[source] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnsubscribeTarget {
    /// Leave one subscription type.
    Type(SubscriptionTypeId),
    /// Withdraw the pending signup a confirmation mail was about.
    Signup(Uuid),
}

#[derive(Clone, Debug)]
pub struct Unsubscribed {
    pub contact_id: ContactId,
    pub target: UnsubscribeTarget,
    /// The types the link concerns (for a cancelled signup, the types it asked for).
    pub types: Vec<SubscriptionTypeId>,
    pub locale: Option<String>,
    /// Every type the link concerns is already unsubscribed (as read before any change).
    pub already_unsubscribed: bool,
}

impl Subscriptions {
    /// Verifies an unsubscribe token; changes nothing.
    pub fn check_unsubscribe_token(
        &self,
        token: &str,
    ) -> Result<(Claims, UnsubscribeTarget), UnsubscribeError> {
        let claims = self
            .links()
            .signer()
            .verify(token, Purpose::Unsubscribe, self.now())
            .map_err(|reason| {
                tracing::debug!(%reason, "unsubscribe token refused");
                UnsubscribeError::InvalidToken(reason)
            })?;
        let target = match (&claims.subscription_type, claims.pending_id) {
            (Some(type_id), _) => UnsubscribeTarget::Type(type_id.clone()),
            (None, Some(pending)) => UnsubscribeTarget::Signup(pending),
            (None, None) => return Err(UnsubscribeError::InvalidToken(TokenError::Malformed)),
        };
        Ok((claims, target))
    }

    /// What the page shows before anything is done: the contact's locale and the types.
    pub async fn describe_unsubscribe(
        &self,
        token: &str,
    ) -> Result<Unsubscribed, UnsubscribeError> {
        let (claims, target) = self.check_unsubscribe_token(token)?;
        let contact = self.store().load_contact(&claims.contact_id).await?;
        Ok(describe(&claims.contact_id, target, contact.as_ref()))
    }

    /// `block`: also mark never-subscribed types as unsubscribed, so the person's choice
    /// not to be asked again is on record.
    pub async fn unsubscribe(
        &self,
        token: &str,
        source: Source,
        block: bool,
        meta: &RequestMeta,
    ) -> Result<Unsubscribed, UnsubscribeError> {
        let (claims, target) = self.check_unsubscribe_token(token)?;
        self.change_contact(&claims.contact_id, |before, now| {
            Ok::<_, UnsubscribeError>(plan_unsubscribe(
                &claims.contact_id,
                before,
                &target,
                source,
                block,
                meta,
                now,
            ))
        })
        .await
    }
}

fn describe(
    contact_id: &ContactId,
    target: UnsubscribeTarget,
    contact: Option<&Contact>,
) -> Unsubscribed {
    let types = match &target {
        UnsubscribeTarget::Type(type_id) => vec![type_id.clone()],
        UnsubscribeTarget::Signup(pending) => contact
            .and_then(|c| c.pending(*pending))
            .map(|p| p.types.clone())
            .unwrap_or_default(),
    };
    let already_unsubscribed = !types.is_empty()
        && contact.is_some_and(|c| {
            types
                .iter()
                .all(|t| c.status(t) == crate::domain::Status::Unsubscribed)
        });
    Unsubscribed {
        contact_id: contact_id.clone(),
        target,
        types,
        locale: contact.map(|c| c.locale.clone()),
        already_unsubscribed,
    }
}

fn plan_unsubscribe(
    contact_id: &ContactId,
    before: Option<&Contact>,
    target: &UnsubscribeTarget,
    source: Source,
    block: bool,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Planned<Unsubscribed> {
    let outcome = describe(contact_id, target.clone(), before);
    let Some(before) = before else {
        return Planned::Nothing(outcome);
    };
    let mut contact = before.clone();
    let mut events = Vec::new();
    for type_id in &outcome.types {
        withdraw_pending(&mut contact, type_id, target);
        let leave = contact.status(type_id) == Status::OptedIn
            || (block && contact.status(type_id) == Status::NotSubscribed);
        if leave {
            events.extend(contact.change_status(
                type_id,
                StatusChange::new(Status::Unsubscribed, source),
                meta,
                now,
            ));
        }
    }
    if &contact == before {
        return Planned::Nothing(outcome);
    }
    if contact.holds_only_pending() && contact.pending.is_empty() {
        // Nothing but a withdrawn signup was held: keep no personal data at all.
        return Planned::Write(Plan::delete(outcome));
    }
    Planned::Write(Plan::keep(contact, events, outcome))
}

/// Removes the type from pending signups (or the whole signup the link was about).
fn withdraw_pending(
    contact: &mut Contact,
    type_id: &SubscriptionTypeId,
    target: &UnsubscribeTarget,
) {
    for pending in &mut contact.pending {
        if let Some(index) = pending.types.iter().position(|t| t == type_id) {
            pending.types.remove(index);
            pending.notices.retain(|n| &n.id != type_id);
        }
    }
    contact
        .pending
        .retain(|p| !p.types.is_empty() && *target != UnsubscribeTarget::Signup(p.id));
}
