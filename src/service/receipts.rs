//! Consent receipts: the one place they are issued, for every door, and where they are
//! read back. The commit path hands each plan to [`Subscriptions::sign_receipts`] just
//! before it is written, so a confirm, a preference center save, a renewal, an admin's
//! change and an import line all get theirs the same way; the receipt is written with
//! its event, in the same atomic step.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::link_access::LinkError;
use super::{RequestError, Subscriptions};
use crate::domain::{ContactId, EmailAddress, Event, Plan, ReceiptMail, StoredReceipt};
use crate::receipts::{ReceiptFacts, ReceiptSummary};
use crate::tokens::Purpose;

/// One receipt as the admin API, the export and the preference center's download give
/// it: the compact JWS exactly as issued, and what it states.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptView {
    /// The opt-in or renewal event it belongs to; that event records `sha256`.
    pub event_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    /// The hex SHA-256 of `receipt` (`sha256sum consent-receipt.jws`).
    pub sha256: String,
    #[serde(flatten)]
    pub states: Option<ReceiptSummary>,
    /// `header.payload.signature`: what was mailed as `consent-receipt.jws`.
    pub receipt: String,
}

impl ReceiptView {
    fn of(event: &Event) -> Option<Self> {
        let receipt = event.receipt.as_ref()?;
        Some(Self {
            event_id: event.id,
            recorded_at: event.at,
            sha256: receipt.sha256(),
            states: ReceiptSummary::of(receipt),
            receipt: receipt.compact(),
        })
    }
}

/// Every receipt kept with these events, oldest first.
pub(super) fn receipts_of(events: &[Event]) -> Vec<ReceiptView> {
    events.iter().filter_map(ReceiptView::of).collect()
}

impl Subscriptions {
    /// The plan with a receipt on each of its events that records consent, signed now,
    /// and the receipt mails `consent.receipt_mail` asks for. Unchanged when no receipt
    /// keys are configured.
    pub(super) fn sign_receipts<T>(&self, id: &ContactId, plan: Plan<T>) -> Plan<T> {
        let Some(issuer) = self.config.receipts.as_deref() else {
            return plan;
        };
        let mail = if self.config.settings.consent.receipt_mail {
            ReceiptMail::Send
        } else {
            ReceiptMail::DoNotSend
        };
        let locale = plan.after().map(|c| c.locale().to_string());
        let catalog = self.catalog();
        plan.with_receipts(mail, |event| {
            let subscription_type = catalog.get(event.subscription_type.as_ref()?.as_str())?;
            let withdraw =
                self.links()
                    .unsubscribe(id, &subscription_type.id, locale.as_deref(), event.at);
            let facts = ReceiptFacts::for_event(
                event,
                id.clone(),
                subscription_type,
                catalog.default_locale(),
                url::Url::parse(&withdraw).ok()?,
            )
            .ok()?;
            match issuer.issue(&facts, event.at) {
                Ok(receipt) => {
                    metrics::counter!("optin_consent_receipts_total").increment(1);
                    StoredReceipt::from_compact(&receipt.compact)
                }
                Err(error) => {
                    // The opt-in itself stands (its event proves it); only its receipt is
                    // missing, which the log must show.
                    tracing::error!(%error, contact = %id, "no consent receipt for an opt-in");
                    None
                }
            }
        })
    }

    /// Every receipt of the contact at an address (`GET /v1/contacts/{email}/receipts`).
    pub async fn receipts(&self, email: &EmailAddress) -> Result<Vec<ReceiptView>, RequestError> {
        let contact = self.existing_contact(email).await?;
        Ok(receipts_of(&self.store.events(contact.id()).await?))
    }

    /// Every receipt of the person a preferences link was mailed to: their download in
    /// the preference center.
    pub async fn own_receipts(&self, token: &str) -> Result<Vec<ReceiptView>, LinkError> {
        let claims = self.verify_link(token, Purpose::Preferences)?;
        let contact = self
            .read_link(&claims.contact_id)
            .await?
            .ok_or(LinkError::Gone)?;
        Ok(receipts_of(&self.store.events(contact.id()).await?))
    }
}
