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
use support::process::{free_port, optin_command, run_configured, OptinProcess, ProcessSettings};
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
    // With no public_url, the links in its mail follow the address it listens on.
    let mail = wait_for_mail(&process.dir().join("data/mail")).await;
    let link = format!("http://127.0.0.1:{}/confirm/", process.port);
    assert!(mail.contains(&link), "{link} in:\n{mail}");
}

/// The first `.eml` file that appears in `dir`, within 10 s.
async fn wait_for_mail(dir: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let first = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|e| e == "eml"));
        if let Some(mail) = first.and_then(|path| std::fs::read(path).ok()) {
            if !mail.is_empty() {
                // Quoted-printable may break a long line with `=` and a line end.
                return String::from_utf8_lossy(&mail).replace("=\r\n", "");
            }
        }
        assert!(Instant::now() < deadline, "no mail in {}", dir.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// `optin ARGS` with only `env`, in `dir`.
fn optin_in(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    optin_command(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run the optin binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn slow_check_config_writes_nothing_and_says_what_it_checked() {
    let dir = tempfile::tempdir().unwrap();
    let output = optin_in(dir.path(), &[], &["check-config"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let said = stdout(&output);
    assert!(
        said.contains(
            "`optin serve` would start the development setup, with links to http://127.0.0.1:8080/"
        ),
        "{said}"
    );
    assert!(
        said.contains(
            "Checked: the settings, mail.url, mail.dkim, the mail and page templates and store.url"
        ),
        "{said}"
    );
    assert!(said.contains("this check wrote nothing"), "{said}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "check-config wrote {left:?}");

    // A wildcard bind is reached over loopback.
    let output = optin_in(
        dir.path(),
        &[("OPTIN_SERVER__BIND", "0.0.0.0:9090")],
        &["check-config"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("with links to http://127.0.0.1:9090/"),
        "{}",
        stdout(&output)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn slow_configuration_errors_name_the_setting_and_its_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |env: &[(&str, &str)]| {
        let output = optin_in(dir.path(), env, &["check-config"]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{env:?}: {}",
            stdout(&output)
        );
        stderr(&output)
    };
    let message = refused(&[("OPTIN_SERVER__BINDD", "x")]);
    assert!(
        message.contains("unknown setting `server.bindd` (from OPTIN_SERVER__BINDD)"),
        "{message}"
    );
    assert!(
        message.contains("known here: bind, public_url"),
        "{message}"
    );
    let message = refused(&[("OPTIN_SERVER__BIND", "nonsense")]);
    assert!(
        message.contains(
            "setting `server.bind` (OPTIN_SERVER__BIND): 'nonsense' is not an address and port"
        ),
        "{message}"
    );
    let message = refused(&[("OPTIN_SERVER__BODY_LIMIT_BYTES", "lots")]);
    assert!(
        message.contains("setting `server.body_limit_bytes` (OPTIN_SERVER__BODY_LIMIT_BYTES): expected an integer"),
        "{message}"
    );
    // A production setup (here: an index key is given) needs its public URL.
    let index_key = STANDARD.encode([7u8; 32]);
    let message = refused(&[("OPTIN_SECURITY__INDEX_KEY", &index_key)]);
    assert!(
        message.contains("missing `server.public_url` (OPTIN_SERVER__PUBLIC_URL), `security.signing_keys` (OPTIN_SECURITY__SIGNING_KEYS)"),
        "{message}"
    );
    // In a configuration file, a bad bind is named the same way.
    let base = ProcessSettings::new("./data/optin.redb", "file://./data/mail");
    let output = check_config(&base.with_env("OPTIN_SERVER__BIND", "127.0.0.1:http"));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("`server.bind` (OPTIN_SERVER__BIND)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_serve_names_the_address_it_cannot_listen_on() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = held.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut child = optin_command(dir.path())
        .arg("serve")
        .env("OPTIN_SERVER__BIND", &address)
        .env("OPTIN_LOG__FORMAT", "text")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + REFUSAL;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("optin serve kept running on a port in use");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut message = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut message).unwrap();
    assert!(!status.success());
    assert!(
        message.contains(&format!(
            "optin: cannot listen on {address}: Address already in use"
        )),
        "{message}"
    );
    drop(held);
}

/// `--help` of every command and subcommand: each command and option it lists has a
/// description.
#[test]
fn every_command_and_option_has_help() {
    let dir = tempfile::tempdir().unwrap();
    let mut pending = vec![Vec::<String>::new()];
    let mut seen = 0;
    while let Some(command) = pending.pop() {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        args.push("--help");
        let output = optin_in(dir.path(), &[], &args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        let help = stdout(&output);
        seen += 1;
        let entries = help_entries(&help);
        assert!(!entries.is_empty(), "{args:?} lists nothing:\n{help}");
        for (section, name, description) in entries {
            assert!(
                !description.trim().is_empty(),
                "`optin {}` has no description for {section} {name}:\n{help}",
                command.join(" ")
            );
            if section == "Commands:" && name != "help" {
                let mut sub = command.clone();
                sub.push(name);
                pending.push(sub);
            }
        }
    }
    // optin itself, its 9 commands, and the 4 of `keys`.
    assert!(seen >= 14, "only {seen} commands were checked");
}

/// `(section, name, description)` of each entry of a clap help's sections: a line
/// indented by two spaces starts an entry; its description follows two or more spaces,
/// or on the lines below, indented further.
fn help_entries(help: &str) -> Vec<(String, String, String)> {
    let mut entries: Vec<(String, String, String)> = Vec::new();
    let mut section = String::new();
    for line in help.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            // A section's title ("Options:"), or prose, which ends any section.
            section = if line.ends_with(':') {
                line.to_string()
            } else {
                String::new()
            };
            continue;
        }
        if section.is_empty() {
            continue;
        }
        if indent <= 6 {
            let item = line.trim_start();
            let (name, description) = match item.find("  ") {
                Some(gap) => (item[..gap].to_string(), item[gap..].trim().to_string()),
                None => (item.to_string(), String::new()),
            };
            entries.push((section.clone(), name, description));
        } else if let Some(last) = entries.last_mut() {
            last.2.push_str(line.trim());
        }
    }
    entries
}
