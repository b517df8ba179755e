//! Checking the settings and turning them into ready parts ([`Config`]): every mistake
//! is reported naming the setting.

use std::net::{IpAddr, SocketAddr};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ipnet::IpNet;
use secrecy::ExposeSecret;

use super::{
    invalid, Config, ConfigError, ListSetting, SecuritySettings, ServerSettings, Settings,
};
use crate::auth::{ApiKey, ApiKeys};
use crate::domain::{Catalog, ContactIndex};
use crate::firewall::{Firewall, FirewallSettings};
use crate::tokens::{SigningKey, TokenSigner};

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

impl Settings {
    /// Settings where 0 makes no sense (a link dead on arrival, a job never tried, …),
    /// by name. A new lifetime, limit or count setting belongs here.
    fn at_least_one(&self) -> [(&'static str, u64); 12] {
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
            ("admin.session_minutes", self.admin.session_minutes.into()),
            (
                "signup.challenge_ttl_seconds",
                self.signup.challenge_ttl_seconds.into(),
            ),
            (
                "signup.proof_of_work_max_number",
                self.signup.proof_of_work_max_number,
            ),
            (
                "signup.max_unconfirmed_per_ip",
                self.signup.max_unconfirmed_per_ip.into(),
            ),
        ]
    }

    /// Upper bounds past which a setting makes no sense: a challenge that outlives a
    /// day, work no browser finishes, a form nobody fills in an hour.
    fn at_most(&self) -> [(&'static str, u64, u64); 4] {
        [
            (
                "signup.challenge_ttl_seconds",
                self.signup.challenge_ttl_seconds.into(),
                86_400,
            ),
            (
                "signup.proof_of_work_max_number",
                self.signup.proof_of_work_max_number,
                10_000_000,
            ),
            (
                "signup.min_fill_seconds",
                self.signup.min_fill_seconds.into(),
                3_600,
            ),
            (
                "signup.max_unconfirmed_per_ip",
                self.signup.max_unconfirmed_per_ip.into(),
                1_000_000_000,
            ),
        ]
    }

    /// The checks of single values, which need nothing built first.
    fn check_values(&self) -> Result<(), ConfigError> {
        if !["en", "nl"].contains(&self.signup.default_locale.as_str()) {
            return Err(invalid(
                "signup.default_locale",
                "must be one of the shipped locales: en, nl",
            ));
        }
        for (setting, value) in self.at_least_one() {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1"));
            }
        }
        for (setting, value, most) in self.at_most() {
            if value > most {
                return Err(invalid(setting, format!("must be at most {most}")));
            }
        }
        for (setting, value) in [
            ("server.thank_you_url", &self.server.thank_you_url),
            ("server.signup_page_url", &self.server.signup_page_url),
        ] {
            if let Some(url) = value {
                let parsed = url::Url::parse(url).map_err(|e| invalid(setting, e))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid(setting, "must be an http(s) URL"));
                }
            }
        }
        if !(1..=64).contains(&self.mail.workers) {
            return Err(invalid("mail.workers", "must be between 1 and 64"));
        }
        Ok(())
    }
}

impl Config {
    pub fn from_settings(settings: Settings) -> Result<Self, ConfigError> {
        Self::build(settings, false)
    }

    pub(super) fn build(settings: Settings, development_setup: bool) -> Result<Self, ConfigError> {
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
        settings.check_values()?;
        let trusted_proxies = trusted_proxies(&settings.server)?;
        check_origins(
            "server.cors_allowed_origins",
            &settings.server.cors_allowed_origins.0,
        )?;
        check_origins(
            "server.embed_allowed_origins",
            &settings.server.embed_allowed_origins.0,
        )?;
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
        let feedback = settings
            .feedback
            .check()
            .map_err(|e| invalid(e.setting, e.reason))?;
        let known_types: Vec<&str> = catalog.all().iter().map(|t| t.id.as_str()).collect();
        let webhook_endpoints = settings
            .webhooks
            .endpoints(&known_types)
            .map_err(ConfigError::Webhooks)?;
        let firewall = firewall(&settings, &signer, development_setup)?;
        Ok(Self {
            firewall,
            feedback,
            webhook_endpoints: std::sync::Arc::new(webhook_endpoints),
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
}

/// The signup firewall from `[signup]`. The MX check is on by default in a production
/// setup and off in the development setup, which may run without any network.
fn firewall(
    settings: &Settings,
    signer: &TokenSigner,
    development_setup: bool,
) -> Result<std::sync::Arc<Firewall>, ConfigError> {
    let signup = &settings.signup;
    let dns_servers = signup
        .dns_servers
        .0
        .iter()
        .map(|entry| {
            parse_dns_server(entry).ok_or_else(|| {
                invalid(
                    "signup.dns_servers",
                    format!("'{entry}' is not an address or address:port"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let firewall_settings = FirewallSettings {
        proof_of_work: signup.proof_of_work,
        challenge_ttl: chrono::Duration::seconds(signup.challenge_ttl_seconds.into()),
        proof_of_work_max_number: signup.proof_of_work_max_number,
        check_mx: signup.check_mx.unwrap_or(!development_setup),
        dns_servers,
        disposable_domains: signup.disposable_domains,
        blocked_domains: signup.blocked_domains.0.clone(),
        allowed_domains: signup.allowed_domains.0.clone(),
    };
    let firewall = Firewall::new(&firewall_settings, &signer.derived_keys(ALTCHA_KEY_PURPOSE))
        .map_err(|e| ConfigError::Firewall(e.to_string()))?;
    Ok(std::sync::Arc::new(firewall))
}

/// What the ALTCHA challenges' HMAC key is derived for (see `TokenSigner::derived_keys`).
const ALTCHA_KEY_PURPOSE: &str = "altcha";

/// A resolver as `1.2.3.4:53`, `[::1]:5353`, or an address alone (port 53).
fn parse_dns_server(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .ok()
}

/// `server.trusted_proxies` as ranges.
fn trusted_proxies(server: &ServerSettings) -> Result<Vec<IpNet>, ConfigError> {
    server
        .trusted_proxies
        .0
        .iter()
        .map(|entry| {
            parse_ip_range(entry).ok_or_else(|| {
                invalid(
                    "server.trusted_proxies",
                    format!("'{entry}' is not an address or range"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
}

/// Each origin (CORS, or a site that may frame the signup form) must be a bare http(s)
/// origin, as browsers send and compare it.
fn check_origins(setting: &'static str, origins: &[String]) -> Result<(), ConfigError> {
    for origin in origins {
        let parsed = url::Url::parse(origin)
            .map_err(|_| invalid(setting, format!("'{origin}' is not an origin")))?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.origin().ascii_serialization() != origin.trim_end_matches('/')
        {
            return Err(invalid(
                setting,
                format!("'{origin}' must be a bare origin like https://shop.example"),
            ));
        }
    }
    Ok(())
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

/// An address range such as `10.0.0.0/8`, or a single address (`::1`) as its own range.
fn parse_ip_range(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StringList;

    #[test]
    fn trusted_proxies_are_ranges_or_single_addresses() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let range = parse_ip_range("10.1.0.0/16").unwrap();
        assert!(range.contains(&ip("10.1.200.3")));
        assert!(!range.contains(&ip("10.2.0.1")));
        assert!(parse_ip_range(" ::1 ").unwrap().contains(&ip("::1")));
        assert!(!parse_ip_range("::1").unwrap().contains(&ip("::2")));
        assert!(parse_ip_range("10.0.0.0/33").is_none());
        assert!(parse_ip_range("nonsense").is_none());
    }

    fn keyed_settings() -> Settings {
        let mut settings = Settings::default();
        settings.security.signing_keys = ListSetting(vec![secrecy::SecretString::from(format!(
            "k1:{}",
            STANDARD.encode([1u8; 32])
        ))]);
        settings.security.index_key = Some(STANDARD.encode([2u8; 32]).into());
        settings.subscription_types = Settings::example_subscription_types();
        settings
    }

    #[test]
    fn the_mx_check_is_on_in_production_and_off_in_development_unless_set() {
        let checks_mx = |settings: Settings, development: bool| {
            Config::build(settings, development)
                .unwrap()
                .firewall
                .checks_mx()
        };
        assert!(checks_mx(keyed_settings(), false));
        assert!(!checks_mx(keyed_settings(), true));
        let mut off = keyed_settings();
        off.signup.check_mx = Some(false);
        assert!(!checks_mx(off, false));
        let mut on = keyed_settings();
        on.signup.check_mx = Some(true);
        assert!(checks_mx(on, true));
    }

    #[test]
    fn firewall_settings_out_of_bounds_are_refused_naming_the_setting() {
        let refused = |change: fn(&mut Settings)| {
            let mut settings = keyed_settings();
            change(&mut settings);
            match Config::build(settings, false) {
                Ok(_) => panic!("accepted"),
                Err(error) => error.to_string(),
            }
        };
        let message = refused(|s| s.signup.challenge_ttl_seconds = 0);
        assert!(message.contains("`signup.challenge_ttl_seconds`: must be at least 1"));
        let message = refused(|s| s.signup.challenge_ttl_seconds = 86_401);
        assert!(message.contains("`signup.challenge_ttl_seconds`: must be at most 86400"));
        let message = refused(|s| s.signup.proof_of_work_max_number = 10_000_001);
        assert!(message.contains("`signup.proof_of_work_max_number`: must be at most"));
        let message = refused(|s| s.signup.min_fill_seconds = 3_601);
        assert!(message.contains("`signup.min_fill_seconds`"));
        let message = refused(|s| s.signup.max_unconfirmed_per_ip = 0);
        assert!(message.contains("`signup.max_unconfirmed_per_ip`"));
        let message = refused(|s| s.signup.dns_servers = StringList(vec!["resolver".into()]));
        assert!(message.contains("`signup.dns_servers`: 'resolver'"));
        let message = refused(|s| s.signup.blocked_domains = StringList(vec!["a b".into()]));
        assert!(message.contains("signup.blocked_domains"), "{message}");
        assert!(message.contains("'a b' is not a domain"), "{message}");
    }

    #[test]
    fn dns_servers_are_addresses_with_or_without_a_port() {
        let server = |text: &str| parse_dns_server(text).map(|s| s.to_string());
        assert_eq!(server("9.9.9.9").as_deref(), Some("9.9.9.9:53"));
        assert_eq!(
            server(" 127.0.0.1:5353 ").as_deref(),
            Some("127.0.0.1:5353")
        );
        assert_eq!(server("[::1]:5353").as_deref(), Some("[::1]:5353"));
        assert_eq!(server("::1").as_deref(), Some("[::1]:53"));
        assert_eq!(server("dns.example:53"), None);
        assert_eq!(server("1.2.3.4:99999"), None);
    }
}
