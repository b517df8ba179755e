//! Bounces and complaints: every input's items go through one operation that applies
//! them to their contacts through the one commit path. Nothing is stored for an unknown
//! address, and a provider event delivered twice counts once (the seen ids live in the
//! contact record, so the check is part of the same atomic write).
//!
//! The SES input also needs the network: the SNS signing certificate and the
//! subscription confirmation URL are fetched by [`SnsClient`].

mod sns;

use std::collections::BTreeMap;

use futures_util::StreamExt as _;

pub use sns::SnsClient;

use super::commit::Reach;
use super::{RequestError, Subscriptions};
use crate::domain::{
    Contact, ContactId, EmailAddress, FeedbackKind, FeedbackNote, Planned, RequestMeta, Source,
};
use crate::feedback::sendgrid::{parse_sendgrid, SendgridSignatureError};
use crate::feedback::ses::{parse_sns_envelope, SnsOutcome, SnsRefusal, SnsSignatureError};
use crate::feedback::{clean_reason, FeedbackFormatError, FeedbackItem};
use crate::store::StoreError;

/// Contacts changed at the same time while one request's items are applied: enough to
/// keep a Redis connection busy, few enough not to starve other requests.
const CONCURRENT_CONTACTS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error(transparent)]
    Format(#[from] FeedbackFormatError),
    /// The body is not proven to come from the provider. The reason is for the debug
    /// log; every such failure is answered alike.
    #[error("the signature does not verify")]
    Signature(String),
    /// An SNS message from a topic not listed, or sent too long ago (or ahead): refused
    /// however well signed.
    #[error(transparent)]
    SnsRefused(SnsRefusal),
    /// The SNS certificate or subscription URL could not be fetched: worth retrying.
    #[error("{0}")]
    Upstream(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SnsSignatureError> for FeedbackError {
    fn from(error: SnsSignatureError) -> Self {
        FeedbackError::Signature(error.to_string())
    }
}

impl From<SnsRefusal> for FeedbackError {
    fn from(refusal: SnsRefusal) -> Self {
        match refusal {
            SnsRefusal::Malformed(format) => FeedbackError::Format(format),
            refused => FeedbackError::SnsRefused(refused),
        }
    }
}

impl From<SendgridSignatureError> for FeedbackError {
    fn from(error: SendgridSignatureError) -> Self {
        FeedbackError::Signature(error.to_string())
    }
}

/// Feedback answers only how many items were read; a refusal other than the store's is
/// a plan that cannot happen for feedback, kept as a store error for the log.
fn into_store_error(error: RequestError) -> StoreError {
    match error {
        RequestError::Store(e) => e,
        other => StoreError::Corrupt(other.to_string()),
    }
}

impl Subscriptions {
    /// Applies feedback items to the contacts they name and answers how many were read.
    /// Items for one contact are applied in order, in one write; contacts in parallel.
    pub async fn apply_feedback(
        &self,
        items: Vec<FeedbackItem>,
        meta: &RequestMeta,
    ) -> Result<usize, StoreError> {
        let read = items.len();
        // Calls queue here rather than all writing at once and all missing the deadline.
        let _room = self.write_room.enter(read).await;
        let mut by_contact: BTreeMap<ContactId, Vec<FeedbackNote>> = BTreeMap::new();
        for item in items {
            // An address we could never have mailed is known to nobody here.
            let Ok(email) = EmailAddress::parse(&item.email) else {
                continue;
            };
            by_contact
                .entry(self.contact_id(&email))
                .or_default()
                .push(FeedbackNote {
                    kind: item.kind,
                    reason: item.reason,
                    event_id: item.provider_event_id,
                });
        }
        // One batched read for all; an address nobody holds needs no write at all.
        let ids: Vec<ContactId> = by_contact.keys().cloned().collect();
        let contacts = self.store.load_contacts(&ids).await?;
        let work = by_contact.into_iter().zip(contacts);
        let mut results = futures_util::stream::iter(work)
            .map(|((id, notes), contact)| async move {
                match contact {
                    Some(contact) => self.apply_notes(&id, contact, &notes, meta).await,
                    None => self.apply_moved_complaints(&id, &notes, meta).await,
                }
            })
            .buffer_unordered(CONCURRENT_CONTACTS);
        while let Some(result) = results.next().await {
            result?;
        }
        Ok(read)
    }

    /// Applies one contact's notes in one write. A contact that a rectification moved
    /// meanwhile keeps its complaints (the person pressed "spam") but not its bounces,
    /// which were about the old mailbox.
    async fn apply_notes(
        &self,
        id: &ContactId,
        read: Contact,
        notes: &[FeedbackNote],
        meta: &RequestMeta,
    ) -> Result<(), StoreError> {
        let applied = self
            .commit_read(
                id,
                Reach::Address,
                Some(Some(read)),
                self.feedback_plan(notes, meta),
            )
            .await;
        match applied {
            Err(RequestError::Moved(_)) => self.apply_moved_complaints(id, notes, meta).await,
            other => other.map_err(into_store_error),
        }
    }

    /// The complaints among `notes`, applied where a rectification moved the contact
    /// (before this request or while it ran); for an address nobody holds, nothing.
    async fn apply_moved_complaints(
        &self,
        id: &ContactId,
        notes: &[FeedbackNote],
        meta: &RequestMeta,
    ) -> Result<(), StoreError> {
        let complaints: Vec<FeedbackNote> = notes
            .iter()
            .filter(|note| note.kind == FeedbackKind::Complaint)
            .cloned()
            .collect();
        if complaints.is_empty() {
            return Ok(());
        }
        self.commit(id, Reach::Link, self.feedback_plan(&complaints, meta))
            .await
            .map_err(into_store_error)
    }

    fn feedback_plan<'a>(
        &'a self,
        notes: &'a [FeedbackNote],
        meta: &'a RequestMeta,
    ) -> impl Fn(&super::commit::Found) -> Result<Planned<()>, RequestError> + 'a {
        move |found| {
            Ok(match found.contact {
                Some(contact) => {
                    contact
                        .clone()
                        .take_feedback_notes(notes, &self.rules, meta, found.now)
                }
                None => Planned::Nothing(()),
            })
        }
    }

    /// Our own mail got a permanent `5.1.x` answer: the mailbox does not exist. `detail`
    /// is the server's answer, cleaned of addresses here. Nothing happens for a contact
    /// that no longer exists (or moved away from the address the mail went to).
    pub async fn note_smtp_rejection(
        &self,
        id: &ContactId,
        detail: &str,
    ) -> Result<(), StoreError> {
        let meta = RequestMeta {
            actor: Some("outbox".to_string()),
            ..RequestMeta::default()
        };
        let detail = clean_reason(detail);
        self.commit(id, Reach::Signup, |found| {
            Ok::<_, StoreError>(match found.contact {
                Some(contact) => {
                    contact
                        .clone()
                        .note_smtp_rejection(detail.clone(), &meta, found.now)
                }
                None => Planned::Nothing(()),
            })
        })
        .await
    }

    /// `DELETE /v1/contacts/{email}/unreachable`: the admin says the address works.
    pub async fn clear_unreachable(
        &self,
        email: &EmailAddress,
        meta: &RequestMeta,
    ) -> Result<Contact, RequestError> {
        self.commit_existing(email, |contact, found| {
            contact.clear_unreachable_mark(Source::AdminApi, meta, found.now)
        })
        .await
    }

    /// Recent soft bounces of a contact, for the admin view.
    pub fn recent_soft_bounces(&self, contact: &Contact) -> usize {
        contact.recent_soft_bounces(self.rules.feedback(), self.now())
    }

    /// `POST /v1/feedback/ses`: checks the SNS signature (unless switched off), confirms
    /// a subscription, or applies the bounces and complaints of a notification.
    pub async fn receive_ses(
        &self,
        body: &[u8],
        meta: &RequestMeta,
    ) -> Result<usize, FeedbackError> {
        let envelope = parse_sns_envelope(body)?;
        if self.config.feedback.ses_verify_signature {
            let cert_url = envelope.signing_cert_url()?;
            let certificate = self.sns().certificate(&cert_url).await?;
            crate::feedback::ses::verify_sns_signature(&envelope, &certificate)?;
        }
        envelope.check_origin(&self.config().feedback.ses_topic_arns, self.now())?;
        match envelope.outcome()? {
            SnsOutcome::Feedback(items) => Ok(self.apply_feedback(items, meta).await?),
            SnsOutcome::ConfirmSubscription { subscribe_url } => {
                self.sns().confirm_subscription(&subscribe_url).await?;
                tracing::info!(topic = ?envelope.topic_arn, "SNS subscription confirmed");
                Ok(0)
            }
            SnsOutcome::UnsubscribeConfirmation => Ok(0),
        }
    }

    /// `POST /v1/feedback/sendgrid`: checks the signature when a key is configured.
    pub async fn receive_sendgrid(
        &self,
        body: &[u8],
        signature: Option<&str>,
        timestamp: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<usize, FeedbackError> {
        if let Some(key) = &self.config.feedback.sendgrid_key {
            key.verify(signature, timestamp, body)?;
        }
        let items = parse_sendgrid(body)?;
        Ok(self.apply_feedback(items, meta).await?)
    }
}
