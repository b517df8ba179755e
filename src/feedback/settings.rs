//! `[feedback]`: how bounces count, and how provider webhooks are authenticated beyond
//! the `feedback` API key.

use chrono::Duration;
use serde::Deserialize;

use super::sendgrid::SendgridKey;
use crate::domain::FeedbackPolicy;

/// `[feedback]` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackSettings {
    /// Soft bounces within `soft_bounce_days` that make the contact unreachable.
    pub soft_bounce_limit: u32,
    /// How long a soft bounce (and a provider event id, for deduplication) is remembered.
    pub soft_bounce_days: u32,
    /// Check SNS signatures on `POST /v1/feedback/ses`. Off only for private networks
    /// and tests.
    pub ses_verify_signature: bool,
    /// The base64 DER public key SendGrid shows for a signed Event Webhook; when set,
    /// unsigned or badly signed SendGrid posts get 401.
    pub sendgrid_public_key: Option<String>,
}

impl Default for FeedbackSettings {
    fn default() -> Self {
        Self {
            soft_bounce_limit: 3,
            soft_bounce_days: 14,
            ses_verify_signature: true,
            sendgrid_public_key: None,
        }
    }
}

/// `[feedback]` checked and ready.
#[derive(Clone, Debug)]
pub struct FeedbackConfig {
    pub policy: FeedbackPolicy,
    pub ses_verify_signature: bool,
    pub sendgrid_key: Option<SendgridKey>,
}

/// A `[feedback]` setting that cannot be used, by name.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct FeedbackConfigError {
    pub setting: &'static str,
    pub reason: String,
}

/// Longest window: a year of remembered soft bounces is already more than any
/// provider's retry horizon.
const MAX_DAYS: u32 = 365;
/// More soft bounces than this cannot be told apart from "never".
const MAX_LIMIT: u32 = 1000;

impl FeedbackSettings {
    pub fn check(&self) -> Result<FeedbackConfig, FeedbackConfigError> {
        let error = |setting, reason: String| FeedbackConfigError { setting, reason };
        if !(1..=MAX_LIMIT).contains(&self.soft_bounce_limit) {
            return Err(error(
                "feedback.soft_bounce_limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        if !(1..=MAX_DAYS).contains(&self.soft_bounce_days) {
            return Err(error(
                "feedback.soft_bounce_days",
                format!("must be between 1 and {MAX_DAYS}"),
            ));
        }
        let sendgrid_key = self
            .sendgrid_public_key
            .as_deref()
            .filter(|key| !key.trim().is_empty())
            .map(SendgridKey::from_base64)
            .transpose()
            .map_err(|e| error("feedback.sendgrid_public_key", e.to_string()))?;
        Ok(FeedbackConfig {
            policy: FeedbackPolicy {
                soft_bounce_limit: self.soft_bounce_limit,
                window: Duration::days(self.soft_bounce_days.into()),
            },
            ses_verify_signature: self.ses_verify_signature,
            sendgrid_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let ready = FeedbackSettings::default().check().unwrap();
        assert_eq!(ready.policy.soft_bounce_limit, 3);
        assert_eq!(ready.policy.window, Duration::days(14));
        assert!(ready.ses_verify_signature);
        assert!(ready.sendgrid_key.is_none());
    }

    #[test]
    fn bad_values_name_their_setting() {
        let zero = FeedbackSettings {
            soft_bounce_limit: 0,
            ..FeedbackSettings::default()
        };
        assert_eq!(
            zero.check().unwrap_err().setting,
            "feedback.soft_bounce_limit"
        );
        let days = FeedbackSettings {
            soft_bounce_days: 0,
            ..FeedbackSettings::default()
        };
        assert_eq!(
            days.check().unwrap_err().setting,
            "feedback.soft_bounce_days"
        );
        let key = FeedbackSettings {
            sendgrid_public_key: Some("not a key".into()),
            ..FeedbackSettings::default()
        };
        assert_eq!(
            key.check().unwrap_err().setting,
            "feedback.sendgrid_public_key"
        );
    }
}
