//! Amazon SES bounce and complaint notifications, delivered through an SNS HTTPS
//! subscription: the SNS envelope, its signature and the SES message inside it.
//!
//! The caller reads the envelope with [`parse_sns_envelope`], checks
//! [`SnsEnvelope::signing_cert_url`], fetches and caches that certificate, calls
//! [`verify_sns_signature`] with its PEM, checks [`SnsEnvelope::check_origin`] (the
//! topic and the age, which the signature makes trustworthy), and then acts on
//! [`SnsEnvelope::outcome`].

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use url::Url;
use x509_cert::der::DecodePem as _;
use x509_cert::spki::ObjectIdentifier;

use super::{
    clean_reason, event_id, first_reason, parse_rfc3339, FeedbackFormatError, FeedbackInput,
    FeedbackItem, FeedbackKind,
};

const INPUT: FeedbackInput = FeedbackInput::Ses;

/// `rsaEncryption`, the only key type SNS signs with.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The SNS envelope, as SNS posts it to an HTTPS subscription.
#[derive(Debug, Clone, Deserialize)]
pub struct SnsEnvelope {
    #[serde(rename = "Type")]
    pub message_type: String,
    #[serde(rename = "MessageId")]
    pub message_id: Option<String>,
    #[serde(rename = "TopicArn")]
    pub topic_arn: Option<String>,
    #[serde(rename = "Subject")]
    pub subject: Option<String>,
    #[serde(rename = "Message")]
    pub message: Option<String>,
    #[serde(rename = "Timestamp")]
    pub timestamp: Option<String>,
    #[serde(rename = "Token")]
    pub token: Option<String>,
    #[serde(rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
    #[serde(rename = "SignatureVersion")]
    pub signature_version: Option<String>,
    #[serde(rename = "Signature")]
    pub signature: Option<String>,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: Option<String>,
}

/// What an SNS message asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnsOutcome {
    /// A notification; empty when it is an SES event we do not act on (a delivery, an
    /// open).
    Feedback(Vec<FeedbackItem>),
    /// SNS wants the subscription confirmed by a GET of this URL, which is already
    /// known to be on an SNS host.
    ConfirmSubscription { subscribe_url: Url },
    /// The subscription was removed; nothing to do.
    UnsubscribeConfirmation,
}

/// The oldest SNS message taken: SNS gives up retrying a delivery well within an hour, so
/// an older one is a replay of a message captured earlier.
pub const MAX_MESSAGE_AGE: Duration = Duration::hours(1);
/// How far an SNS message may claim to be ahead of our clock: clocks differ a little.
pub const MAX_CLOCK_AHEAD: Duration = Duration::minutes(5);

/// Why a well-formed (and, where checked, well-signed) SNS message is still not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsRefusal {
    /// `feedback.ses_topic_arns` is set and does not list the message's topic.
    #[error("the message's TopicArn is not listed in feedback.ses_topic_arns")]
    TopicNotAllowed,
    #[error("the message's Timestamp is more than an hour old")]
    Stale,
    #[error("the message's Timestamp is more than five minutes ahead of our clock")]
    AheadOfClock,
    #[error(transparent)]
    Malformed(#[from] FeedbackFormatError),
}

/// Why an SNS message is not proven to come from SNS. The caller answers all of them
/// alike; the variants are for its debug log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsSignatureError {
    #[error("SignatureVersion must be 1 or 2")]
    UnsupportedVersion,
    #[error("the field `{0}` that the signature covers is missing")]
    MissingField(&'static str),
    #[error("Signature is not base64")]
    SignatureNotBase64,
    #[error("SigningCertURL is not an https URL on an sns.<region>.amazonaws.com host")]
    CertUrlNotSns,
    #[error("the signing certificate cannot be read")]
    UnreadableCertificate,
    #[error("the signing certificate does not hold an RSA key")]
    NotRsaKey,
    #[error("the signature does not match the message")]
    Mismatch,
}

/// Reads the SNS envelope without trusting it yet.
pub fn parse_sns_envelope(body: &[u8]) -> Result<SnsEnvelope, FeedbackFormatError> {
    let envelope: SnsEnvelope =
        serde_json::from_slice(body).map_err(|e| FeedbackFormatError::json(INPUT, &e))?;
    match envelope.message_type.as_str() {
        "Notification" | "SubscriptionConfirmation" | "UnsubscribeConfirmation" => Ok(envelope),
        _ => Err(FeedbackFormatError::field(
            INPUT,
            "Type",
            "`Type` must be Notification, SubscriptionConfirmation or UnsubscribeConfirmation",
        )),
    }
}

/// Reads the envelope and what it asks, for when signatures are not checked.
pub fn parse_ses(body: &[u8]) -> Result<SnsOutcome, FeedbackFormatError> {
    parse_sns_envelope(body)?.outcome()
}

impl SnsEnvelope {
    /// Where the signing certificate may be fetched from, once it is known to be an SNS
    /// host.
    pub fn signing_cert_url(&self) -> Result<Url, SnsSignatureError> {
        self.signing_cert_url
            .as_deref()
            .and_then(sns_url)
            .ok_or(SnsSignatureError::CertUrlNotSns)
    }

    /// Whether the message comes from a topic we take (every topic when `allowed_topics`
    /// is empty) and was sent within the last hour.
    pub fn check_origin(
        &self,
        allowed_topics: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), SnsRefusal> {
        if !allowed_topics.is_empty()
            && !self
                .topic_arn
                .as_deref()
                .is_some_and(|topic| allowed_topics.iter().any(|allowed| allowed == topic))
        {
            return Err(SnsRefusal::TopicNotAllowed);
        }
        let sent = parse_rfc3339(self.timestamp.as_deref()).ok_or_else(|| {
            FeedbackFormatError::field(
                INPUT,
                "Timestamp",
                "`Timestamp` is missing or not an RFC 3339 time",
            )
        })?;
        if sent < crate::clock::earlier(now, MAX_MESSAGE_AGE) {
            return Err(SnsRefusal::Stale);
        }
        if sent > crate::clock::later(now, MAX_CLOCK_AHEAD) {
            return Err(SnsRefusal::AheadOfClock);
        }
        Ok(())
    }

    /// What the message asks of us.
    pub fn outcome(&self) -> Result<SnsOutcome, FeedbackFormatError> {
        match self.message_type.as_str() {
            "SubscriptionConfirmation" => {
                let subscribe_url = self.subscribe_url.as_deref().ok_or_else(|| {
                    FeedbackFormatError::field(INPUT, "SubscribeURL", "`SubscribeURL` is missing")
                })?;
                let subscribe_url = sns_url(subscribe_url).ok_or_else(|| {
                    FeedbackFormatError::field(
                        INPUT,
                        "SubscribeURL",
                        "`SubscribeURL` is not an https URL on an sns.<region>.amazonaws.com host",
                    )
                })?;
                Ok(SnsOutcome::ConfirmSubscription { subscribe_url })
            }
            "UnsubscribeConfirmation" => Ok(SnsOutcome::UnsubscribeConfirmation),
            _ => {
                let message = self.message.as_deref().ok_or_else(|| {
                    FeedbackFormatError::field(INPUT, "Message", "`Message` is missing")
                })?;
                ses_items(message, self.message_id.as_deref()).map(SnsOutcome::Feedback)
            }
        }
    }

    /// The text SNS signed: named fields, each as `name\nvalue\n`, in the order AWS
    /// documents for the message type.
    fn string_to_sign(&self) -> Result<String, SnsSignatureError> {
        fn required<'a>(
            name: &'static str,
            value: Option<&'a String>,
        ) -> Result<(&'static str, &'a str), SnsSignatureError> {
            value
                .map(|v| (name, v.as_str()))
                .ok_or(SnsSignatureError::MissingField(name))
        }
        let mut fields = vec![
            required("Message", self.message.as_ref())?,
            required("MessageId", self.message_id.as_ref())?,
        ];
        if self.message_type == "Notification" {
            if let Some(subject) = self.subject.as_deref() {
                fields.push(("Subject", subject));
            }
            fields.push(required("Timestamp", self.timestamp.as_ref())?);
        } else {
            fields.push(required("SubscribeURL", self.subscribe_url.as_ref())?);
            fields.push(required("Timestamp", self.timestamp.as_ref())?);
            fields.push(required("Token", self.token.as_ref())?);
        }
        fields.push(required("TopicArn", self.topic_arn.as_ref())?);
        fields.push(("Type", self.message_type.as_str()));
        Ok(fields
            .into_iter()
            .fold(String::new(), |mut text, (name, value)| {
                text.push_str(name);
                text.push('\n');
                text.push_str(value);
                text.push('\n');
                text
            }))
    }
}

/// Checks the envelope's signature (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA)
/// against the certificate fetched from its `SigningCertURL`. The certificate is
/// trusted because it came over HTTPS from an SNS host; that check is the caller's.
pub fn verify_sns_signature(
    envelope: &SnsEnvelope,
    cert_pem: &[u8],
) -> Result<(), SnsSignatureError> {
    let algorithm: &'static ring::signature::RsaParameters =
        match envelope.signature_version.as_deref() {
            Some("1") => &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            Some("2") => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            _ => return Err(SnsSignatureError::UnsupportedVersion),
        };
    let signed = envelope.string_to_sign()?;
    let signature = envelope
        .signature
        .as_deref()
        .ok_or(SnsSignatureError::MissingField("Signature"))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| SnsSignatureError::SignatureNotBase64)?;
    let certificate = x509_cert::Certificate::from_pem(cert_pem)
        .map_err(|_| SnsSignatureError::UnreadableCertificate)?;
    let key_info = &certificate.tbs_certificate.subject_public_key_info;
    if key_info.algorithm.oid != RSA_ENCRYPTION {
        return Err(SnsSignatureError::NotRsaKey);
    }
    // For rsaEncryption the bit string holds the PKCS#1 RSAPublicKey that ring takes.
    let key = key_info
        .subject_public_key
        .as_bytes()
        .ok_or(SnsSignatureError::UnreadableCertificate)?;
    ring::signature::UnparsedPublicKey::new(algorithm, key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| SnsSignatureError::Mismatch)
}

/// The URL when it is `https://sns.<region>.amazonaws.com/...` and nothing that only
/// looks like it: no other host, port or user info; the region one DNS label.
pub fn sns_url(raw: &str) -> Option<Url> {
    let url = Url::parse(raw.trim()).ok()?;
    if url.scheme() != "https"
        || !url.username().is_empty()
        || url.password().is_some()
        || url.port().is_some()
    {
        return None;
    }
    let Some(url::Host::Domain(host)) = url.host() else {
        return None;
    };
    let region = host.strip_prefix("sns.")?.strip_suffix(".amazonaws.com")?;
    let is_label = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    is_label.then_some(url)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesMessage {
    notification_type: Option<String>,
    event_type: Option<String>,
    bounce: Option<SesBounce>,
    complaint: Option<SesComplaint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesBounce {
    bounce_type: Option<String>,
    bounce_sub_type: Option<String>,
    bounced_recipients: Vec<SesRecipient>,
    timestamp: Option<String>,
    feedback_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesComplaint {
    complained_recipients: Vec<SesRecipient>,
    timestamp: Option<String>,
    feedback_id: Option<String>,
    complaint_feedback_type: Option<String>,
    complaint_sub_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesRecipient {
    email_address: String,
    status: Option<String>,
    diagnostic_code: Option<String>,
}

/// The items in the SES message an SNS notification carries: one per recipient.
fn ses_items(
    message: &str,
    sns_message_id: Option<&str>,
) -> Result<Vec<FeedbackItem>, FeedbackFormatError> {
    let message: SesMessage = serde_json::from_str(message).map_err(|e| {
        FeedbackFormatError::field(
            INPUT,
            "Message",
            format!(
                "`Message` is not an SES notification: {}",
                FeedbackFormatError::json(INPUT, &e).problem
            ),
        )
    })?;
    let kind = message
        .notification_type
        .as_deref()
        .or(message.event_type.as_deref())
        .ok_or_else(|| {
            FeedbackFormatError::field(
                INPUT,
                "Message",
                "`Message` has neither `notificationType` nor `eventType`",
            )
        })?;
    // The SNS message id stands in when SES gives no feedback id; SNS keeps it on retries.
    let id = |feedback_id: Option<&str>| {
        feedback_id
            .or(sns_message_id)
            .and_then(|raw| event_id("ses", raw))
    };
    match kind {
        "Bounce" => {
            let bounce = message.bounce.ok_or_else(|| {
                FeedbackFormatError::field(INPUT, "Message", "a Bounce without a `bounce` object")
            })?;
            let feedback_kind = match bounce.bounce_type.as_deref() {
                Some("Permanent") => FeedbackKind::HardBounce,
                // Transient, Undetermined and anything new: a wrong soft bounce only
                // counts toward a limit, a wrong hard bounce silences a good address.
                _ => FeedbackKind::SoftBounce,
            };
            let bounce_type = clean_reason(
                &[
                    bounce.bounce_type.as_deref(),
                    bounce.bounce_sub_type.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("/"),
            );
            let at = parse_rfc3339(bounce.timestamp.as_deref());
            let provider_event_id = id(bounce.feedback_id.as_deref());
            Ok(bounce
                .bounced_recipients
                .into_iter()
                .map(|recipient| FeedbackItem {
                    reason: first_reason([
                        recipient.diagnostic_code.as_deref(),
                        recipient.status.as_deref(),
                        bounce_type.as_deref(),
                    ]),
                    email: recipient.email_address,
                    kind: feedback_kind,
                    at,
                    provider_event_id: provider_event_id.clone(),
                    bounce_type: bounce_type.clone(),
                })
                .collect())
        }
        "Complaint" => {
            let complaint = message.complaint.ok_or_else(|| {
                FeedbackFormatError::field(
                    INPUT,
                    "Message",
                    "a Complaint without a `complaint` object",
                )
            })?;
            let at: Option<DateTime<Utc>> = parse_rfc3339(complaint.timestamp.as_deref());
            let provider_event_id = id(complaint.feedback_id.as_deref());
            let bounce_type = first_reason([
                complaint.complaint_feedback_type.as_deref(),
                complaint.complaint_sub_type.as_deref(),
            ]);
            Ok(complaint
                .complained_recipients
                .into_iter()
                .map(|recipient| FeedbackItem {
                    email: recipient.email_address,
                    kind: FeedbackKind::Complaint,
                    reason: bounce_type.clone(),
                    at,
                    provider_event_id: provider_event_id.clone(),
                    bounce_type: bounce_type.clone(),
                })
                .collect())
        }
        // Deliveries, sends, opens, clicks, rejects, delays: not feedback about the
        // address.
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests;
