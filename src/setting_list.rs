//! Lists in settings, written either as a TOML array or as one comma-separated string
//! (the form an environment variable takes). A leaf, so that every section's settings,
//! whichever module owns them, read lists alike.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

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
