//! `[feedback]`: how bounces count, and how provider webhooks are authenticated beyond
//! the `feedback` API key.

use chrono::Duration;
use serde::Deserialize;

use super::sendgrid::SendgridKey;
use crate::domain::FeedbackPolicy;
use crate::setting_list::StringList;

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
    /// The SNS topics (ARNs) whose messages `POST /v1/feedback/ses` takes; any topic
    /// when empty.
    pub ses_topic_arns: StringList,
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
            ses_topic_arns: StringList::default(),
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
    /// Empty: any topic.
    pub ses_topic_arns: Vec<String>,
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

/// Longest `soft_bounce_days`: a year of remembered soft bounces is already more than any
/// provider's retry horizon. The configuration's table of bounds enforces it.
pub const MAX_SOFT_BOUNCE_DAYS: u32 = 365;
/// Largest `soft_bounce_limit`: more soft bounces than this cannot be told apart from
/// "never".
pub const MAX_SOFT_BOUNCE_LIMIT: u32 = 1000;

impl FeedbackSettings {
    /// Builds the ready parts. The numbers' ranges are checked with every other setting's,
    /// in the configuration's table of bounds.
    pub fn check(&self) -> Result<FeedbackConfig, FeedbackConfigError> {
        let error = |setting, reason: String| FeedbackConfigError { setting, reason };
        if let Some(bad) = self
            .ses_topic_arns
            .0
            .iter()
            .find(|arn| !is_sns_topic_arn(arn))
        {
            return Err(error(
                "feedback.ses_topic_arns",
                format!("'{bad}' is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)"),
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
            ses_topic_arns: self.ses_topic_arns.0.clone(),
            providers,
        })
    }
}

/// `arn:<partition>:sns:<region>:<account>:<topic>`, as the SNS console shows it. Checked
/// so that a typo is reported at start rather than every notification being refused.
fn is_sns_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "sns", region, account, topic]
            if partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !topic.is_empty()
    )
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
        let key = FeedbackSettings {
            sendgrid_public_key: Some("not a key".into()),
            ..FeedbackSettings::default()
        };
        assert_eq!(
            key.check().unwrap_err().setting,
            "feedback.sendgrid_public_key"
        );
        let topic = FeedbackSettings {
            ses_topic_arns: StringList(vec!["ses-feedback".into()]),
            ..FeedbackSettings::default()
        };
        assert_eq!(
            topic.check().unwrap_err().setting,
            "feedback.ses_topic_arns"
        );
    }

    #[test]
    fn topic_arns_are_read_as_the_sns_console_shows_them() {
        for good in [
            "arn:aws:sns:us-east-1:123456789012:ses-feedback",
            "arn:aws-us-gov:sns:us-gov-west-1:123456789012:bounces.fifo",
        ] {
            assert!(is_sns_topic_arn(good), "{good}");
        }
        for bad in [
            "",
            "arn:aws:sqs:us-east-1:123456789012:queue",
            "arn:aws:sns:us-east-1:1234:short-account",
            "arn:aws:sns:us-east-1:123456789012:",
            "arn:aws:sns:us-east-1:123456789012:a:b",
        ] {
            assert!(!is_sns_topic_arn(bad), "{bad}");
        }
    }
}
