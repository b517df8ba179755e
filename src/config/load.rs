//! Reading the settings: the file (`optin.toml` or `--config PATH`), then `OPTIN_*`
//! environment variables over it.

use std::path::{Path, PathBuf};

use super::names::read_error;
use super::{ConfigError, Settings, DEFAULT_CONFIG_FILE};

impl Settings {
    /// Reads the file (when it exists; `explicit` files must exist) and the environment.
    pub fn load(explicit: Option<&Path>) -> Result<(Self, Option<PathBuf>), ConfigError> {
        let path = explicit.map_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE), Path::to_path_buf);
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
            .map_err(|e| read_error(e, file_used.as_deref()))?;
        let settings = built
            .try_deserialize()
            .map_err(|e| read_error(e, file_used.as_deref()))?;
        Ok((settings, file_used))
    }
}

/// Parses TOML text with the same library and errors as the configuration file.
pub(super) fn toml_from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| read_error(e, None))
}
