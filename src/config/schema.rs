//! The settings as written: serde structs with their defaults. Nothing here checks a
//! value beyond its type; [`super::validate`] does that.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::SubscriptionType;
pub use crate::setting_list::{ListSetting, StringList};

const EXAMPLE_TYPES: &str = include_str!("../example_subscription_types.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// `address:port` to listen on.
    pub bind: String,
    /// The address people and mail clients reach us at; links in mails start with it.
    /// A production setup must set it; the development setup follows `bind` without it.
    pub public_url: Option<String>,
    pub body_limit_bytes: usize,
    /// Where `POST /signup` sends the browser afterwards. Never taken from the request.
    pub thank_you_url: Option<String>,
    /// Where an expired link's page sends people to sign up again.
    pub signup_page_url: Option<String>,
    /// Seconds a request may take before it is answered 503.
    pub request_timeout_secs: u64,
    /// Proxies (addresses or ranges like `10.0.0.0/8`) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: StringList,
    /// Client addresses or ranges that may read `GET /metrics` without a key; anyone else
    /// needs a key of scope `metrics` or `admin`.
    pub metrics_allowed_ips: StringList,
    /// Our own page templates (`<page>.hbs`, `layout.hbs`, `i18n/<locale>.json`).
    pub pages_dir: Option<PathBuf>,
    /// Origins whose pages may post to `POST /v1/signups` from a browser (CORS).
    pub cors_allowed_origins: StringList,
    /// Origins whose pages may show `GET /signup` in an `<iframe>` (CSP
    /// `frame-ancestors`). Empty: the form cannot be framed, like every other page.
    pub embed_allowed_origins: StringList,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_url: None,
            body_limit_bytes: 1024 * 1024,
            thank_you_url: None,
            signup_page_url: None,
            request_timeout_secs: 10,
            trusted_proxies: StringList::default(),
            metrics_allowed_ips: StringList(vec!["127.0.0.0/8".into(), "::1".into()]),
            pages_dir: None,
            cors_allowed_origins: StringList::default(),
            embed_allowed_origins: StringList::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// `redis://…`, `redis+cluster://h1:p1,h2:p2`, or a file path for the embedded store.
    pub url: String,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: "./data/optin.redb".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// `smtp://…`, `smtps://…` or `file://DIR`.
    pub url: SecretString,
    pub from: String,
    /// Our own mail templates (`<locale>/<name>.<part>.hbs`); they override the built-in
    /// ones of the same name.
    pub templates_dir: Option<PathBuf>,
    /// Shown in mails and pages.
    pub service_name: String,
    /// Sends tried before a job is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles with each failure.
    pub retry_base_secs: u64,
    /// Sends in flight at once per instance (each worker takes one job at a time).
    pub workers: u32,
    /// How long a worker holds a job it took. A worker that dies leaves the job to be
    /// taken again after this; it must be longer than any send takes.
    pub lease_secs: u64,
    /// `[mail.dkim]`: sign every mail when set.
    pub dkim: Option<DkimSettings>,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("file://./data/mail"),
            from: "optin <no-reply@localhost.localdomain>".into(),
            templates_dir: None,
            service_name: "optin".into(),
            max_attempts: 8,
            retry_base_secs: 30,
            lease_secs: 120,
            workers: 4,
            dkim: None,
        }
    }
}

/// `[mail.dkim]`: present means every mail is signed (the mail module loads the key).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimSettings {
    /// The signing domain (`d=`); the `From` domain must be it or below it.
    pub domain: String,
    /// The selector (`s=`): the record lives at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// RSA (PKCS#1 or PKCS#8 PEM, 2048 bits or more) or Ed25519 (PKCS#8 PEM).
    pub private_key_file: PathBuf,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySettings {
    /// `id:base64key,…`; the first signs, all verify.
    pub signing_keys: ListSetting,
    /// Base64 of 32 random bytes; derives contact ids.
    pub index_key: Option<SecretString>,
    /// `name:scope:sha256hex,…`.
    pub api_keys: ListSetting,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignupSettings {
    pub default_locale: String,
    /// Days a confirmation link stays valid.
    pub confirmation_ttl_days: u32,
    /// Confirmation mails one address may receive in 24 hours (against subscription bombing).
    pub max_confirmation_mails_per_day: u32,
    /// A confirmation still pending this long after it was asked for gets one reminder
    /// mail; 0 turns reminders off.
    pub reminder_after_minutes: u32,
    /// Signups one client IP may post per window; more get 429.
    pub max_signups_per_ip: u32,
    pub ip_window_secs: u64,
    /// Signups must carry a solved ALTCHA challenge (`GET /v1/signup-challenge`), unless
    /// made with a key of scope `signup`. Off unless set.
    pub proof_of_work: bool,
    /// Seconds a challenge may be solved and used in.
    pub challenge_ttl_seconds: u32,
    /// The challenge's secret number lies in 0..=this: the work a browser does.
    pub proof_of_work_max_number: u64,
    /// Refuse addresses whose domain has no MX (and no A/AAAA) or a null MX. Unset: on in
    /// a production setup, off in the development setup.
    pub check_mx: Option<bool>,
    /// Resolvers for the MX check as `ip:port` (or `ip`, port 53). Empty: the system's.
    pub dns_servers: StringList,
    /// What happens to addresses at throw-away domains.
    pub disposable_domains: crate::firewall::DisposableAction,
    /// Domains (and their subdomains) always refused.
    pub blocked_domains: StringList,
    /// Domains (and their subdomains) never judged throw-away.
    pub allowed_domains: StringList,
    /// The hosted form posted sooner than this after it was shown is held as `too_fast`;
    /// 0 turns it off.
    pub min_fill_seconds: u32,
    /// More unconfirmed signups than this from one IP (or IPv6 /64) within an hour are
    /// held as `ip_burst`.
    pub max_unconfirmed_per_ip: u32,
}

impl Default for SignupSettings {
    fn default() -> Self {
        Self {
            default_locale: "en".into(),
            confirmation_ttl_days: 7,
            max_confirmation_mails_per_day: 3,
            reminder_after_minutes: 1440,
            max_signups_per_ip: 30,
            ip_window_secs: 600,
            proof_of_work: false,
            challenge_ttl_seconds: 300,
            proof_of_work_max_number: 100_000,
            check_mx: None,
            dns_servers: StringList::default(),
            disposable_domains: crate::firewall::DisposableAction::default(),
            blocked_domains: StringList::default(),
            allowed_domains: StringList::default(),
            min_fill_seconds: 2,
            max_unconfirmed_per_ip: 10,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkSettings {
    /// Days an unsubscribe or manage link stays valid: long, so old mails still work.
    pub unsubscribe_ttl_days: u32,
    /// Days a preferences link stays valid. It only ever travels in mail to the address.
    pub preferences_ttl_days: u32,
    /// Self-service export and erasure need a preferences link at most this old.
    pub rights_max_age_minutes: u32,
    /// State-changing or export POSTs per contact and hour on the token routes.
    pub max_posts_per_hour: u32,
}

impl Default for LinkSettings {
    fn default() -> Self {
        Self {
            unsubscribe_ttl_days: 5 * 366,
            preferences_ttl_days: 30,
            rights_max_age_minutes: 60,
            max_posts_per_hour: 20,
        }
    }
}

/// `[admin]`: the console at `/admin`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Minutes a console sign-in lasts.
    pub session_minutes: u32,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            session_minutes: 60,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// Record IP address and user agent as consent evidence.
    pub record_ip: bool,
    /// Seconds between runs of the expiry and retention jobs.
    pub purge_interval_secs: u64,
    /// Days a contact with no active subscription is kept before it is removed (with a
    /// tombstone left). Unset: kept until erased.
    pub retain_inactive_days: Option<u32>,
    /// Minutes after an erasure within which no readable copy of it is left in the
    /// store's files (the embedded file compacted, Redis's files rewritten).
    pub erasure_purge_minutes: u32,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            record_ip: true,
            purge_interval_secs: 60,
            retain_inactive_days: None,
            erasure_purge_minutes: 60,
        }
    }
}

/// `[consent.controller]`: who is responsible for the processing, as receipts and the
/// record of processing name them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSettings {
    /// The legal name.
    pub name: String,
    /// Where people and authorities reach the controller about their data.
    pub email: String,
    /// The controller's website; also the controller's id in receipts.
    pub url: String,
}

/// `[consent]`: consent receipts, and the sweep that lets consent lapse.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsentSettings {
    pub controller: Option<ControllerSettings>,
    /// Ed25519 PKCS#8 PEM files (`optin keys receipt` makes one). The first signs
    /// receipts, all are published at `/.well-known/jwks.json`. Empty: no receipts.
    pub receipt_keys: StringList,
    /// Mail the receipt to the person after an opt-in by their own act.
    pub receipt_mail: bool,
    /// Minutes between runs of the check for consent to renew or lapsed.
    pub sweep_minutes: u32,
}

impl Default for ConsentSettings {
    fn default() -> Self {
        Self {
            controller: None,
            receipt_keys: StringList::default(),
            receipt_mail: true,
            sweep_minutes: 60,
        }
    }
}

/// `[backup]`: dumps served by `GET /v1/backup`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupSettings {
    /// age X25519 recipients (`age1…`) that dumps are encrypted to; `optin backup` uses
    /// them too when given no `--encrypt-to`. Empty: dumps are not encrypted.
    pub age_recipients: StringList,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    /// One JSON object per line, for a log collector.
    #[default]
    Json,
    /// Lines for people.
    Text,
}

impl TryFrom<String> for LogFormat {
    type Error = &'static str;

    // Spelled out rather than `rename_all`, so that a wrong value gets the same message
    // naming the setting that the validation used to give.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            _ => Err("setting `log.format`: must be json or text"),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `optin=debug,info`; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            filter: "info".into(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub log: LogSettings,
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub mail: MailSettings,
    pub security: SecuritySettings,
    pub signup: SignupSettings,
    pub links: LinkSettings,
    pub privacy: PrivacySettings,
    pub admin: AdminSettings,
    pub webhooks: crate::webhooks::WebhookSettings,
    pub consent: ConsentSettings,
    pub subscription_types: Vec<SubscriptionType>,
    /// `[feedback]`: bounces and complaints.
    pub feedback: crate::feedback::settings::FeedbackSettings,
    pub backup: BackupSettings,
}

impl Settings {
    /// The four example subscription types used by the development setup and tests.
    pub fn example_subscription_types() -> Vec<SubscriptionType> {
        #[derive(Deserialize)]
        struct Types {
            subscription_types: Vec<SubscriptionType>,
        }
        let parsed: Types =
            super::load::toml_from_str(EXAMPLE_TYPES).expect("the bundled example types parse");
        parsed.subscription_types
    }
}
