//! API keys for senders and admins. Only SHA-256 hashes of keys are ever configured or kept.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// May ask for eligibility.
    Send,
    /// May do everything, including what `send` may.
    Admin,
    /// May post bounces and complaints (`/v1/feedback/...`), and nothing else.
    Feedback,
    /// May read `GET /metrics`, and nothing else: for a Prometheus scraper.
    Metrics,
    /// May download a dump of the whole store (`GET /v1/backup`), and nothing else.
    /// Not granted by `admin`: a dump holds every address at once, so it takes a key
    /// made for that alone, kept by whoever runs the backups.
    Backup,
    /// May post signups without a proof of work: server-to-server integrations, whose
    /// own forms keep bots out.
    Signup,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Send => "send",
            Scope::Admin => "admin",
            Scope::Feedback => "feedback",
            Scope::Metrics => "metrics",
            Scope::Backup => "backup",
            Scope::Signup => "signup",
        }
    }

    pub fn allows(self, needed: Scope) -> bool {
        self == needed || (self == Scope::Admin && needed != Scope::Backup)
    }
}

#[derive(Clone)]
pub struct ApiKey {
    pub name: String,
    pub scope: Scope,
    hash: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApiKeyConfigError {
    #[error("an API key entry must look like name:scope:sha256hex")]
    Shape,
    #[error("API key '{0}': the scope must be 'send', 'admin', 'feedback', 'metrics', 'backup' or 'signup'")]
    Scope(String),
    #[error("API key '{0}': the hash must be 64 hexadecimal characters (the SHA-256 of the key)")]
    Hash(String),
}

impl ApiKey {
    /// Parses one `name:scope:sha256hex` entry.
    pub fn parse(entry: &str) -> Result<Self, ApiKeyConfigError> {
        let mut parts = entry.trim().splitn(3, ':');
        let (Some(name), Some(scope), Some(hash)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ApiKeyConfigError::Shape);
        };
        if name.is_empty() {
            return Err(ApiKeyConfigError::Shape);
        }
        let scope = match scope {
            "send" => Scope::Send,
            "admin" => Scope::Admin,
            "feedback" => Scope::Feedback,
            "metrics" => Scope::Metrics,
            "backup" => Scope::Backup,
            "signup" => Scope::Signup,
            _ => return Err(ApiKeyConfigError::Scope(name.to_string())),
        };
        let bytes = hex::decode(hash).map_err(|_| ApiKeyConfigError::Hash(name.to_string()))?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ApiKeyConfigError::Hash(name.to_string()))?;
        Ok(Self {
            name: name.to_string(),
            scope,
            hash,
        })
    }
}

/// A freshly generated key: the secret to hand out once, and the line to configure.
pub struct NewApiKey {
    pub key: String,
    pub config_entry: String,
}

pub fn generate_key(name: &str, scope: Scope) -> anyhow::Result<NewApiKey> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    let key = format!("optin_{}", URL_SAFE_NO_PAD.encode(bytes));
    let config_entry = format!(
        "{name}:{}:{}",
        scope.as_str(),
        hex::encode(Sha256::digest(key.as_bytes()))
    );
    Ok(NewApiKey { key, config_entry })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("an API key is required")]
    Missing,
    #[error("the API key is not valid")]
    Invalid,
    #[error("the API key does not have the '{}' scope", .0.as_str())]
    Forbidden(Scope),
}

#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    keys: Vec<ApiKey>,
}

impl ApiKeys {
    pub fn new(keys: Vec<ApiKey>) -> Self {
        Self { keys }
    }

    /// Checks an `Authorization: Bearer` header value.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        needed: Scope,
    ) -> Result<&ApiKey, AuthError> {
        self.check(authorization.and_then(bearer_key), needed)
    }

    /// Checks the key of a feedback webhook: as Bearer, or as the password of HTTP Basic
    /// auth with any user name, because providers take credentials inside the webhook
    /// URL (`https://feedback:KEY@host/...`).
    pub fn authenticate_feedback(&self, authorization: Option<&str>) -> Result<&ApiKey, AuthError> {
        self.authenticate_bearer_or_basic(authorization, Scope::Feedback)
    }

    /// Checks a key given as Bearer or as the HTTP Basic password (any user name): the
    /// feedback inputs, and Mailchimp's clients, which send the key that way.
    pub fn authenticate_bearer_or_basic(
        &self,
        authorization: Option<&str>,
        needed: Scope,
    ) -> Result<&ApiKey, AuthError> {
        let presented =
            authorization.and_then(|value| bearer_key(value).or_else(|| basic_password(value)));
        self.check(presented, needed)
    }

    /// Checks a key typed into the console's sign-in form.
    pub fn authenticate_plain(&self, key: &str, needed: Scope) -> Result<&ApiKey, AuthError> {
        let key = key.trim();
        self.check((!key.is_empty()).then(|| key.to_string()), needed)
    }

    /// The configured key of this name, if it still has `needed`: a console session
    /// ends when its key is removed from the configuration or loses its scope.
    pub fn named(&self, name: &str, needed: Scope) -> Option<&ApiKey> {
        self.keys
            .iter()
            .find(|key| key.name == name && key.scope.allows(needed))
    }

    /// Every configured key is compared, in constant time, so timing tells nothing about
    /// which key was close.
    fn check(&self, presented: Option<String>, needed: Scope) -> Result<&ApiKey, AuthError> {
        let presented = presented.ok_or(AuthError::Missing)?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.hash.ct_eq(&digest)) {
                found = Some(key);
            }
        }
        let key = found.ok_or(AuthError::Invalid)?;
        if key.scope.allows(needed) {
            Ok(key)
        } else {
            Err(AuthError::Forbidden(needed))
        }
    }
}

/// The key of `Bearer <key>`.
fn bearer_key(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let key = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then(|| key.to_string())
}

/// The password of `Basic base64(user:password)`; the user name is ignored.
fn basic_password(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    (!password.is_empty()).then(|| password.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_authenticates_with_its_scope() {
        let new = generate_key("newsletter", Scope::Send).unwrap();
        let keys = ApiKeys::new(vec![ApiKey::parse(&new.config_entry).unwrap()]);
        let header = format!("Bearer {}", new.key);
        assert_eq!(
            keys.authenticate(Some(&header), Scope::Send).unwrap().name,
            "newsletter"
        );
        assert_eq!(
            keys.authenticate(Some(&header), Scope::Admin).unwrap_err(),
            AuthError::Forbidden(Scope::Admin)
        );
        assert_eq!(
            keys.authenticate(Some("Bearer nope"), Scope::Send)
                .unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            keys.authenticate(None, Scope::Send).unwrap_err(),
            AuthError::Missing
        );
        assert!(!new.config_entry.contains(&new.key));
    }

    #[test]
    fn admin_keys_may_do_what_send_keys_may() {
        let new = generate_key("ops", Scope::Admin).unwrap();
        let keys = ApiKeys::new(vec![ApiKey::parse(&new.config_entry).unwrap()]);
        assert!(keys
            .authenticate(Some(&format!("Bearer {}", new.key)), Scope::Send)
            .is_ok());
    }

    #[test]
    fn signup_keys_may_sign_up_and_nothing_else() {
        let new = generate_key("crm", Scope::Signup).unwrap();
        assert!(new.config_entry.starts_with("crm:signup:"));
        let keys = ApiKeys::new(vec![ApiKey::parse(&new.config_entry).unwrap()]);
        let header = format!("Bearer {}", new.key);
        assert!(keys.authenticate(Some(&header), Scope::Signup).is_ok());
        for other in [Scope::Send, Scope::Admin, Scope::Feedback] {
            assert_eq!(
                keys.authenticate(Some(&header), other).unwrap_err(),
                AuthError::Forbidden(other)
            );
        }
    }

    #[test]
    fn feedback_keys_come_as_bearer_or_as_the_basic_password() {
        let new = generate_key("ses", Scope::Feedback).unwrap();
        let keys = ApiKeys::new(vec![ApiKey::parse(&new.config_entry).unwrap()]);
        let basic = |user: &str, password: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        };
        let bearer = format!("Bearer {}", new.key);
        assert!(keys.authenticate_feedback(Some(&bearer)).is_ok());
        assert!(keys
            .authenticate_feedback(Some(&basic("feedback", &new.key)))
            .is_ok());
        assert!(keys
            .authenticate_feedback(Some(&basic("", &new.key)))
            .is_ok());
        assert_eq!(
            keys.authenticate_feedback(Some(&basic("feedback", "wrong")))
                .unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            keys.authenticate_feedback(Some(&basic(&new.key, "")))
                .unwrap_err(),
            AuthError::Missing,
            "the key as user name is not a password"
        );
        // Basic is only for feedback; the key's scope is only feedback.
        assert_eq!(
            keys.authenticate(Some(&basic("x", &new.key)), Scope::Feedback)
                .unwrap_err(),
            AuthError::Missing
        );
        assert_eq!(
            keys.authenticate(Some(&bearer), Scope::Send).unwrap_err(),
            AuthError::Forbidden(Scope::Send)
        );
    }

    #[test]
    fn metrics_keys_read_metrics_and_nothing_else() {
        let new = generate_key("prometheus", Scope::Metrics).unwrap();
        assert!(new.config_entry.starts_with("prometheus:metrics:"));
        let keys = ApiKeys::new(vec![ApiKey::parse(&new.config_entry).unwrap()]);
        let bearer = format!("Bearer {}", new.key);
        assert!(keys.authenticate(Some(&bearer), Scope::Metrics).is_ok());
        for other in [Scope::Send, Scope::Admin, Scope::Feedback] {
            assert_eq!(
                keys.authenticate(Some(&bearer), other).unwrap_err(),
                AuthError::Forbidden(other)
            );
        }
        let admin = generate_key("ops", Scope::Admin).unwrap();
        let keys = ApiKeys::new(vec![ApiKey::parse(&admin.config_entry).unwrap()]);
        assert!(keys
            .authenticate(Some(&format!("Bearer {}", admin.key)), Scope::Metrics)
            .is_ok());
    }

    #[test]
    fn only_a_backup_key_may_take_a_backup_and_it_may_do_nothing_else() {
        let backup = generate_key("nightly", Scope::Backup).unwrap();
        let admin = generate_key("ops", Scope::Admin).unwrap();
        let keys = ApiKeys::new(vec![
            ApiKey::parse(&backup.config_entry).unwrap(),
            ApiKey::parse(&admin.config_entry).unwrap(),
        ]);
        let bearer = |key: &str| format!("Bearer {key}");
        assert_eq!(
            keys.authenticate(Some(&bearer(&backup.key)), Scope::Backup)
                .unwrap()
                .name,
            "nightly"
        );
        assert_eq!(
            keys.authenticate(Some(&bearer(&admin.key)), Scope::Backup)
                .unwrap_err(),
            AuthError::Forbidden(Scope::Backup)
        );
        for other in [Scope::Admin, Scope::Send, Scope::Feedback] {
            assert_eq!(
                keys.authenticate(Some(&bearer(&backup.key)), other)
                    .unwrap_err(),
                AuthError::Forbidden(other)
            );
        }
    }

    #[test]
    fn malformed_entries_are_refused_with_a_reason() {
        assert_eq!(ApiKey::parse("x").unwrap_err(), ApiKeyConfigError::Shape);
        assert_eq!(
            ApiKey::parse("x:root:00").unwrap_err(),
            ApiKeyConfigError::Scope("x".into())
        );
        assert_eq!(
            ApiKey::parse("x:send:zz").unwrap_err(),
            ApiKeyConfigError::Hash("x".into())
        );
    }
}
