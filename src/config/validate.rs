//! Checking the settings and turning them into ready parts ([`Config`]): every mistake
//! is reported naming the setting.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ipnet::IpNet;
use secrecy::ExposeSecret;

use super::{invalid, Config, ConfigError, ListSetting, Settings};
use crate::auth::{ApiKey, ApiKeys};
use crate::domain::{Catalog, ContactIndex};
use crate::firewall::{Firewall, FirewallSettings};
use crate::receipts::{Controller, ReceiptIssuer, ReceiptKeys};
use crate::tokens::{SigningKey, TokenSigner};

impl Settings {
    /// What a production setup must configure and has not: the address links start with
    /// and the keys. (The development setup fills them in before this is asked.)
    fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.server.public_url.is_none() {
            missing.push("server.public_url");
        }
        if self.security.signing_keys.0.is_empty() {
            missing.push("security.signing_keys");
        }
        if self.security.index_key.is_none() {
            missing.push("security.index_key");
        }
        missing
    }
}

/// `server.bind`: an address and port to listen on, such as `127.0.0.1:8080`,
/// `[::]:8080` or `localhost:8080` (a name is resolved when the service binds).
pub(super) fn check_bind(bind: &str) -> Result<(), ConfigError> {
    if bind.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let well_formed = bind.rsplit_once(':').is_some_and(|(host, port)| {
        port.parse::<u16>().is_ok()
            && !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    });
    if well_formed {
        Ok(())
    } else {
        Err(invalid(
            "server.bind",
            format!("'{bind}' is not an address and port, such as 127.0.0.1:8080 or 0.0.0.0:8080"),
        ))
    }
}

/// The longest lifetime, window or delay any setting may give: 100 years. Longer values
/// are typing mistakes, and would overflow date arithmetic.
const MAX_DAYS: u64 = 36_525;
const MAX_MINUTES: u64 = MAX_DAYS * 24 * 60;
const MAX_SECS: u64 = MAX_MINUTES * 60;
/// The largest count (attempts, limits, bytes) any setting may give.
const MAX_COUNT: u64 = 1_000_000_000;

/// The range one numeric setting must fall in, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bounded {
    setting: &'static str,
    value: u64,
    least: u64,
    most: u64,
}

impl Bounded {
    fn new(setting: &'static str, value: impl TryInto<u64>, most: u64) -> Self {
        Self {
            setting,
            value: value.try_into().unwrap_or(u64::MAX),
            least: 0,
            most,
        }
    }

    /// For settings where 0 makes no sense (a link dead on arrival, a job never tried, …).
    fn at_least_one(self) -> Self {
        Self { least: 1, ..self }
    }

    /// For settings with a tighter limit of their own.
    fn at_most(self, most: u64) -> Self {
        Self { most, ..self }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let Self {
            setting,
            value,
            least,
            most,
        } = *self;
        if value < least {
            return Err(invalid(setting, format!("must be at least {least}")));
        }
        if value > most {
            let unit = match most {
                MAX_DAYS => " days (100 years)",
                MAX_MINUTES => " minutes (100 years)",
                MAX_SECS => " seconds (100 years)",
                _ => "",
            };
            return Err(invalid(setting, format!("must be at most {most}{unit}")));
        }
        Ok(())
    }
}

fn days(setting: &'static str, value: impl TryInto<u64>) -> Bounded {
    Bounded::new(setting, value, MAX_DAYS)
}

fn minutes(setting: &'static str, value: impl TryInto<u64>) -> Bounded {
    Bounded::new(setting, value, MAX_MINUTES)
}

fn secs(setting: &'static str, value: impl TryInto<u64>) -> Bounded {
    Bounded::new(setting, value, MAX_SECS)
}

fn count(setting: &'static str, value: impl TryInto<u64>) -> Bounded {
    Bounded::new(setting, value, MAX_COUNT)
}

impl Settings {
    /// Every duration and count setting with its range: a new one is one line here.
    fn bounded(&self) -> Vec<Bounded> {
        use crate::feedback::settings::{MAX_SOFT_BOUNCE_DAYS, MAX_SOFT_BOUNCE_LIMIT};
        let (server, mail, signup, links) = (&self.server, &self.mail, &self.signup, &self.links);
        let (privacy, webhooks, feedback) = (&self.privacy, &self.webhooks, &self.feedback);
        let mut bounded = vec![
            count("server.body_limit_bytes", server.body_limit_bytes),
            secs("server.request_timeout_secs", server.request_timeout_secs).at_least_one(),
            count("mail.max_attempts", mail.max_attempts).at_least_one(),
            secs("mail.retry_base_secs", mail.retry_base_secs),
            count("mail.workers", mail.workers)
                .at_least_one()
                .at_most(64),
            secs("mail.lease_secs", mail.lease_secs).at_least_one(),
            days("signup.confirmation_ttl_days", signup.confirmation_ttl_days).at_least_one(),
            count(
                "signup.max_confirmation_mails_per_day",
                signup.max_confirmation_mails_per_day,
            ),
            minutes(
                "signup.reminder_after_minutes",
                signup.reminder_after_minutes,
            ),
            count("signup.max_signups_per_ip", signup.max_signups_per_ip),
            secs("signup.ip_window_secs", signup.ip_window_secs),
            days("links.unsubscribe_ttl_days", links.unsubscribe_ttl_days).at_least_one(),
            days("links.preferences_ttl_days", links.preferences_ttl_days).at_least_one(),
            minutes("links.rights_max_age_minutes", links.rights_max_age_minutes).at_least_one(),
            count("links.max_posts_per_hour", links.max_posts_per_hour).at_least_one(),
            minutes("admin.session_minutes", self.admin.session_minutes).at_least_one(),
            secs("privacy.purge_interval_secs", privacy.purge_interval_secs),
            minutes(
                "privacy.erasure_purge_minutes",
                privacy.erasure_purge_minutes,
            )
            .at_least_one(),
            count("webhooks.max_attempts", webhooks.max_attempts).at_least_one(),
            secs("webhooks.retry_base_secs", webhooks.retry_base_secs).at_least_one(),
            secs("webhooks.timeout_secs", webhooks.timeout_secs).at_least_one(),
            count("feedback.soft_bounce_limit", feedback.soft_bounce_limit)
                .at_least_one()
                .at_most(MAX_SOFT_BOUNCE_LIMIT.into()),
            days("feedback.soft_bounce_days", feedback.soft_bounce_days)
                .at_least_one()
                .at_most(MAX_SOFT_BOUNCE_DAYS.into()),
        ];
        bounded.extend([
            secs("signup.challenge_ttl_seconds", signup.challenge_ttl_seconds)
                .at_least_one()
                .at_most(86_400),
            count(
                "signup.proof_of_work_max_number",
                signup.proof_of_work_max_number,
            )
            .at_least_one()
            .at_most(10_000_000),
            secs("signup.min_fill_seconds", signup.min_fill_seconds).at_most(3_600),
            count(
                "signup.max_unconfirmed_per_ip",
                signup.max_unconfirmed_per_ip,
            )
            .at_least_one(),
        ]);
        if let Some(retain) = privacy.retain_inactive_days {
            bounded.push(days("privacy.retain_inactive_days", retain).at_least_one());
        }
        bounded
    }

    /// The checks of single values, which need nothing built first.
    fn check_values(&self) -> Result<(), ConfigError> {
        if !["en", "nl"].contains(&self.signup.default_locale.as_str()) {
            return Err(invalid(
                "signup.default_locale",
                "must be one of the shipped locales: en, nl",
            ));
        }
        for bounded in self.bounded() {
            bounded.check()?;
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
        Ok(())
    }
}

impl Config {
    pub fn from_settings(settings: Settings) -> Result<Self, ConfigError> {
        Self::build(settings, false)
    }

    pub(super) fn build(settings: Settings, development_setup: bool) -> Result<Self, ConfigError> {
        let missing = settings.missing();
        if !missing.is_empty() {
            return Err(ConfigError::Missing(missing));
        }
        check_bind(&settings.server.bind)?;
        let public_url = settings
            .server
            .public_url
            .as_deref()
            .and_then(|url| url::Url::parse(url.trim_end_matches('/')).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| invalid("server.public_url", "must be an absolute http(s) URL"))?;
        let mail_from = settings
            .mail
            .from
            .parse()
            .map_err(|e| invalid("mail.from", e))?;
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
        let trusted_proxies =
            ip_ranges("server.trusted_proxies", &settings.server.trusted_proxies.0)?;
        let metrics_allowed_ips = ip_ranges(
            "server.metrics_allowed_ips",
            &settings.server.metrics_allowed_ips.0,
        )?;
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
        let feedback = settings
            .feedback
            .check()
            .map_err(|e| invalid(e.setting, e.reason))?;
        let (controller, receipts) = consent(&settings, &public_url)?;
        let backup_recipients = crate::backup::Recipients::parse(&settings.backup.age_recipients.0)
            .map_err(|e| invalid("backup.age_recipients", e))?;
        let known_types: Vec<&str> = catalog.all().iter().map(|t| t.id.as_str()).collect();
        let webhook_endpoints = settings
            .webhooks
            .endpoints(&known_types)
            .map_err(ConfigError::Webhooks)?;
        let firewall = firewall(&settings, &signer, development_setup)?;
        Ok(Self {
            firewall,
            feedback,
            controller,
            receipts,
            backup_recipients,
            webhook_endpoints: Arc::new(webhook_endpoints),
            public_url,
            mail_from,
            signer,
            index,
            api_keys: ApiKeys::new(api_keys),
            catalog,
            trusted_proxies,
            metrics_allowed_ips,
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
) -> Result<Arc<Firewall>, ConfigError> {
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
        min_fill: chrono::Duration::seconds(signup.min_fill_seconds.into()),
    };
    let firewall = Firewall::new(&firewall_settings, &signer.derived_keys(ALTCHA_KEY_PURPOSE))
        .map_err(|e| ConfigError::Firewall(e.to_string()))?;
    Ok(Arc::new(firewall))
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

/// Longest pause between consent sweeps: a consent may be kept this long past its end.
const MAX_SWEEP_MINUTES: u32 = 24 * 60;

type ConsentParts = (Option<Controller>, Option<Arc<ReceiptIssuer>>);

/// `[consent]`: the controller, and the receipt issuer when keys are configured. Every
/// receipt names the controller, so keys without one are refused.
fn consent(settings: &Settings, public_url: &url::Url) -> Result<ConsentParts, ConfigError> {
    let consent = &settings.consent;
    if !(1..=MAX_SWEEP_MINUTES).contains(&consent.sweep_minutes) {
        return Err(invalid(
            "consent.sweep_minutes",
            format!("must be between 1 and {MAX_SWEEP_MINUTES}"),
        ));
    }
    let controller = consent
        .controller
        .as_ref()
        .map(|c| Controller::new(&c.name, &c.email, &c.url))
        .transpose()
        .map_err(|e| {
            let setting = match e.field {
                "name" => "consent.controller.name",
                "email" => "consent.controller.email",
                _ => "consent.controller.url",
            };
            invalid(setting, e.reason)
        })?;
    let paths: Vec<std::path::PathBuf> = consent
        .receipt_keys
        .0
        .iter()
        .map(std::path::PathBuf::from)
        .collect();
    let Some(keys) = ReceiptKeys::load(&paths).map_err(|e| invalid("consent.receipt_keys", e))?
    else {
        return Ok((controller, None));
    };
    let Some(named) = controller.clone() else {
        return Err(invalid(
            "consent.controller",
            "must be set (name, email, url) when consent.receipt_keys is: every receipt names the controller",
        ));
    };
    let issuer = ReceiptIssuer::new(keys, named, public_url.clone());
    Ok((controller, Some(Arc::new(issuer))))
}

/// A list of addresses or ranges (`server.trusted_proxies`, `server.metrics_allowed_ips`).
fn ip_ranges(setting: &'static str, entries: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    entries
        .iter()
        .map(|entry| {
            parse_ip_range(entry)
                .ok_or_else(|| invalid(setting, format!("'{entry}' is not an address or range")))
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

    /// The settings with `section.key = value`, read as the configuration file is.
    fn with_setting(setting: &str, value: u64) -> Settings {
        let (section, key) = setting.split_once('.').unwrap();
        super::super::load::toml_from_str(&format!("[{section}]\n{key} = {value}\n"))
            .unwrap_or_else(|e| panic!("{setting} is not a setting: {e}"))
    }

    #[test]
    fn every_bounded_setting_is_refused_one_above_its_bound_and_taken_at_it() {
        let mut all = Settings::default();
        all.privacy.retain_inactive_days = Some(730);
        let bounded = all.bounded();
        assert!(bounded.len() >= 22, "{bounded:?}");
        for entry in bounded {
            let at_bound = with_setting(entry.setting, entry.most);
            assert!(
                at_bound.check_values().is_ok(),
                "{} = {}",
                entry.setting,
                entry.most
            );
            let above = with_setting(entry.setting, entry.most + 1)
                .check_values()
                .unwrap_err()
                .to_string();
            assert!(
                above.contains(entry.setting) && above.contains("must be at most"),
                "{}: {above}",
                entry.setting
            );
            if entry.least > 0 {
                let below = with_setting(entry.setting, entry.least - 1)
                    .check_values()
                    .unwrap_err()
                    .to_string();
                assert!(below.contains(entry.setting), "{below}");
            }
        }
    }

    #[test]
    fn no_lifetime_may_pass_100_years() {
        let huge = with_setting("links.unsubscribe_ttl_days", u64::from(u32::MAX));
        assert_eq!(
            huge.check_values().unwrap_err().to_string(),
            "setting `links.unsubscribe_ttl_days` (OPTIN_LINKS__UNSUBSCRIBE_TTL_DAYS): must be at most 36525 days (100 years)"
        );
        for (setting, most) in [
            ("signup.confirmation_ttl_days", MAX_DAYS),
            ("admin.session_minutes", MAX_MINUTES),
            ("mail.lease_secs", MAX_SECS),
            ("webhooks.timeout_secs", MAX_SECS),
            ("mail.max_attempts", MAX_COUNT),
            ("feedback.soft_bounce_days", 365),
        ] {
            let entry = Settings::default()
                .bounded()
                .into_iter()
                .find(|entry| entry.setting == setting)
                .unwrap();
            assert_eq!(entry.most, most, "{setting}");
        }
        assert_eq!(MAX_SECS, 3_155_760_000);
    }

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
        settings.server.public_url = Some("https://optin.example".into());
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
        assert!(message.contains("`signup.challenge_ttl_seconds` (OPTIN_SIGNUP__CHALLENGE_TTL_SECONDS): must be at least 1"));
        let message = refused(|s| s.signup.challenge_ttl_seconds = 86_401);
        assert!(message.contains("`signup.challenge_ttl_seconds` (OPTIN_SIGNUP__CHALLENGE_TTL_SECONDS): must be at most 86400"));
        let message = refused(|s| s.signup.proof_of_work_max_number = 10_000_001);
        assert!(message.contains("`signup.proof_of_work_max_number` (OPTIN_SIGNUP__PROOF_OF_WORK_MAX_NUMBER): must be at most"));
        let message = refused(|s| s.signup.min_fill_seconds = 3_601);
        assert!(message.contains("`signup.min_fill_seconds`"));
        let message = refused(|s| s.signup.max_unconfirmed_per_ip = 0);
        assert!(message.contains("`signup.max_unconfirmed_per_ip`"));
        let message = refused(|s| s.signup.dns_servers = StringList(vec!["resolver".into()]));
        assert!(message.contains("`signup.dns_servers` (OPTIN_SIGNUP__DNS_SERVERS): 'resolver'"));
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

    #[test]
    fn a_production_setup_needs_a_public_url_and_names_its_variable() {
        let mut settings = keyed_settings();
        settings.server.public_url = None;
        let error = Config::build(settings, false).err().unwrap().to_string();
        assert!(
            error.starts_with("missing `server.public_url` (OPTIN_SERVER__PUBLIC_URL):"),
            "{error}"
        );
    }

    #[test]
    fn bind_is_an_address_and_port() {
        for good in [
            "127.0.0.1:8080",
            "0.0.0.0:80",
            "[::]:8080",
            "localhost:9090",
        ] {
            assert!(check_bind(good).is_ok(), "{good}");
        }
        for bad in ["xyz", "127.0.0.1", "127.0.0.1:99999", ":8080", "a b:80"] {
            let error = check_bind(bad).unwrap_err().to_string();
            assert!(
                error.starts_with("setting `server.bind` (OPTIN_SERVER__BIND): "),
                "{error}"
            );
        }
    }
}
