//! Consent that lapses: the sweep that asks for renewals and lets consent lapse, and the
//! renewal link's page (a GET shows the question and changes nothing, since mail
//! scanners fetch every link; the POST behind its button renews).

use chrono::{DateTime, Utc};

use super::commit::Reach;
use super::{LinkError, Subscriptions};
use crate::domain::{
    ConsentSwept, ContactId, NoticeRef, Planned, Renewal, RequestMeta, SubscriptionType,
    SubscriptionTypeId, Timer,
};
use crate::store::StoreError;
use crate::tokens::{Claims, Purpose, TokenError};

/// Contacts one round of the sweep takes from the due index.
const SWEEP_BATCH: usize = 500;

/// What one run of the consent sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsentSweepReport {
    pub renewals_asked: usize,
    pub lapsed: usize,
}

/// What a renewal link's page shows: the type, the notice the button agrees to, and
/// what the click does (or did).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalPage {
    pub subscription_type: SubscriptionTypeId,
    /// The language of the renewal mail, and so of the page and its notice.
    pub locale: String,
    pub notice: NoticeRef,
    pub notice_text: String,
    pub renewal: Renewal,
}

impl Subscriptions {
    /// Lapses every consent that has ended and asks for every renewal now due. Runs
    /// until the due index holds nothing due.
    pub async fn sweep_consent(&self) -> Result<ConsentSweepReport, StoreError> {
        let mut report = ConsentSweepReport::default();
        loop {
            let due = self
                .store
                .due_contacts(Timer::Consent, self.now(), SWEEP_BATCH)
                .await?;
            let mut written = 0;
            for id in &due {
                if let Some(swept) = self.sweep_contact(id).await? {
                    report.renewals_asked += swept.renewals_asked.len();
                    report.lapsed += swept.lapsed.len();
                    written += 1;
                }
            }
            // Every contact written leaves the index or moves past now; a round that
            // wrote none would only find the same entries again.
            if due.len() < SWEEP_BATCH || written == 0 {
                return Ok(report);
            }
        }
    }

    async fn sweep_contact(&self, id: &ContactId) -> Result<Option<ConsentSwept>, StoreError> {
        self.commit(id, Reach::Signup, |found| {
            Ok::<_, StoreError>(match found.contact {
                Some(contact) => contact
                    .clone()
                    .sweep_consent(&self.rules, found.now)
                    .map(Some),
                None => Planned::Nothing(None),
            })
        })
        .await
    }

    /// The claims of a renewal link, its type and its issue time.
    fn renewal_claims(
        &self,
        token: &str,
    ) -> Result<(Claims, &SubscriptionType, DateTime<Utc>), LinkError> {
        let claims = self.verify_link(token, Purpose::Renew)?;
        let malformed = || LinkError::Invalid(TokenError::Malformed);
        let type_id = claims.subscription_type.clone().ok_or_else(malformed)?;
        let issued_at = claims.issued_at.ok_or_else(malformed)?;
        // A type no longer configured has no consent left to renew.
        let subscription_type = self
            .catalog()
            .get(type_id.as_str())
            .ok_or(LinkError::Gone)?;
        Ok((claims, subscription_type, issued_at))
    }

    /// The language of a renewal link's page: its mail's.
    fn renewal_locale(&self, claims: &Claims) -> String {
        claims
            .locale
            .clone()
            .unwrap_or_else(|| self.catalog().default_locale().to_string())
    }

    fn renewal_page_of(
        &self,
        claims: &Claims,
        subscription_type: &SubscriptionType,
        renewal: Renewal,
    ) -> RenewalPage {
        let locale = self.renewal_locale(claims);
        let (notice_locale, notice) =
            subscription_type.current_notice(&locale, self.catalog().default_locale());
        RenewalPage {
            subscription_type: subscription_type.id.clone(),
            notice: subscription_type.notice_ref(&notice_locale, notice),
            notice_text: notice.text.clone(),
            locale,
            renewal,
        }
    }

    /// The page of `GET /renew/{token}`. Changes nothing.
    pub async fn renewal_page(&self, token: &str) -> Result<RenewalPage, LinkError> {
        let (claims, subscription_type, issued_at) = self.renewal_claims(token)?;
        let contact = self
            .read_link(&claims.contact_id)
            .await?
            .ok_or(LinkError::Gone)?;
        // Nothing to renew: the consent lapsed or was withdrawn meanwhile.
        let renewal = contact
            .renewal(subscription_type, issued_at)
            .ok_or(LinkError::Expired)?;
        Ok(self.renewal_page_of(&claims, subscription_type, renewal))
    }

    /// The button of the renewal page: renews the consent against the notice version
    /// the page showed. A version that page did not show is refused, changing nothing,
    /// so that the page is shown again with today's text.
    pub async fn renew(
        &self,
        token: &str,
        notice_version: &str,
        meta: &RequestMeta,
    ) -> Result<RenewalPage, LinkError> {
        let (claims, subscription_type, issued_at) = self.renewal_claims(token)?;
        self.spend_post(&claims.contact_id, Purpose::Renew).await?;
        let locale = self.renewal_locale(&claims);
        let renewal = self
            .commit(&claims.contact_id, Reach::Link, |found| {
                let contact = found.contact.ok_or(LinkError::Gone)?;
                let notice = subscription_type.notice_shown(
                    &locale,
                    self.catalog().default_locale(),
                    Some(notice_version),
                )?;
                contact
                    .clone()
                    .renew_consent(subscription_type, notice, issued_at, meta, found.now)
                    .ok_or(LinkError::Expired)
            })
            .await?;
        if matches!(renewal, Renewal::Now { .. }) {
            metrics::counter!("optin_consent_renewals_total").increment(1);
        }
        Ok(self.renewal_page_of(&claims, subscription_type, renewal))
    }
}
