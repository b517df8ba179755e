//! Unsubscribe links: RFC 8058 one-click and the unsubscribe page, honoured at once, and
//! the page's "resubscribe". An unsubscribe link reaches no further than its one type (or
//! the signup, or the requests, it is about), and it still reaches the person after a
//! rectification moved them.

use super::commit::Reach;
use super::{LinkError, Subscriptions};
use crate::domain::{
    BlockRequests, Contact, RequestMeta, Source, SubscriptionTypeId, UnsubscribeTarget,
    Unsubscribed,
};
use crate::tokens::{Claims, Purpose, TokenError};

/// How the unsubscribe came: a mail client's one-click POST, never refused, or the
/// page's button, which spends the link's POST budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsubscribeKind {
    OneClick,
    Page(BlockRequests),
}

/// What an unsubscribe page shows, before or after its POST.
#[derive(Clone, Debug)]
pub struct UnsubscribePage {
    pub outcome: Unsubscribed,
    /// The mail's language, else the contact's.
    pub locale: String,
    /// The contact's `manage` link, for the page's "mail me a link to my preferences".
    pub manage_url: String,
}

/// The answer to "resubscribe": whether a mail was queued is not told, so that the page
/// says the same whatever the address's state.
#[derive(Clone, Debug)]
pub struct ResubscribeRequested {
    pub types: Vec<SubscriptionTypeId>,
    pub locale: Option<String>,
}

impl Subscriptions {
    fn unsubscribe_claims(&self, token: &str) -> Result<(Claims, UnsubscribeTarget), LinkError> {
        let claims = self.verify_link(token, Purpose::Unsubscribe)?;
        let target = match (&claims.subscription_type, claims.pending_id) {
            (Some(type_id), _) => UnsubscribeTarget::Type(type_id.clone()),
            (None, Some(pending)) => UnsubscribeTarget::Signup(pending),
            (None, None) => UnsubscribeTarget::Requests,
        };
        Ok((claims, target))
    }

    fn unsubscribe_page(
        &self,
        claims: &Claims,
        outcome: Unsubscribed,
        contact: Option<&Contact>,
    ) -> UnsubscribePage {
        let locale = claims
            .locale
            .clone()
            .or_else(|| contact.map(|c| c.locale().to_string()))
            .unwrap_or_else(|| self.rules.default_locale().to_string());
        let id = contact.map_or(&claims.contact_id, Contact::id);
        let manage_url = self.links().manage(id, Some(&locale), self.now());
        UnsubscribePage {
            outcome,
            locale,
            manage_url,
        }
    }

    /// What the page shows before anything is done.
    pub async fn describe_unsubscribe(&self, token: &str) -> Result<UnsubscribePage, LinkError> {
        let (claims, target) = self.unsubscribe_claims(token)?;
        let contact = self.read_link(&claims.contact_id).await?;
        let outcome = match &contact {
            Some(contact) => contact.describe_unsubscribe(target),
            None => Unsubscribed::nothing_held(target),
        };
        Ok(self.unsubscribe_page(&claims, outcome, contact.as_ref()))
    }

    pub async fn unsubscribe(
        &self,
        token: &str,
        kind: UnsubscribeKind,
        meta: &RequestMeta,
    ) -> Result<UnsubscribePage, LinkError> {
        let (claims, target) = self.unsubscribe_claims(token)?;
        let (source, block) = match kind {
            UnsubscribeKind::OneClick => (Source::OneClick, BlockRequests::No),
            UnsubscribeKind::Page(block) => {
                self.spend_post(&claims.contact_id, Purpose::Unsubscribe)
                    .await?;
                (Source::UnsubscribePage, block)
            }
        };
        let (outcome, contact) = self
            .commit(&claims.contact_id, Reach::Link, |found| {
                let Some(contact) = found.contact else {
                    return Ok::<_, LinkError>(crate::domain::Planned::Nothing((
                        Unsubscribed::nothing_held(target.clone()),
                        None,
                    )));
                };
                let planned =
                    contact
                        .clone()
                        .unsubscribe(target.clone(), source, block, meta, found.now);
                Ok(planned.map(|outcome| (outcome, Some(contact.clone()))))
            })
            .await?;
        metrics::counter!("optin_unsubscribes_total", "source" => match kind {
            UnsubscribeKind::OneClick => "one_click",
            UnsubscribeKind::Page(_) => "unsubscribe_page",
        })
        .increment(1);
        Ok(self.unsubscribe_page(&claims, outcome, contact.as_ref()))
    }

    /// "Resubscribe" on the unsubscribe page: a new confirmation mail for the link's type,
    /// never a direct opt-in, since whoever holds the link need not own the address.
    pub async fn resubscribe(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<ResubscribeRequested, LinkError> {
        let (claims, target) = self.unsubscribe_claims(token)?;
        let UnsubscribeTarget::Type(type_id) = target else {
            return Err(LinkError::Invalid(TokenError::WrongPurpose));
        };
        self.spend_post(&claims.contact_id, Purpose::Unsubscribe)
            .await?;
        let subscription_type = self
            .catalog()
            .lookup(type_id.as_str())
            .map_err(|_| LinkError::Gone)?;
        self.commit(&claims.contact_id, Reach::Link, |found| {
            let contact = found.contact.ok_or(LinkError::Gone)?;
            let locale = claims.locale.as_deref().unwrap_or(contact.locale());
            let notice = subscription_type.current_notice_ref(locale, self.rules.default_locale());
            Ok::<_, LinkError>(contact.clone().resubscribe(
                notice,
                locale,
                &self.rules,
                found.mail,
                meta,
                found.now,
            ))
        })
        .await?;
        Ok(ResubscribeRequested {
            types: vec![type_id],
            locale: claims.locale,
        })
    }
}
