//! The development setup: with no configuration at all, `optin serve` generates keys once
//! into `./data` and uses the example subscription types.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::SecretString;
use serde::Deserialize;

use super::load::toml_from_str;
use super::{Config, ConfigError, ControllerSettings, ListSetting, Settings, StringList};

const DEV_DIR: &str = "./data";
const DEV_KEYS_FILE: &str = "dev-keys.toml";
const DEV_RECEIPT_KEY_FILE: &str = "receipt-key.pem";

/// What the development setup may do with the files in `./data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevFiles {
    /// `serve`: make the keys on first start and keep them.
    Create,
    /// `check-config`: read the keys that are there; make up the others in memory and
    /// write nothing.
    ReadOnly,
}

impl Config {
    /// Loads the configuration for `optin serve`. With no configuration at all it makes a
    /// development setup: keys generated once into `./data`, and the example types.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(explicit, DevFiles::Create)
    }

    /// As [`Self::load`], writing nothing: for a check of the configuration.
    pub fn load_to_check(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(explicit, DevFiles::ReadOnly)
    }

    fn load_with(explicit: Option<&Path>, files: DevFiles) -> Result<Self, ConfigError> {
        let (mut settings, file) = Settings::load(explicit)?;
        let security_env = std::env::vars_os().any(|(name, _)| {
            name.to_string_lossy()
                .to_ascii_uppercase()
                .starts_with("OPTIN_SECURITY__")
        });
        if !development_setup_allowed(&settings, file.is_some(), security_env) {
            return Self::build(settings, false);
        }
        super::validate::check_bind(&settings.server.bind)?;
        if settings.server.public_url.is_none() {
            settings.server.public_url = Some(public_url_following(&settings.server.bind));
        }
        let dev = DevKeys::load_or_create(Path::new(DEV_DIR), files)?;
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
        if settings.consent.receipt_keys.0.is_empty() {
            if let Some(key) = dev_receipt_key(Path::new(DEV_DIR), files)? {
                settings.consent.receipt_keys = StringList(vec![key.display().to_string()]);
            }
        }
        if settings.consent.controller.is_none() {
            settings.consent.controller = Some(development_controller(&settings));
        }
        Self::build(settings, true)
    }
}

/// Where a developer reaches the service when nothing says otherwise: the address it
/// listens on, with a wildcard address reached over loopback.
fn public_url_following(bind: &str) -> String {
    let (host, port) = bind.rsplit_once(':').unwrap_or((bind, "80"));
    let host = match host {
        "0.0.0.0" => "127.0.0.1",
        "[::]" => "[::1]",
        other => other,
    };
    format!("http://{host}:{port}")
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

/// The receipt key of the development setup: generated on first start, then reused.
/// `None` when it is not there yet and may not be written.
fn dev_receipt_key(dir: &Path, files: DevFiles) -> Result<Option<PathBuf>, ConfigError> {
    let path = dir.join(DEV_RECEIPT_KEY_FILE);
    if path.exists() {
        return Ok(Some(path));
    }
    if files == DevFiles::ReadOnly {
        return Ok(None);
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| ConfigError::Read(format!("{}: {e}", dir.display())))?;
    crate::receipts::generate_key_file(&path).map_err(|e| ConfigError::Read(e.to_string()))?;
    Ok(Some(path))
}

/// Receipts name a controller; a developer's is the service itself, reached at its
/// sender address and public URL.
fn development_controller(settings: &Settings) -> ControllerSettings {
    let email = settings
        .mail
        .from
        .parse::<lettre::message::Mailbox>()
        .map(|mailbox| mailbox.email.to_string())
        .unwrap_or_default();
    ControllerSettings {
        name: format!("{} (development setup)", settings.mail.service_name),
        email,
        url: settings.server.public_url.clone().unwrap_or_default(),
    }
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
    fn load_or_create(dir: &Path, files: DevFiles) -> Result<Self, ConfigError> {
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
        if files == DevFiles::ReadOnly {
            return Ok(keys);
        }
        let text = format!(
            "# Development keys generated by `optin serve` with no configuration. Not for production.\n\
             signing_key = \"{}\"\nindex_key = \"{}\"\nadmin_key = \"{}\"\nsend_key = \"{}\"\nadmin_entry = \"{}\"\nsend_entry = \"{}\"\n",
            keys.signing_key, keys.index_key, keys.admin_key, keys.send_key, keys.admin_entry, keys.send_entry
        );
        crate::private_files::create_folder(dir)
            .map_err(|e| ConfigError::Read(format!("{}: {e}", dir.display())))?;
        crate::private_files::write_new(&path, text.as_bytes())
            .map_err(|e| ConfigError::Read(format!("{}: {e}", path.display())))?;
        Ok(keys)
    }

    pub fn path() -> PathBuf {
        Path::new(DEV_DIR).join(DEV_KEYS_FILE)
    }

    /// Whether the development setup has made its keys yet.
    pub fn exist() -> bool {
        Self::path().exists()
    }
}

#[cfg(test)]
mod tests {
    use super::public_url_following;

    #[test]
    fn the_development_public_url_follows_bind() {
        for (bind, url) in [
            ("127.0.0.1:9090", "http://127.0.0.1:9090"),
            ("0.0.0.0:8080", "http://127.0.0.1:8080"),
            ("[::]:8080", "http://[::1]:8080"),
            ("[::1]:7000", "http://[::1]:7000"),
            ("localhost:3000", "http://localhost:3000"),
        ] {
            assert_eq!(public_url_following(bind), url, "{bind}");
        }
    }
}
