//! Starting the real `optin` binary: when the development setup may be used and when the
//! start must stop instead, a Redis that is not up yet, what `check-config` refuses, and
//! `optin health` as a container HEALTHCHECK runs it.
//!
//! Every test here runs the service binary as a separate process, so all are `slow_…`.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use support::process::{free_port, run_configured, OptinProcess, ProcessSettings};
use support::redis_server::RedisServer;
use support::smtp_sink::SmtpSink;

/// A store call gives up after 2 s; the rest is slack for a loaded test machine.
const FAIL_FAST: Duration = Duration::from_millis(2500);
/// A start that is refused ends well within this.
const REFUSAL: Duration = Duration::from_secs(15);

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `optin serve` with only `env`, expects it to stop by itself, and answers its log.
async fn refused_start(env: &[(&str, &str)]) -> (String, OptinProcess) {
    let mut process = OptinProcess::spawn_bare(env);
    let status = process.wait_exit(REFUSAL).await;
    let log = process.log();
    let status = status.unwrap_or_else(|| panic!("optin serve kept running; its log:\n{log}"));
    assert!(!status.success(), "the start must fail; its log:\n{log}");
    (log, process)
}

fn dev_keys_written(process: &OptinProcess) -> bool {
    process.dir().join("data").join("dev-keys.toml").exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_with_no_configuration_at_all_the_development_setup_starts_and_says_so() {
    let process = OptinProcess::start_bare(&[]).await;
    let log = process.log();
    assert!(log.contains("DEVELOPMENT SETUP"), "{log}");
    assert!(dev_keys_written(&process), "{log}");
    let response = reqwest::Client::new()
        .post(process.url("/v1/signups"))
        .json(&json!({ "email": "dev@example.com", "subscription_types": ["blog-updates"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "an example type takes signups");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_a_redis_store_without_keys_refuses_to_start_and_names_both_missing_keys() {
    // Nothing listens on port 1: the refusal must come before any store is contacted.
    let (log, process) = refused_start(&[("OPTIN_STORE__URL", "redis://127.0.0.1:1")]).await;
    assert!(log.contains("security.signing_keys"), "{log}");
    assert!(log.contains("security.index_key"), "{log}");
    assert!(!dev_keys_written(&process), "no development keys generated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_an_index_key_without_signing_keys_refuses_to_start_and_is_never_replaced() {
    let index_key = STANDARD.encode([7u8; 32]);
    let (log, process) = refused_start(&[("OPTIN_SECURITY__INDEX_KEY", &index_key)]).await;
    assert!(log.contains("security.signing_keys"), "{log}");
    assert!(
        !log.contains("security.index_key"),
        "the index key was given: {log}"
    );
    assert!(
        !log.contains("DEVELOPMENT SETUP"),
        "no fallback to generated keys: {log}"
    );
    assert!(!dev_keys_written(&process), "no development keys generated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_redis_down_at_start_the_service_starts_unready_and_heals_once_redis_is_up() {
    let mut redis = RedisServer::start();
    // The port stays reserved: a Redis that is "not up yet", as in an orchestrator that
    // starts both at once.
    redis.stop();
    let smtp = SmtpSink::start();
    let process = OptinProcess::start_unready(&ProcessSettings::new(&redis.url, &smtp.url())).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let started = Instant::now();
    let ready = client.get(process.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let signup = client
        .post(process.url("/v1/signups"))
        .json(&json!({ "email": "early@example.com", "subscription_types": ["blog-updates"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 503);
    assert!(signup.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/problem+json"));
    assert!(
        started.elapsed() < 2 * FAIL_FAST,
        "both answered fast: {:?}",
        started.elapsed()
    );
    let health = run_configured(
        &ProcessSettings::new(&redis.url, &smtp.url()),
        process.port,
        &["health"],
    );
    assert!(
        !health.status.success(),
        "optin health fails while not ready"
    );

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = client
            .get(process.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {status} 10 s after Redis came up\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let signup = client
        .post(process.url("/v1/signups"))
        .json(&json!({ "email": "late@example.com", "subscription_types": ["blog-updates"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 202);
    let eligibility = process
        .eligibility("late@example.com", "blog-updates")
        .await;
    assert_eq!(eligibility["eligible"], json!(false), "{eligibility}");
    // The outbox worker healed too: the confirmation mail goes out.
    let mails = smtp.wait_for(1, Duration::from_secs(15));
    assert_eq!(mails.len(), 1, "{}", process.log());
    assert_eq!(mails[0].to, vec!["late@example.com".to_string()]);
    assert!(
        process.log().contains("Redis does not answer yet"),
        "{}",
        process.log()
    );
}

fn check_config(settings: &ProcessSettings) -> Output {
    run_configured(settings, free_port(), &["check-config"])
}

#[test]
fn slow_check_config_refuses_a_ttl_of_0_and_duplicate_key_ids_naming_the_setting() {
    let base = ProcessSettings::new("./data/optin.redb", "file://./data/mail");
    let valid = check_config(&base);
    assert!(valid.status.success(), "{}", stderr(&valid));

    for setting in ["signup.confirmation_ttl_days", "links.unsubscribe_ttl_days"] {
        let (section, key) = setting.split_once('.').unwrap();
        let name = format!("OPTIN_{}__{}", section.to_uppercase(), key.to_uppercase());
        let output = check_config(&base.clone().with_env(&name, "0"));
        assert_eq!(output.status.code(), Some(2), "{setting}");
        assert!(stderr(&output).contains(setting), "{}", stderr(&output));
    }

    let key = STANDARD.encode([1u8; 32]);
    let other = STANDARD.encode([3u8; 32]);
    let output = check_config(&base.clone().with_env(
        "OPTIN_SECURITY__SIGNING_KEYS",
        &format!("k1:{key},k1:{other}"),
    ));
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("security.signing_keys"), "{message}");
    assert!(message.contains("'k1'"), "names the id: {message}");
}

#[test]
fn slow_check_config_refuses_a_lifetime_too_long_for_the_calendar() {
    // Accepted once, after which every signup and eligibility check panicked adding it
    // to the current date.
    let base = ProcessSettings::new("./data/optin.redb", "file://./data/mail");
    for (name, value, setting) in [
        (
            "OPTIN_LINKS__UNSUBSCRIBE_TTL_DAYS",
            "4294967295",
            "links.unsubscribe_ttl_days",
        ),
        (
            "OPTIN_SIGNUP__CONFIRMATION_TTL_DAYS",
            "36526",
            "signup.confirmation_ttl_days",
        ),
        (
            "OPTIN_MAIL__LEASE_SECS",
            "18446744073709551615",
            "mail.lease_secs",
        ),
    ] {
        let output = check_config(&base.clone().with_env(name, value));
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name}={value}: {message}");
        assert!(message.contains(setting), "{message}");
        assert!(message.contains("100 years"), "{message}");
    }
    let at_the_bound = check_config(&base.with_env("OPTIN_LINKS__UNSUBSCRIBE_TTL_DAYS", "36525"));
    assert!(at_the_bound.status.success(), "{}", stderr(&at_the_bound));
}

#[test]
fn slow_check_config_refuses_a_webhook_to_a_private_or_metadata_address_unless_allowed() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    for url in [
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hook",
        "https://[fd00::1]/hook",
    ] {
        let mut settings = ProcessSettings::new("./data/optin.redb", "file://./data/mail");
        settings.extra_toml = format!(
            "[[webhooks.endpoints]]\nid = \"crm\"\nurl = \"{url}\"\nsecret = \"{secret}\"\n"
        );
        let output = check_config(&settings);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{url}: {message}");
        assert!(message.contains("webhooks.endpoints[crm].url"), "{message}");
        assert!(
            message.contains("webhooks.allow_private_networks"),
            "{message}"
        );

        let allowed =
            check_config(&settings.with_env("OPTIN_WEBHOOKS__ALLOW_PRIVATE_NETWORKS", "true"));
        assert!(allowed.status.success(), "{url}: {}", stderr(&allowed));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_serve_refuses_to_start_with_a_ttl_of_0() {
    let smtp = SmtpSink::start();
    let settings = ProcessSettings::new("./data/optin.redb", &smtp.url())
        .with_env("OPTIN_SIGNUP__CONFIRMATION_TTL_DAYS", "0");
    let output = run_configured(&settings, free_port(), &["serve"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("signup.confirmation_ttl_days"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_optin_health_exits_0_against_a_ready_instance_and_non_zero_when_nothing_listens() {
    let smtp = SmtpSink::start();
    let settings = ProcessSettings::new("./data/optin.redb", &smtp.url());
    let mut process = OptinProcess::start(&settings).await;
    let healthy = run_configured(&settings, process.port, &["health"]);
    assert!(healthy.status.success(), "{}", stderr(&healthy));

    process.kill9();
    let started = Instant::now();
    let down = run_configured(&settings, process.port, &["health"]);
    assert!(!down.status.success());
    let message = stderr(&down);
    assert_eq!(message.trim().lines().count(), 1, "one line: {message}");
    assert!(message.contains("not ready"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
