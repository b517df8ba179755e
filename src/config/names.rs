//! How errors name a setting: as written in the file (`server.bind`) and as the
//! environment variable that sets it (`OPTIN_SERVER__BIND`), so that an operator finds
//! it wherever they configured it.

use std::path::Path;

use super::{invalid, ConfigError};

const PREFIX: &str = "OPTIN_";
const SEPARATOR: &str = "__";

/// Settings that are lists of tables: they can be written in the file only.
const FILE_ONLY: [&str; 2] = ["subscription_types", "webhooks.endpoints"];

/// The environment variable that sets `setting` (`server.bind` → `OPTIN_SERVER__BIND`);
/// `None` for what only the file can hold (`webhooks.endpoints[crm].url`).
pub fn environment_variable(setting: &str) -> Option<String> {
    let file_only = setting.is_empty()
        || setting.contains('[')
        || FILE_ONLY
            .iter()
            .any(|table| setting == *table || setting.starts_with(&format!("{table}.")));
    if file_only {
        return None;
    }
    let parts: Vec<String> = setting.split('.').map(str::to_ascii_uppercase).collect();
    Some(format!("{PREFIX}{}", parts.join(SEPARATOR)))
}

/// ` (OPTIN_SERVER__BIND)` after a setting's name, or nothing for a file-only one.
pub(super) fn variable_note(setting: &str) -> String {
    environment_variable(setting).map_or_else(String::new, |name| format!(" ({name})"))
}

/// Settings as a list: `` `server.public_url` (OPTIN_SERVER__PUBLIC_URL), … ``.
pub(super) fn listed(settings: &[&str]) -> String {
    settings
        .iter()
        .map(|setting| format!("`{setting}`{}", variable_note(setting)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What follows an unknown setting: the names its section does know.
pub(super) fn known_note(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!("; known here: {}", known.join(", "))
    }
}

/// The variable in this process's environment that sets `setting`, as it is spelled
/// there (the configuration reads names in any case).
fn variable_in_environment(setting: &str) -> Option<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .find(|name| setting_of_variable(name).as_deref() == Some(setting))
}

/// `OPTIN_SERVER__BIND` → `server.bind`, as the configuration reads variables.
fn setting_of_variable(name: &str) -> Option<String> {
    let rest = name
        .get(..PREFIX.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(PREFIX))
        .and_then(|_| name.get(PREFIX.len()..))?;
    Some(
        rest.to_ascii_lowercase()
            .split(SEPARATOR)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// An error of the configuration library, restated in our terms: an unknown setting
/// named with where it was written, a value of the wrong type named with its setting.
pub(super) fn read_error(error: config::ConfigError, file: Option<&Path>) -> ConfigError {
    match error {
        config::ConfigError::Type {
            unexpected,
            expected,
            key: Some(key),
            ..
        } => invalid(&key, format!("expected {expected}, found {unexpected}")),
        config::ConfigError::At {
            error,
            key: Some(key),
            ..
        } => match *error {
            config::ConfigError::Message(message) => from_message(&key, &message, file),
            other => ConfigError::Read(format!("{key}: {other}")),
        },
        config::ConfigError::Message(message) => from_message("", &message, file),
        other => ConfigError::Read(other.to_string()),
    }
}

/// A message serde gave for the table or value at `key` (`""`: the top level).
fn from_message(key: &str, message: &str, file: Option<&Path>) -> ConfigError {
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'));
    if let Some((name, expected)) = unknown {
        let setting = if key.is_empty() {
            name.to_string()
        } else {
            format!("{key}.{name}")
        };
        let origin = match (variable_in_environment(&setting), file) {
            (Some(variable), _) => format!("from {variable}"),
            (None, Some(file)) => format!("in {}", file.display()),
            (None, None) => "in the configuration".to_string(),
        };
        return ConfigError::Unknown {
            known: expected_names(expected),
            setting,
            origin,
        };
    }
    if key.is_empty() {
        return ConfigError::Read(message.to_string());
    }
    // Some values name their setting themselves; it is named once.
    let reason = message
        .strip_prefix(&format!("setting `{key}`: "))
        .unwrap_or(message);
    invalid(key, reason)
}

/// serde's list after an unknown field: ``, expected one of `a`, `b`, `c` ``,
/// ``, expected `a` or `b` ``, or `, there are no fields`.
fn expected_names(text: &str) -> Vec<String> {
    let Some(list) = text
        .strip_prefix(", expected one of ")
        .or_else(|| text.strip_prefix(", expected "))
    else {
        return Vec::new();
    };
    list.split(", ")
        .flat_map(|part| part.split(" or "))
        .map(|name| name.trim().trim_matches('`').to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_named_by_their_variables_except_lists_of_tables() {
        assert_eq!(
            environment_variable("server.bind").as_deref(),
            Some("OPTIN_SERVER__BIND")
        );
        assert_eq!(
            environment_variable("mail.dkim.private_key_file").as_deref(),
            Some("OPTIN_MAIL__DKIM__PRIVATE_KEY_FILE")
        );
        assert_eq!(environment_variable("webhooks.endpoints[crm].url"), None);
        assert_eq!(environment_variable("subscription_types"), None);
        assert_eq!(
            environment_variable("webhooks.max_attempts").as_deref(),
            Some("OPTIN_WEBHOOKS__MAX_ATTEMPTS")
        );
        assert_eq!(
            setting_of_variable("OPTIN_SERVER__PUBLIC_URL").as_deref(),
            Some("server.public_url")
        );
        assert_eq!(setting_of_variable("OTHER_SERVER__BIND"), None);
    }

    #[test]
    fn serdes_lists_of_expected_names_are_read_in_each_form() {
        assert_eq!(
            expected_names(", expected one of `bind`, `public_url`, `pages_dir`"),
            ["bind", "public_url", "pages_dir"]
        );
        assert_eq!(expected_names(", expected `a` or `b`"), ["a", "b"]);
        assert!(expected_names(", there are no fields").is_empty());
    }

    #[test]
    fn an_unknown_setting_in_the_file_is_named_with_the_file() {
        let error = super::super::load::toml_from_str::<super::super::Settings>(
            "[server]\nbindd = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("unknown setting `server.bindd` (in the configuration); known here: bind, public_url"),
            "{error}"
        );
        let error = super::super::load::toml_from_str::<super::super::Settings>(
            "[server]\nbody_limit_bytes = \"big\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "setting `server.body_limit_bytes` (OPTIN_SERVER__BODY_LIMIT_BYTES): expected an integer, found string \"big\""
        );
        let error = super::super::load::toml_from_str::<super::super::Settings>(
            "[log]\nformat = \"xml\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "setting `log.format` (OPTIN_LOG__FORMAT): must be json or text"
        );
    }
}
