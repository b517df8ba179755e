//! Settings: `optin.toml` (or `--config PATH`), then `OPTIN_<SECTION>__<KEY>` environment
//! variables. Parsed once into a [`Config`] whose parts are ready to use; every mistake is
//! reported naming the setting.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::auth::{ApiKey, ApiKeys};
use crate::domain::{Catalog, ContactIndex, SubscriptionType};
use crate::tokens::{SigningKey, TokenSigner};
use crate::web::extract::client_ip::IpRange;

pub const DEFAULT_CONFIG_FILE: &str = "optin.toml";
const DEV_KEYS_FILE: &str = "dev-keys.toml";
const EXAMPLE_TYPES: &str = include_str!("example_subscription_types.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration: {0}")]
    Read(String),
    #[error("setting `{setting}`: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
    #[error("missing {}: a production setup never falls back to generated keys (the development setup needs no configuration file, the embedded store and no OPTIN_SECURITY__* variable)", .0.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "))]
    Missing(Vec<&'static str>),
}

fn invalid(setting: &'static str, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.to_string(),
    }
}

/// A list written either as a TOML array or as one comma-separated string (the form an
/// environment variable takes).
#[derive(Clone, Debug, Default)]
pub struct ListSetting(pub Vec<SecretString>);

impl<'de> Deserialize<'de> for ListSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let items = match Raw::deserialize(deserializer)? {
            Raw::One(joined) => joined.split(',').map(str::to_string).collect(),
            Raw::Many(items) => items,
        };
        let items = items
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        Ok(Self(items.map(SecretString::from).collect()))
    }
}

/// A list of plain strings, written as a TOML array or one comma-separated string.
#[derive(Clone, Debug, Default)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let secret = ListSetting::deserialize(deserializer)?;
        Ok(Self(
            secret
                .0
                .iter()
                .map(|s| s.expose_secret().to_string())
                .collect(),
        ))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    /// The address people and mail clients reach us at; links in mails start with it.
    pub public_url: String,
    pub body_limit_bytes: usize,
    /// Where `POST /signup` sends the browser afterwards. Never taken from the request.
    pub thank_you_url: Option<String>,
    /// Where an expired link's page sends people to sign up again.
    pub signup_page_url: Option<String>,
    /// Seconds a request may take before it is answered 503.
    pub request_timeout_secs: u64,
    /// Proxies (addresses or ranges like `10.0.0.0/8`) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: StringList,
    /// Our own page templates (`<page>.hbs`, `layout.hbs`, `i18n/<locale>.json`).
    pub pages_dir: Option<PathBuf>,
    /// Origins whose pages may post to `POST /v1/signups` from a browser (CORS).
    pub cors_allowed_origins: StringList,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            body_limit_bytes: 1024 * 1024,
            thank_you_url: None,
            signup_page_url: None,
            request_timeout_secs: 10,
            trusted_proxies: StringList::default(),
            pages_dir: None,
            cors_allowed_origins: StringList::default(),
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
    pub dkim: Option<crate::mail::dkim::DkimSettings>,
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

impl SecuritySettings {
    /// The keys every setup needs that are not configured.
    fn missing_keys(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.signing_keys.0.is_empty() {
            missing.push("security.signing_keys");
        }
        if self.index_key.is_none() {
            missing.push("security.index_key");
        }
        missing
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignupSettings {
    pub default_locale: String,
    /// Days a confirmation link stays valid.
    pub confirmation_ttl_days: u32,
    /// Confirmation mails one address may receive in 24 hours (against subscription bombing).
    pub max_confirmation_mails_per_day: u32,
    /// Signups one client IP may post per window; more get 429.
    pub max_signups_per_ip: u32,
    pub ip_window_secs: u64,
}

impl Default for SignupSettings {
    fn default() -> Self {
        Self {
            default_locale: "en".into(),
            confirmation_ttl_days: 7,
            max_confirmation_mails_per_day: 3,
            max_signups_per_ip: 30,
            ip_window_secs: 600,
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
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            record_ip: true,
            purge_interval_secs: 60,
            retain_inactive_days: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `json` (one JSON object per line) or `text`.
    pub format: String,
    /// A tracing filter such as `info` or `optin=debug,info`; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "json".into(),
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
    pub subscription_types: Vec<SubscriptionType>,
}

impl Settings {
    /// Reads the file (when it exists; `explicit` files must exist) and the environment.
    pub fn load(explicit: Option<&Path>) -> Result<(Self, Option<PathBuf>), ConfigError> {
        let path = explicit
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
        if explicit.is_some() && !path.exists() {
            return Err(ConfigError::Read(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let file_used = path.exists().then_some(path.clone());
        let built = config::Config::builder()
            .add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(false),
            )
            .add_source(
                config::Environment::with_prefix("OPTIN")
                    .prefix_separator("_")
                    .separator("__"),
            )
            .build()
            .map_err(|e| ConfigError::Read(e.to_string()))?;
        let settings = built
            .try_deserialize()
            .map_err(|e| ConfigError::Read(e.to_string()))?;
        Ok((settings, file_used))
    }

    /// Settings where 0 makes no sense (a link dead on arrival, a job never tried, …),
    /// by name. A new lifetime, limit or count setting belongs here.
    fn at_least_one(&self) -> [(&'static str, u64); 8] {
        [
            (
                "signup.confirmation_ttl_days",
                self.signup.confirmation_ttl_days.into(),
            ),
            (
                "links.unsubscribe_ttl_days",
                self.links.unsubscribe_ttl_days.into(),
            ),
            (
                "links.preferences_ttl_days",
                self.links.preferences_ttl_days.into(),
            ),
            (
                "links.rights_max_age_minutes",
                self.links.rights_max_age_minutes.into(),
            ),
            (
                "links.max_posts_per_hour",
                self.links.max_posts_per_hour.into(),
            ),
            (
                "server.request_timeout_secs",
                self.server.request_timeout_secs,
            ),
            ("mail.lease_secs", self.mail.lease_secs),
            ("mail.max_attempts", self.mail.max_attempts.into()),
        ]
    }

    /// The four example subscription types used by the development setup and tests.
    pub fn example_subscription_types() -> Vec<SubscriptionType> {
        #[derive(Deserialize)]
        struct Types {
            subscription_types: Vec<SubscriptionType>,
        }
        let parsed: Types = toml_from_str(EXAMPLE_TYPES).expect("the bundled example types parse");
        parsed.subscription_types
    }
}

fn toml_from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| ConfigError::Read(e.to_string()))
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
    pub trusted_proxies: Vec<IpRange>,
    /// Signs outgoing mail when `[mail.dkim]` is set.
    pub dkim: Option<std::sync::Arc<crate::mail::dkim::DkimSigner>>,
    /// True when started with no configuration: generated keys and example types.
    pub development_setup: bool,
}

impl Config {
    pub fn from_settings(settings: Settings) -> Result<Self, ConfigError> {
        Self::build(settings, false)
    }

    fn build(settings: Settings, development_setup: bool) -> Result<Self, ConfigError> {
        let public_url = url::Url::parse(settings.server.public_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| invalid("server.public_url", "must be an absolute http(s) URL"))?;
        let mail_from = settings
            .mail
            .from
            .parse()
            .map_err(|e| invalid("mail.from", e))?;
        let missing = settings.security.missing_keys();
        if !missing.is_empty() {
            return Err(ConfigError::Missing(missing));
        }
        let signer = TokenSigner::new(parse_signing_keys(&settings.security.signing_keys)?)
            .ok_or(ConfigError::Missing(vec!["security.signing_keys"]))?;
        let index_key = settings
            .security
            .index_key
            .as_ref()
            .ok_or(ConfigError::Missing(vec!["security.index_key"]))?;
        let index = ContactIndex::new(decode_key("security.index_key", index_key.expose_secret())?);
        let api_keys = settings
            .security
            .api_keys
            .0
            .iter()
            .map(|entry| ApiKey::parse(entry.expose_secret()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("security.api_keys", e))?;
        if !["en", "nl"].contains(&settings.signup.default_locale.as_str()) {
            return Err(invalid(
                "signup.default_locale",
                "must be one of the shipped locales: en, nl",
            ));
        }
        for (setting, value) in settings.at_least_one() {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1"));
            }
        }
        for (setting, value) in [
            ("server.thank_you_url", &settings.server.thank_you_url),
            ("server.signup_page_url", &settings.server.signup_page_url),
        ] {
            if let Some(url) = value {
                let parsed = url::Url::parse(url).map_err(|e| invalid(setting, e))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid(setting, "must be an http(s) URL"));
                }
            }
        }
        if !["json", "text"].contains(&settings.log.format.as_str()) {
            return Err(invalid("log.format", "must be json or text"));
        }
        if !(1..=64).contains(&settings.mail.workers) {
            return Err(invalid("mail.workers", "must be between 1 and 64"));
        }
        let trusted_proxies = settings
            .server
            .trusted_proxies
            .0
            .iter()
            .map(|entry| {
                IpRange::parse(entry).ok_or_else(|| {
                    invalid(
                        "server.trusted_proxies",
                        format!("'{entry}' is not an address or range"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for origin in &settings.server.cors_allowed_origins.0 {
            let parsed = url::Url::parse(origin).map_err(|_| {
                invalid(
                    "server.cors_allowed_origins",
                    format!("'{origin}' is not an origin"),
                )
            })?;
            if parsed.origin().ascii_serialization() != origin.trim_end_matches('/') {
                return Err(invalid(
                    "server.cors_allowed_origins",
                    format!("'{origin}' must be a bare origin like https://shop.example"),
                ));
            }
        }
        let catalog = Catalog::new(
            settings.subscription_types.clone(),
            &settings.signup.default_locale,
        )
        .map_err(|e| invalid("subscription_types", e))?;
        let dkim = settings
            .mail
            .dkim
            .as_ref()
            .map(|dkim| crate::mail::dkim::DkimSigner::load(dkim, &mail_from))
            .transpose()
            .map_err(|e| invalid("mail.dkim", e))?
            .map(std::sync::Arc::new);
        Ok(Self {
            public_url,
            mail_from,
            dkim,
            signer,
            index,
            api_keys: ApiKeys::new(api_keys),
            catalog,
            trusted_proxies,
            development_setup,
            settings,
        })
    }

    /// Loads the configuration for `optin serve`. With no configuration at all it makes a
    /// development setup: keys generated once into `./data`, and the example types.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let (mut settings, file) = Settings::load(explicit)?;
        let security_env = std::env::vars_os().any(|(name, _)| {
            name.to_string_lossy()
                .to_ascii_uppercase()
                .starts_with("OPTIN_SECURITY__")
        });
        if !development_setup_allowed(&settings, file.is_some(), security_env) {
            return Self::build(settings, false);
        }
        let dev = DevKeys::load_or_create(Path::new("./data"))?;
        settings.security.signing_keys =
            ListSetting(vec![SecretString::from(format!("dev:{}", dev.signing_key))]);
        // Unreachable with an index key set (that is configuration), but an operator's
        // index key must never be swapped for a generated one: it derives every contact id.
        settings
            .security
            .index_key
            .get_or_insert_with(|| SecretString::from(dev.index_key.clone()));
        if settings.security.api_keys.0.is_empty() {
            settings.security.api_keys = ListSetting(vec![
                SecretString::from(dev.admin_entry.clone()),
                SecretString::from(dev.send_entry.clone()),
            ]);
        }
        if settings.subscription_types.is_empty() {
            settings.subscription_types = Settings::example_subscription_types();
        }
        Self::build(settings, true)
    }
}

/// The development setup (generated keys, example types) only where it cannot be
/// mistaken for production: no configuration file, no signing keys, the embedded store,
/// and no `OPTIN_SECURITY__*` variable. Anything else must configure its keys.
fn development_setup_allowed(settings: &Settings, has_file: bool, security_env: bool) -> bool {
    !has_file
        && !security_env
        && settings.security.signing_keys.0.is_empty()
        && settings.security.index_key.is_none()
        && crate::store::is_embedded(&settings.store.url)
}

fn decode_key(setting: &'static str, b64: &str) -> Result<Vec<u8>, ConfigError> {
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| invalid(setting, "is not valid standard base64"))?;
    if bytes.len() < 32 {
        return Err(invalid(
            setting,
            "must be at least 32 bytes (44 base64 characters)",
        ));
    }
    Ok(bytes)
}

fn parse_signing_keys(list: &ListSetting) -> Result<Vec<SigningKey>, ConfigError> {
    const SETTING: &str = "security.signing_keys";
    let keys: Vec<SigningKey> = list
        .0
        .iter()
        .map(|entry| {
            let (id, b64) = entry
                .expose_secret()
                .split_once(':')
                .ok_or_else(|| invalid(SETTING, "each entry is id:base64key"))?;
            let id_ok = !id.is_empty()
                && id.len() <= 32
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !id_ok {
                return Err(invalid(
                    SETTING,
                    "a key id is 1 to 32 characters of A-Z, a-z, 0-9, '-' and '_'",
                ));
            }
            Ok(SigningKey {
                id: id.to_string(),
                secret: decode_key(SETTING, b64)?,
            })
        })
        .collect::<Result<_, _>>()?;
    // A token names the key that signed it: two keys with one id would make a token
    // verify against whichever comes first, and a rotation silently break links.
    let mut seen = std::collections::BTreeSet::new();
    if let Some(duplicate) = keys.iter().find(|key| !seen.insert(key.id.as_str())) {
        return Err(invalid(
            SETTING,
            format!("the key id '{}' appears more than once", duplicate.id),
        ));
    }
    Ok(keys)
}

/// Keys of the development setup, generated on first start and kept in `./data`.
#[derive(serde::Serialize, Deserialize)]
pub struct DevKeys {
    pub signing_key: String,
    pub index_key: String,
    /// The plain API keys, so a developer can use curl; the entries hold only hashes.
    pub admin_key: String,
    pub send_key: String,
    pub admin_entry: String,
    pub send_entry: String,
}

impl DevKeys {
    fn load_or_create(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join(DEV_KEYS_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::Read(format!("{}: {e}", path.display())))?;
            return toml_from_str(&text);
        }
        let random_key = || -> Result<String, ConfigError> {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| ConfigError::Read(format!("no randomness available: {e}")))?;
            Ok(STANDARD.encode(bytes))
        };
        let admin = crate::auth::generate_key("dev-admin", crate::auth::Scope::Admin)
            .map_err(|e| ConfigError::Read(e.to_string()))?;
        let send = crate::auth::generate_key("dev-send", crate::auth::Scope::Send)
            .map_err(|e| ConfigError::Read(e.to_string()))?;
        let keys = DevKeys {
            signing_key: random_key()?,
            index_key: random_key()?,
            admin_key: admin.key,
            send_key: send.key,
            admin_entry: admin.config_entry,
            send_entry: send.config_entry,
        };
        let text = format!(
            "# Development keys generated by `optin serve` with no configuration. Not for production.\n\
             signing_key = \"{}\"\nindex_key = \"{}\"\nadmin_key = \"{}\"\nsend_key = \"{}\"\nadmin_entry = \"{}\"\nsend_entry = \"{}\"\n",
            keys.signing_key, keys.index_key, keys.admin_key, keys.send_key, keys.admin_entry, keys.send_entry
        );
        std::fs::create_dir_all(dir)
            .map_err(|e| ConfigError::Read(format!("{}: {e}", dir.display())))?;
        write_private(&path, &text)
            .map_err(|e| ConfigError::Read(format!("{}: {e}", path.display())))?;
        Ok(keys)
    }

    pub fn path() -> PathBuf {
        Path::new("./data").join(DEV_KEYS_FILE)
    }
}

/// Writes a file readable by its owner only.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}
