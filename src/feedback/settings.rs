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
    /// The sending platforms that post bounces and complaints here (`ses`, `postmark`,
    /// `sendgrid`), as a list or one comma-separated string. They receive the addresses
    /// they deliver to, so the record of processing names them as recipients.
    #[serde(deserialize_with = "names")]
    pub providers: Vec<String>,
}

impl Default for FeedbackSettings {
    fn default() -> Self {
        Self {
            soft_bounce_limit: 3,
            soft_bounce_days: 14,
            ses_verify_signature: true,
            sendgrid_public_key: None,
            providers: Vec::new(),
        }
    }
}

/// A list written as a TOML array or as one comma-separated string (an environment
/// variable's form).
fn names<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let names = match Raw::deserialize(deserializer)? {
        Raw::One(joined) => joined.split(',').map(str::to_string).collect(),
        Raw::Many(names) => names,
    };
    Ok(names
        .into_iter()
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect())
}

/// A sending platform whose bounce and complaint webhooks optin reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FeedbackProvider {
    Ses,
    Postmark,
    Sendgrid,
}

impl FeedbackProvider {
    const ALL: [FeedbackProvider; 3] = [
        FeedbackProvider::Ses,
        FeedbackProvider::Postmark,
        FeedbackProvider::Sendgrid,
    ];

    /// The name in `feedback.providers`.
    pub fn id(self) -> &'static str {
        match self {
            FeedbackProvider::Ses => "ses",
            FeedbackProvider::Postmark => "postmark",
            FeedbackProvider::Sendgrid => "sendgrid",
        }
    }

    /// The platform's name, for people.
    pub fn name(self) -> &'static str {
        match self {
            FeedbackProvider::Ses => "Amazon SES",
            FeedbackProvider::Postmark => "Postmark",
            FeedbackProvider::Sendgrid => "SendGrid",
        }
    }

    fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|provider| provider.id() == id)
    }
}

/// `[feedback]` checked and ready.
#[derive(Clone, Debug)]
pub struct FeedbackConfig {
    pub policy: FeedbackPolicy,
    pub ses_verify_signature: bool,
    pub sendgrid_key: Option<SendgridKey>,
    /// `feedback.providers`, and SendGrid when its key is set; each once, in order.
    pub providers: Vec<FeedbackProvider>,
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
        let mut providers = self
            .providers
            .iter()
            .map(|id| {
                FeedbackProvider::parse(id).ok_or_else(|| {
                    error(
                        "feedback.providers",
                        format!("'{id}' is not one of ses, postmark, sendgrid"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if sendgrid_key.is_some() {
            providers.push(FeedbackProvider::Sendgrid);
        }
        providers.sort();
        providers.dedup();
        Ok(FeedbackConfig {
            policy: FeedbackPolicy {
                soft_bounce_limit: self.soft_bounce_limit,
                window: Duration::days(self.soft_bounce_days.into()),
            },
            ses_verify_signature: self.ses_verify_signature,
            sendgrid_key,
            providers,
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
        assert!(ready.providers.is_empty());
    }

    #[test]
    fn providers_are_named_once_and_unknown_ones_refused() {
        let listed = FeedbackSettings {
            providers: vec!["postmark".into(), "ses".into(), "postmark".into()],
            ..FeedbackSettings::default()
        };
        assert_eq!(
            listed.check().unwrap().providers,
            [FeedbackProvider::Ses, FeedbackProvider::Postmark]
        );
        let unknown = FeedbackSettings {
            providers: vec!["mailgun".into()],
            ..FeedbackSettings::default()
        };
        let refused = unknown.check().unwrap_err();
        assert_eq!(refused.setting, "feedback.providers");
        assert!(refused.reason.contains("'mailgun'"), "{}", refused.reason);
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
