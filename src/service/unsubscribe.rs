//! Unsubscribe: RFC 8058 one-click and the unsubscribe page. Honoured at once, with an
//! event. An unsubscribe link reaches no further than its one type: it can leave it, ask
//! to rejoin it through a new confirmation mail, and ask for a preferences link by mail.
//!
//! Two unsubscribe links carry no type: the one in a confirmation mail cancels that
//! pending signup (and may block further confirmation requests), and the one in a
//! "your preferences link" mail blocks further confirmation requests.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{LinkError, Plan, Planned, Subscriptions};
use crate::domain::{
    ConfirmationRequest, Contact, ContactId, RequestMeta, SignupEvidence, Source, Status,
    StatusChange, SubscriptionTypeId,
};
use crate::tokens::{Claims, Purpose};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnsubscribeTarget {
    /// Leave one subscription type.
    Type(SubscriptionTypeId),
    /// Withdraw the pending signup a confirmation mail was about.
    Signup(Uuid),
    /// Stop confirmation requests (the link of a mail someone else asked for).
    Requests,
}

#[derive(Clone, Debug)]
pub struct Unsubscribed {
    pub contact_id: ContactId,
    pub target: UnsubscribeTarget,
    /// The types the link concerns (for a cancelled signup, the types it asked for).
    pub types: Vec<SubscriptionTypeId>,
    /// The language of the mail that carried the link, else the contact's.
    pub locale: Option<String>,
    /// Every type the link concerns is already unsubscribed (as read before any change).
    pub already_unsubscribed: bool,
    /// Confirmation requests are blocked (after the change, if any).
    pub requests_blocked: bool,
}

/// The answer to "resubscribe": whether a confirmation mail was queued is not told, so
/// that the page says the same whatever the address's state.
#[derive(Clone, Debug)]
pub struct ResubscribeRequested {
    pub types: Vec<SubscriptionTypeId>,
    pub locale: Option<String>,
}

impl Subscriptions {
    /// Verifies an unsubscribe token; changes nothing.
    pub fn check_unsubscribe_token(
        &self,
        token: &str,
    ) -> Result<(Claims, UnsubscribeTarget), LinkError> {
        let claims = self.verify_link(token, Purpose::Unsubscribe)?;
        let target = match (&claims.subscription_type, claims.pending_id) {
            (Some(type_id), _) => UnsubscribeTarget::Type(type_id.clone()),
            (None, Some(pending)) => UnsubscribeTarget::Signup(pending),
            (None, None) => UnsubscribeTarget::Requests,
        };
        Ok((claims, target))
    }

    /// What the page shows before anything is done.
    pub async fn describe_unsubscribe(&self, token: &str) -> Result<Unsubscribed, LinkError> {
        let (claims, target) = self.check_unsubscribe_token(token)?;
        let contact = self.store.load_contact(&claims.contact_id).await?;
        Ok(describe(&claims, target, contact.as_ref()))
    }

    /// `one_click`: RFC 8058, never refused. `block`: on a cancelled signup, also stop
    /// further confirmation requests.
    pub async fn unsubscribe(
        &self,
        token: &str,
        one_click: bool,
        block: bool,
        meta: &RequestMeta,
    ) -> Result<Unsubscribed, LinkError> {
        let (claims, target) = self.check_unsubscribe_token(token)?;
        let source = if one_click {
            Source::OneClick
        } else {
            self.spend_post(&claims.contact_id).await?;
            Source::UnsubscribePage
        };
        self.change_contact(&claims.contact_id, |before, now, _| {
            Ok::<_, LinkError>(plan_unsubscribe(
                &claims, before, &target, source, block, meta, now,
            ))
        })
        .await
    }

    /// "Resubscribe" on the unsubscribe page: a new confirmation mail for the link's type,
    /// never a direct opt-in, since whoever holds the link need not own the address.
    pub async fn resubscribe(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<ResubscribeRequested, LinkError> {
        let (claims, target) = self.check_unsubscribe_token(token)?;
        let UnsubscribeTarget::Type(type_id) = target else {
            return Err(LinkError::Invalid(crate::tokens::TokenError::WrongPurpose));
        };
        self.spend_post(&claims.contact_id).await?;
        let catalog = &self.config().catalog;
        let ttl = Duration::days(i64::from(
            self.config().settings.signup.confirmation_ttl_days,
        ));
        let locale = claims.locale.as_deref().unwrap_or(catalog.default_locale());
        let notice = catalog
            .get(type_id.as_str())
            .map(|t| t.current_notice_ref(locale, catalog.default_locale()))
            .ok_or(LinkError::Gone)?;
        let answer = ResubscribeRequested {
            types: vec![type_id.clone()],
            locale: claims.locale.clone(),
        };
        self.change_contact(&claims.contact_id, |before, now, may_mail| {
            let before = before.ok_or(LinkError::Gone)?;
            let blocked = before.signup_blocked_since.is_some();
            if !may_mail || blocked || before.status(&type_id) == Status::OptedIn {
                return Ok(Planned::Nothing(answer.clone()));
            }
            let mut contact = before.clone();
            let job = contact.request_confirmation(
                ConfirmationRequest {
                    types: vec![type_id.clone()],
                    notices: vec![notice.clone()],
                    locale: claims.locale.clone().unwrap_or(contact.locale.clone()),
                    ttl,
                    signup: SignupEvidence::from_request(Source::UnsubscribePage, meta, now),
                },
                now,
            );
            let mut plan = Plan::keep(contact, Vec::new(), answer.clone());
            plan.jobs.push(job);
            Ok(Planned::Write(plan))
        })
        .await
    }
}

fn describe(claims: &Claims, target: UnsubscribeTarget, contact: Option<&Contact>) -> Unsubscribed {
    let types = match &target {
        UnsubscribeTarget::Type(type_id) => vec![type_id.clone()],
        UnsubscribeTarget::Signup(pending) => contact
            .and_then(|c| c.pending(*pending))
            .map(|p| p.types.clone())
            .unwrap_or_default(),
        UnsubscribeTarget::Requests => Vec::new(),
    };
    let already_unsubscribed = !types.is_empty()
        && contact.is_some_and(|c| types.iter().all(|t| c.status(t) == Status::Unsubscribed));
    Unsubscribed {
        contact_id: claims.contact_id.clone(),
        target,
        types,
        locale: claims
            .locale
            .clone()
            .or_else(|| contact.map(|c| c.locale.clone())),
        already_unsubscribed,
        requests_blocked: contact.is_some_and(|c| c.signup_blocked_since.is_some()),
    }
}

fn plan_unsubscribe(
    claims: &Claims,
    before: Option<&Contact>,
    target: &UnsubscribeTarget,
    source: Source,
    block: bool,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Planned<Unsubscribed> {
    let mut outcome = describe(claims, target.clone(), before);
    let Some(before) = before else {
        return Planned::Nothing(outcome);
    };
    let mut contact = before.clone();
    let mut events = Vec::new();
    for type_id in &outcome.types {
        withdraw_pending(&mut contact, type_id, target);
        if contact.status(type_id) == Status::OptedIn {
            events.extend(contact.change_status(
                type_id,
                StatusChange::new(Status::Unsubscribed, source),
                meta,
                now,
            ));
        }
    }
    let blocks = match target {
        UnsubscribeTarget::Requests => true,
        UnsubscribeTarget::Signup(_) => block,
        UnsubscribeTarget::Type(_) => false,
    };
    if blocks {
        events.extend(contact.block_signups(source, meta, now));
    }
    outcome.requests_blocked = contact.signup_blocked_since.is_some();
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
