//! The record of processing activities (GDPR Art. 30(1)) as far as optin can state it:
//! per subscription type its purpose, the data and the people it concerns, the lawful
//! bases in use with their counts, retention and recipients; and the technical measures
//! in force. What only the operator knows is listed, not guessed.
//!
//! - [`ProcessingRecord::build`] is a pure function of [`RecordInputs`];
//! - [`RecordInputs::from_config`] ([`from_config`]) gathers those inputs from the
//!   configuration and the facts read from the store;
//! - [`ProcessingRecord::to_markdown`] ([`markdown`]) renders the same as a document;
//! - [`Subscriptions::processing_record`] builds it now, for `GET /v1/processing-record`
//!   and the console.
//!
//! It reads the configuration, so it sits beside the service, below `web`.

mod from_config;
mod markdown;

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::Subscriptions;
use crate::domain::change::opted_in_by_basis;
use crate::domain::{LawfulBasis, Purpose, SubscriptionTypeId};
use crate::feedback::settings::FeedbackProvider;
use crate::receipts::Controller;
use crate::store::StoreError;

pub use from_config::StoreFacts;

/// Everything the record is made of.
#[derive(Clone, Debug)]
pub struct RecordInputs {
    pub generated_at: DateTime<Utc>,
    /// `consent.controller`; `None` when not configured (the record says so).
    pub controller: Option<Controller>,
    pub types: Vec<TypeInputs>,
    pub retention: RetentionInputs,
    /// `privacy.record_ip`: IP address and user agent are kept as consent evidence.
    pub records_ip_and_user_agent: bool,
    pub webhooks: Vec<WebhookRecipient>,
    /// The SMTP relay's host; `None` when mail goes to files.
    pub mail_relay_host: Option<String>,
    pub feedback_providers: Vec<FeedbackProvider>,
    pub measures: MeasureInputs,
}

/// One subscription type: one processing activity.
#[derive(Clone, Debug)]
pub struct TypeInputs {
    pub id: SubscriptionTypeId,
    pub name: String,
    pub description: String,
    pub purpose: Purpose,
    pub double_opt_in: bool,
    pub consent_valid_days: Option<u32>,
    /// Contacts opted in to this type, by the lawful basis of their opt-in.
    pub lawful_bases: HashMap<LawfulBasis, u64>,
}

#[derive(Clone, Debug)]
pub struct RetentionInputs {
    /// `signup.confirmation_ttl_days`: an unconfirmed signup and its data are purged then.
    pub confirmation_ttl_days: u32,
    /// `privacy.retain_inactive_days`: a contact with no active subscription is removed
    /// then; `None`: kept until erased.
    pub retain_inactive_days: Option<u32>,
    /// `feedback.soft_bounce_days`: how long a soft bounce is remembered.
    pub soft_bounce_days: u32,
}

/// A webhook endpoint and the types whose subscribers' data it receives.
#[derive(Clone, Debug)]
pub struct WebhookRecipient {
    pub id: String,
    /// The endpoint URL's host only: never its path, query or credentials.
    pub host: String,
    pub receives: Vec<SubscriptionTypeId>,
}

#[derive(Clone, Copy, Debug)]
pub struct MeasureInputs {
    pub dkim: bool,
    pub consent_receipts: bool,
    /// Whether store dumps can be written encrypted.
    pub dump_encryption: bool,
}

/// The record, as `GET /v1/processing-record` answers it.
#[derive(Clone, Debug, Serialize)]
pub struct ProcessingRecord {
    pub generated_at: String,
    pub controller: Option<Controller>,
    pub activities: Vec<Activity>,
    /// Every recipient of any activity, once.
    pub recipients: Vec<Recipient>,
    pub technical_measures: Vec<Measure>,
    /// What Art. 30(1) asks that optin cannot know.
    pub operator_must_add: Vec<&'static str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Activity {
    pub subscription_type: String,
    pub name: String,
    pub description: String,
    pub purpose: Purpose,
    pub purpose_description: String,
    pub data_subjects: String,
    pub personal_data: Vec<&'static str>,
    pub lawful_bases: Vec<BasisInUse>,
    pub retention: Retention,
    pub recipients: Vec<Recipient>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BasisInUse {
    pub lawful_basis: LawfulBasis,
    pub gdpr_article: &'static str,
    pub contacts: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Retention {
    pub unconfirmed_signup_days: u32,
    pub inactive_contact_days: Option<u32>,
    pub consent_valid_days: Option<u32>,
    pub soft_bounce_days: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recipient {
    /// A system that holds copies of contacts and hears of every change.
    Webhook { id: String, host: String },
    /// The SMTP server every mail goes through.
    MailRelay { host: String },
    /// A sending platform that reports bounces and complaints.
    FeedbackProvider {
        provider: &'static str,
        name: &'static str,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Measure {
    pub measure: &'static str,
    pub in_force: bool,
    pub description: &'static str,
}

const OPERATOR_MUST_ADD: [&str; 8] = [
    "The name and contact details of the controller's representative, any joint controller and the data protection officer (Art. 30(1)(a)).",
    "Transfers to a third country or an international organisation, and their safeguards (Art. 30(1)(e)): where the mail relay, the feedback providers, the webhook receivers and the hosting process the data.",
    "The hosting: where optin, its store and its backups run, and who operates them (a processor and recipient optin cannot see).",
    "How long backups and store replicas are kept: an erasure reaches a copy only when that copy is replaced.",
    "The processing behind each webhook endpoint (a CRM, a warehouse) and by the sending platform (the newsletters themselves, open and click tracking): each has its own purposes, retention and recipients.",
    "Processor agreements (Art. 28) with the mail relay, the feedback providers, the webhook receivers and the hosting.",
    "The organisational security measures (Art. 32): who holds admin keys and console access, training, incident handling.",
    "Processing of the same addresses outside optin, and any subscription type's purpose beyond its description here.",
];

impl Subscriptions {
    /// The record as it stands now: the configuration, and the counts of contacts per
    /// type and lawful basis from the store's counters.
    pub async fn processing_record(&self) -> Result<ProcessingRecord, StoreError> {
        let counters = self.store.counters().await?;
        let facts = StoreFacts {
            lawful_bases: opted_in_by_basis(&counters, self.catalog()),
            dump_encryption: !self.config.backup_recipients.is_empty(),
        };
        Ok(ProcessingRecord::build(&RecordInputs::from_config(
            &self.config,
            facts,
            self.now(),
        )))
    }
}

impl ProcessingRecord {
    pub fn build(inputs: &RecordInputs) -> Self {
        let activities: Vec<Activity> = inputs.types.iter().map(|t| activity(inputs, t)).collect();
        let mut recipients: Vec<Recipient> = Vec::new();
        for recipient in activities.iter().flat_map(|a| &a.recipients) {
            if !recipients.contains(recipient) {
                recipients.push(recipient.clone());
            }
        }
        Self {
            generated_at: inputs
                .generated_at
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            controller: inputs.controller.clone(),
            activities,
            recipients,
            technical_measures: measures(inputs),
            operator_must_add: OPERATOR_MUST_ADD.to_vec(),
        }
    }
}

fn activity(inputs: &RecordInputs, t: &TypeInputs) -> Activity {
    let purpose_description = match t.purpose {
        Purpose::Marketing => format!("Direct marketing by email: {}", t.name),
        Purpose::Service => format!("Service communication by email: {}", t.name),
    };
    let confirmation = if t.double_opt_in {
        "after confirming their address"
    } else {
        "with or without confirming their address"
    };
    let mut personal_data = vec![
        "email address",
        "preferred language",
        "subscription status per type, and its history (provenance events)",
        "consent evidence: the notice shown (version and SHA-256), time, source form and page",
    ];
    if inputs.records_ip_and_user_agent {
        personal_data.push("IP address and user agent at signup and confirmation");
    }
    personal_data.push("delivery feedback: bounces and spam complaints");
    let lawful_bases = LawfulBasis::ALL
        .into_iter()
        .filter_map(|basis| {
            t.lawful_bases.get(&basis).map(|&contacts| BasisInUse {
                lawful_basis: basis,
                gdpr_article: basis.gdpr_article(),
                contacts,
            })
        })
        .collect();
    let mut recipients: Vec<Recipient> = inputs
        .webhooks
        .iter()
        .filter(|w| w.receives.contains(&t.id))
        .map(|w| Recipient::Webhook {
            id: w.id.clone(),
            host: w.host.clone(),
        })
        .collect();
    if let Some(host) = &inputs.mail_relay_host {
        recipients.push(Recipient::MailRelay { host: host.clone() });
    }
    recipients.extend(
        inputs
            .feedback_providers
            .iter()
            .map(|p| Recipient::FeedbackProvider {
                provider: p.id(),
                name: p.name(),
            }),
    );
    Activity {
        subscription_type: t.id.to_string(),
        name: t.name.clone(),
        description: t.description.clone(),
        purpose: t.purpose,
        purpose_description,
        data_subjects: format!(
            "People who subscribed to {} {confirmation}, and people who signed up and have not confirmed yet",
            t.name
        ),
        personal_data,
        lawful_bases,
        retention: Retention {
            unconfirmed_signup_days: inputs.retention.confirmation_ttl_days,
            inactive_contact_days: inputs.retention.retain_inactive_days,
            consent_valid_days: t.consent_valid_days,
            soft_bounce_days: inputs.retention.soft_bounce_days,
        },
        recipients,
    }
}

fn measures(inputs: &RecordInputs) -> Vec<Measure> {
    let measure = |measure, in_force, description| Measure {
        measure,
        in_force,
        description,
    };
    vec![
        measure(
            "signed_links",
            true,
            "Links in mails are signed (HMAC-SHA256) and expire; each kind of link can do only what its place allows.",
        ),
        measure(
            "hash_chain",
            true,
            "Every change is a provenance event in a per-contact SHA-256 hash chain, so a changed or removed event shows.",
        ),
        measure(
            "pseudonymous_keys",
            true,
            "Storage keys, logs and metrics hold a keyed hash of the address (the contact id), never the address.",
        ),
        measure(
            "api_key_hashing",
            true,
            "API keys are stored only as SHA-256 hashes and compared in constant time.",
        ),
        measure(
            "dkim",
            inputs.measures.dkim,
            "Outgoing mail is DKIM-signed by optin, covering the unsubscribe headers.",
        ),
        measure(
            "consent_receipts",
            inputs.measures.consent_receipts,
            "Every opt-in on consent gets a receipt signed with Ed25519 (keys at /.well-known/jwks.json), recorded in the hash chain.",
        ),
        measure(
            "webhook_signatures",
            !inputs.webhooks.is_empty(),
            "Webhook deliveries are signed (Standard Webhooks) and go over HTTPS.",
        ),
        measure(
            "dump_encryption",
            inputs.measures.dump_encryption,
            "Dumps of the store that the service serves are encrypted with age to `backup.age_recipients`.",
        ),
    ]
}

#[cfg(test)]
mod tests_support {
    use super::*;

    pub(super) fn inputs() -> RecordInputs {
        let news = SubscriptionTypeId::parse("news").unwrap();
        let billing = SubscriptionTypeId::parse("billing").unwrap();
        RecordInputs {
            generated_at: DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            controller: Some(
                Controller::new("Example B.V.", "privacy@example.com", "https://example.com")
                    .unwrap(),
            ),
            types: vec![
                TypeInputs {
                    id: news.clone(),
                    name: "News".into(),
                    description: "Our news.".into(),
                    purpose: Purpose::Marketing,
                    double_opt_in: true,
                    consent_valid_days: Some(730),
                    lawful_bases: HashMap::from([
                        (LawfulBasis::LegitimateInterests, 2),
                        (LawfulBasis::Consent, 5),
                    ]),
                },
                TypeInputs {
                    id: billing.clone(),
                    name: "Billing".into(),
                    description: String::new(),
                    purpose: Purpose::Service,
                    double_opt_in: false,
                    consent_valid_days: None,
                    lawful_bases: HashMap::new(),
                },
            ],
            retention: RetentionInputs {
                confirmation_ttl_days: 7,
                retain_inactive_days: Some(365),
                soft_bounce_days: 14,
            },
            records_ip_and_user_agent: false,
            webhooks: vec![WebhookRecipient {
                id: "crm".into(),
                host: "crm.example.com".into(),
                receives: vec![news],
            }],
            mail_relay_host: Some("smtp.example.com".into()),
            feedback_providers: vec![FeedbackProvider::Postmark],
            measures: MeasureInputs {
                dkim: true,
                consent_receipts: false,
                dump_encryption: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::inputs;
    use super::*;

    #[test]
    fn each_type_is_an_activity_with_its_bases_retention_and_recipients() {
        let record = ProcessingRecord::build(&inputs());
        assert_eq!(record.generated_at, "2026-03-01T10:00:00Z");
        let news = &record.activities[0];
        assert_eq!(news.subscription_type, "news");
        let bases: Vec<(LawfulBasis, &str, u64)> = news
            .lawful_bases
            .iter()
            .map(|b| (b.lawful_basis, b.gdpr_article, b.contacts))
            .collect();
        assert_eq!(
            bases,
            [
                (LawfulBasis::Consent, "Art. 6(1)(a)", 5),
                (LawfulBasis::LegitimateInterests, "Art. 6(1)(f)", 2)
            ]
        );
        assert_eq!(news.retention.consent_valid_days, Some(730));
        assert_eq!(news.retention.inactive_contact_days, Some(365));
        assert!(!news.personal_data.iter().any(|d| d.contains("IP address")));
        assert_eq!(
            news.recipients,
            [
                Recipient::Webhook {
                    id: "crm".into(),
                    host: "crm.example.com".into()
                },
                Recipient::MailRelay {
                    host: "smtp.example.com".into()
                },
                Recipient::FeedbackProvider {
                    provider: "postmark",
                    name: "Postmark"
                },
            ]
        );
        let billing = &record.activities[1];
        assert!(billing.lawful_bases.is_empty());
        assert!(!billing
            .recipients
            .iter()
            .any(|r| matches!(r, Recipient::Webhook { .. })));
        assert_eq!(record.recipients.len(), 3);
        let in_force = |name: &str| {
            record
                .technical_measures
                .iter()
                .find(|m| m.measure == name)
                .map(|m| m.in_force)
        };
        assert_eq!(in_force("dkim"), Some(true));
        assert_eq!(in_force("consent_receipts"), Some(false));
        assert_eq!(in_force("webhook_signatures"), Some(true));
        assert_eq!(in_force("hash_chain"), Some(true));
    }

    #[test]
    fn recorded_ip_addresses_are_listed_as_personal_data() {
        let mut inputs = inputs();
        inputs.records_ip_and_user_agent = true;
        let record = ProcessingRecord::build(&inputs);
        assert!(record.activities[0]
            .personal_data
            .contains(&"IP address and user agent at signup and confirmation"));
    }
}
