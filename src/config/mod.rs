//! Settings: `optin.toml` (or `--config PATH`), then `OPTIN_<SECTION>__<KEY>` environment
//! variables. Parsed once into a [`Config`] whose parts are ready to use; every mistake is
//! reported naming the setting.

//!
//! - [`schema`]: the settings as written, with their defaults;
//! - [`load`]: reading the file and the environment;
//! - [`validate`]: checking them and building the ready parts;
//! - [`dev`]: the development setup (generated keys) when nothing is configured.

mod dev;
mod load;
mod names;
mod schema;
mod validate;

use ipnet::IpNet;

use crate::auth::ApiKeys;
use crate::domain::{Catalog, ContactIndex};
use crate::tokens::TokenSigner;

pub use dev::{DevFiles, DevKeys};
pub use names::environment_variable;
pub use schema::{
    AdminSettings, BackupSettings, ConsentSettings, ControllerSettings, DkimSettings, LinkSettings,
    ListSetting, LogFormat, LogSettings, MailSettings, PrivacySettings, SecuritySettings,
    ServerSettings, Settings, SignupSettings, StoreSettings, StringList,
};

pub const DEFAULT_CONFIG_FILE: &str = "optin.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration: {0}")]
    Read(String),
    /// A setting that does not exist; `origin` says where it was written, and `known`
    /// lists the settings its section has.
    #[error("unknown setting `{setting}` ({origin}){}", names::known_note(.known))]
    Unknown {
        setting: String,
        origin: String,
        known: Vec<String>,
    },
    /// A value that is not what the setting takes: of the wrong type (found while
    /// reading) or out of its range (found while checking).
    #[error("setting `{setting}`{}: {reason}", names::variable_note(.setting))]
    Invalid { setting: String, reason: String },
    /// A `[webhooks]` setting; the error names it, e.g. `webhooks.endpoints[crm].url`.
    #[error("setting `{}`{}: {}", .0.setting, names::variable_note(&.0.setting), .0.reason)]
    Webhooks(crate::webhooks::WebhookConfigError),
    /// A `[signup]` firewall setting; the message names it.
    #[error("{0}")]
    Firewall(String),
    #[error("missing {}: a production setup needs them, and never falls back to generated keys or a guessed address (the development setup needs no configuration file, the embedded store and no OPTIN_SECURITY__* variable)", names::listed(.0))]
    Missing(Vec<&'static str>),
}

fn invalid(setting: &str, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_string(),
        reason: reason.to_string(),
    }
}

/// Settings turned into ready parts. Building one checks everything.
#[derive(Clone)]
pub struct Config {
    pub settings: Settings,
    pub public_url: url::Url,
    pub mail_from: lettre::message::Mailbox,
    pub signer: TokenSigner,
    pub index: ContactIndex,
    pub api_keys: ApiKeys,
    pub catalog: Catalog,
    pub trusted_proxies: Vec<IpNet>,
    /// `server.metrics_allowed_ips`: clients that read `GET /metrics` without a key.
    pub metrics_allowed_ips: Vec<IpNet>,
    /// `[[webhooks.endpoints]]`, checked: HTTPS (or loopback) URLs and parsed secrets.
    pub webhook_endpoints: std::sync::Arc<Vec<crate::webhooks::Endpoint>>,
    /// True when started with no configuration: generated keys and example types.
    pub development_setup: bool,
    /// `[feedback]`, checked.
    pub feedback: crate::feedback::settings::FeedbackConfig,
    /// `consent.controller`, checked.
    pub controller: Option<crate::receipts::Controller>,
    /// Signs consent receipts when `consent.receipt_keys` is set; `None`: no receipts.
    pub receipts: Option<std::sync::Arc<crate::receipts::ReceiptIssuer>>,
    /// `backup.age_recipients`, parsed: who can decrypt the dumps the service serves.
    pub backup_recipients: crate::backup::Recipients,
    /// The signup firewall, from `[signup]`.
    pub firewall: std::sync::Arc<crate::firewall::Firewall>,
}
