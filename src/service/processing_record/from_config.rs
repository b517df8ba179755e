//! The record's inputs gathered from the configuration, plus what only the store knows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::{MeasureInputs, RecordInputs, RetentionInputs, TypeInputs, WebhookRecipient};
use crate::config::Config;
use crate::domain::LawfulBasis;

/// What the record needs beyond the configuration.
#[derive(Clone, Debug, Default)]
pub struct StoreFacts {
    /// Contacts opted in per subscription type id, by the lawful basis of their opt-in.
    pub lawful_bases: HashMap<String, HashMap<LawfulBasis, u64>>,
    /// Whether the dumps the service serves are encrypted (`backup.age_recipients`).
    pub dump_encryption: bool,
}

impl RecordInputs {
    pub fn from_config(config: &Config, store: StoreFacts, now: DateTime<Utc>) -> Self {
        let settings = &config.settings;
        let default_locale = config.catalog.default_locale();
        let types = config
            .catalog
            .all()
            .iter()
            .map(|t| TypeInputs {
                id: t.id.clone(),
                name: t.name_in(default_locale, default_locale),
                description: t.description_in(default_locale, default_locale),
                purpose: t.purpose,
                double_opt_in: t.double_opt_in,
                consent_valid_days: t.consent_valid_days,
                lawful_bases: store
                    .lawful_bases
                    .get(t.id.as_str())
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        let webhooks = config
            .webhook_endpoints
            .iter()
            .map(|endpoint| WebhookRecipient {
                id: endpoint.id.clone(),
                host: endpoint.url.host_str().unwrap_or_default().to_string(),
                receives: config
                    .catalog
                    .all()
                    .iter()
                    .filter(|t| endpoint.filter.receives_contacts_of(t.id.as_str()))
                    .map(|t| t.id.clone())
                    .collect(),
            })
            .collect();
        Self {
            generated_at: now,
            controller: config.controller.clone(),
            types,
            retention: RetentionInputs {
                confirmation_ttl_days: settings.signup.confirmation_ttl_days,
                retain_inactive_days: settings.privacy.retain_inactive_days,
                soft_bounce_days: settings.feedback.soft_bounce_days,
            },
            records_ip_and_user_agent: settings.privacy.record_ip,
            webhooks,
            mail_relay_host: crate::mail::transport::relay_host(settings.mail.url.expose_secret()),
            feedback_providers: config.feedback.providers.clone(),
            measures: MeasureInputs {
                dkim: settings.mail.dkim.is_some(),
                consent_receipts: config.receipts.is_some(),
                dump_encryption: store.dump_encryption,
            },
        }
    }
}
