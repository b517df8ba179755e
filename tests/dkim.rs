//! DKIM: keys made by `optin keys dkim`, mail signed by the outbox and received by the
//! real SMTP sink, verified by an independent implementation (Python's dkimpy, in a venv
//! made by tests/dkim/verify.sh, with its DNS lookup answered by the generated record).
//! The receipt mail (with its attachment) and the renewal mail are signed like every
//! other. Also what `check-config` and the start refuse.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use optin::config::DkimSettings;
use rsa::pkcs1::EncodeRsaPrivateKey;
use support::app::{Backend, TestApp};

/// The test app sends as `no-reply@optin.test` (tests/support/app.rs).
const DOMAIN: &str = "optin.test";
const SELECTOR: &str = "s2026";

fn optin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_optin"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the optin binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The character-strings of the TXT record `line` gives, as dnslib (an independent DNS
/// implementation, in a venv made by tests/dkim/txt_strings.sh) reads it from a zone file
/// line and sends it through DNS wire format. Panics when dnslib refuses it.
fn dns_strings(line: &str) -> Vec<String> {
    let zone = format!("{SELECTOR}._domainkey.{DOMAIN}. 300 IN TXT {line}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dkim/txt_strings.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&zone)
        .output()
        .expect("run tests/dkim/txt_strings.sh");
    assert!(
        output.status.success(),
        "dnslib did not take {zone}: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)))
}

/// Runs `optin keys dkim` and gives the TXT record it printed, joined from the quoted
/// strings by dnslib as a resolver joins them.
fn generate_key(algorithm: &str, out: &Path) -> String {
    let strings = printed_strings(algorithm, out);
    for string in &strings {
        assert!(string.len() <= 255, "{} characters: {string}", string.len());
    }
    strings.concat()
}

/// Runs `optin keys dkim` and gives the character-strings of the record it printed.
fn printed_strings(algorithm: &str, out: &Path) -> Vec<String> {
    let output = optin(&[
        "keys",
        "dkim",
        "--domain",
        DOMAIN,
        "--selector",
        SELECTOR,
        "--algorithm",
        algorithm,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("{SELECTOR}._domainkey.{DOMAIN}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("quoted strings of at most 255 characters each"),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|line| line.starts_with("\"v=DKIM1;"))
        .unwrap_or_else(|| panic!("no TXT record printed: {stdout}"));
    dns_strings(line)
}

#[test]
fn the_record_is_printed_as_dns_strings_that_join_to_the_key_record() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("rsa.pem");
    let strings = printed_strings("rsa", &key);
    assert!(
        strings.len() >= 2,
        "an RSA-2048 record is split: {strings:?}"
    );
    assert!(strings.iter().all(|s| s.len() <= 255), "{strings:?}");
    assert_eq!(strings[0].len(), 255, "{strings:?}");
    let mut settings = support::app::test_settings("./unused.redb", "file://./unused", 1);
    settings.mail.dkim = Some(dkim_settings(&key));
    let config = optin::config::Config::from_settings(settings).unwrap();
    let signer = optin::mail::dkim::DkimSigner::from_config(&config)
        .unwrap()
        .expect("DKIM is configured");
    assert_eq!(strings.concat(), signer.txt_record());
    assert!(signer.txt_record().starts_with("v=DKIM1; k=rsa; p=MIIB"));
}

struct Verdict {
    passed: bool,
    report: String,
}

impl Verdict {
    fn tag(&self, name: &str) -> String {
        self.report
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    }
}

/// dkimpy's verdict on `raw`, with `record` as the only DNS answer.
fn dkimpy_verify(raw: &[u8], record: &str, dir: &Path) -> Verdict {
    let message = dir.join("message.eml");
    std::fs::write(&message, raw).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dkim/verify.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&message)
        .arg(record)
        .output()
        .expect("run tests/dkim/verify.sh");
    let report = format!("{}{}", text(&output.stdout), text(&output.stderr));
    match output.status.code() {
        Some(0) => Verdict {
            passed: true,
            report,
        },
        Some(1) => Verdict {
            passed: false,
            report,
        },
        // 2: no signature; 3 or anything else: the verifier could not run. Never a skip.
        _ => panic!("the DKIM verifier did not run: {report}"),
    }
}

fn dkim_settings(key: &Path) -> DkimSettings {
    DkimSettings {
        domain: DOMAIN.into(),
        selector: SELECTOR.into(),
        private_key_file: key.to_path_buf(),
    }
}

/// Signs up `email`, sends the confirmation mail, and gives it as it reached the sink.
async fn signed_confirmation_mail(key: &Path, email: &str) -> Vec<u8> {
    let key = key.to_path_buf();
    let app = TestApp::spawn_with(Backend::Embedded, |settings| {
        settings.mail.dkim = Some(dkim_settings(&key));
    })
    .await;
    assert_eq!(app.signup(email, &["blog-updates"]).await.status(), 202);
    assert_eq!(app.drain_outbox().await, 1);
    let mails = app.mails_to(email);
    assert_eq!(mails.len(), 1);
    mails[0].raw.clone()
}

fn replace_once(raw: &[u8], from: &str, to: &str) -> Vec<u8> {
    let raw = text(raw);
    assert!(raw.contains(from), "{from:?} not in the mail");
    raw.replacen(from, to, 1).into_bytes()
}

async fn signed_mail_verifies_independently(algorithm: &str, expected_a: &str) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    let record = generate_key(algorithm, &key);
    assert!(record.starts_with(&format!("v=DKIM1; k={algorithm}; p=")));

    let raw = signed_confirmation_mail(&key, "jane@example.com").await;
    let verdict = dkimpy_verify(&raw, &record, dir.path());
    assert!(verdict.passed, "{}", verdict.report);
    assert_eq!(verdict.tag("a"), expected_a);
    assert_eq!(verdict.tag("c"), "relaxed/relaxed");
    assert_eq!(verdict.tag("d"), DOMAIN);
    assert_eq!(verdict.tag("s"), SELECTOR);
    assert_eq!(
        verdict.tag("asked"),
        format!("{SELECTOR}._domainkey.{DOMAIN}.")
    );
    let signed: Vec<String> = verdict.tag("h").split(':').map(str::to_string).collect();
    for header in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(
            signed.iter().any(|h| h == header),
            "{header} not in h= {signed:?}"
        );
    }

    // Changed after signing: a header, the one-click header, the body.
    let body_start = text(&raw).find("\r\n\r\n").unwrap();
    let body_word = text(&raw)[body_start..]
        .split_whitespace()
        .find(|word| word.len() > 6 && word.chars().all(|c| c.is_ascii_alphabetic()))
        .unwrap()
        .to_string();
    for changed in [
        replace_once(&raw, "\r\nSubject: ", "\r\nSubject: Re: "),
        replace_once(
            &raw,
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "List-Unsubscribe-Post: List-Unsubscribe=Two-Clicks",
        ),
        {
            let mut changed = raw[..body_start].to_vec();
            changed.extend(
                text(&raw[body_start..])
                    .replacen(&body_word, "Tampered", 1)
                    .into_bytes(),
            );
            changed
        },
    ] {
        let verdict = dkimpy_verify(&changed, &record, dir.path());
        assert!(
            !verdict.passed,
            "a changed mail verified: {}",
            verdict.report
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rsa_signed_mail_verifies_with_dkimpy_and_fails_once_changed() {
    signed_mail_verifies_independently("rsa", "rsa-sha256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ed25519_signed_mail_verifies_with_dkimpy_and_fails_once_changed() {
    signed_mail_verifies_independently("ed25519", "ed25519-sha256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_job_is_signed_again_at_its_second_send() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    let record = generate_key("ed25519", &key);
    let key_path = key.clone();
    let app = TestApp::spawn_with(Backend::Embedded, |settings| {
        settings.mail.dkim = Some(dkim_settings(&key_path));
    })
    .await;
    app.smtp
        .set_rejecting(support::smtp_sink::Rejection::Temporary);
    assert_eq!(
        app.signup("retry@example.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    app.drain_outbox().await;
    assert!(app.mails_to("retry@example.com").is_empty());
    app.smtp.set_accepting();
    app.advance_clock(chrono::Duration::hours(1));
    assert_eq!(app.drain_outbox().await, 1);
    let mails = app.mails_to("retry@example.com");
    assert_eq!(mails.len(), 1);
    let raw = text(&mails[0].raw);
    assert_eq!(raw.matches("DKIM-Signature:").count(), 1, "{raw}");
    let verdict = dkimpy_verify(&mails[0].raw, &record, dir.path());
    assert!(verdict.passed, "{}", verdict.report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receipt_mail_with_its_attachment_and_the_renewal_mail_verify_with_dkimpy() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    let record = generate_key("ed25519", &key);
    let receipt_key = dir.path().join("receipt.pem");
    let made = optin(&["keys", "receipt", "--out", receipt_key.to_str().unwrap()]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let (key_path, receipt_path) = (key.clone(), receipt_key.clone());
    let app = TestApp::spawn_with(Backend::Embedded, |settings| {
        settings.mail.dkim = Some(dkim_settings(&key_path));
        settings.consent.receipt_keys =
            optin::config::StringList(vec![receipt_path.display().to_string()]);
        settings.consent.controller = Some(optin::config::ControllerSettings {
            name: "Example B.V.".into(),
            email: "privacy@example.com".into(),
            url: "https://example.com".into(),
        });
        let blog = settings
            .subscription_types
            .iter_mut()
            .find(|t| t.id.as_str() == "blog-updates")
            .unwrap();
        blog.consent_valid_days = Some(60);
    })
    .await;
    app.subscribe_confirmed("jane@example.com", &["blog-updates"])
        .await;
    app.drain_outbox().await;
    app.advance_clock(chrono::Duration::days(31));
    assert_eq!(app.sweep_consent().await.renewals_asked, 1);
    app.drain_outbox().await;
    let mails = app.mails_to("jane@example.com");
    let subjects: Vec<String> = mails
        .iter()
        .map(support::smtp_sink::ReceivedMail::subject)
        .collect();
    assert_eq!(
        subjects[1..],
        [
            "You're subscribed to Blog updates".to_string(),
            "Do you still want Blog updates?".to_string()
        ],
        "{subjects:?}"
    );
    let receipt_mail = &mails[1];
    assert_eq!(receipt_mail.content_type(), "multipart/mixed");
    assert!(receipt_mail.attachment("consent-receipt.jws").is_some());
    for mail in &mails[1..] {
        let verdict = dkimpy_verify(&mail.raw, &record, dir.path());
        assert!(verdict.passed, "{}", verdict.report);
        let signed = verdict.tag("h");
        assert!(signed.contains("list-unsubscribe-post"), "{signed}");
        assert!(signed.contains("content-type"), "{signed}");
    }
    // The attachment is covered: one changed character of it fails.
    let raw = text(&receipt_mail.raw);
    let attached = raw.find("consent-receipt.jws").unwrap();
    let body_start = attached + raw[attached..].find("\r\n\r\n").unwrap() + 4;
    let mut changed = receipt_mail.raw.clone();
    changed[body_start + 10] = if changed[body_start + 10] == b'A' {
        b'B'
    } else {
        b'A'
    };
    assert!(!dkimpy_verify(&changed, &record, dir.path()).passed);
}

#[test]
fn the_generated_key_file_is_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    for algorithm in ["rsa", "ed25519"] {
        let key = dir.path().join(format!("{algorithm}.pem"));
        generate_key(algorithm, &key);
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{algorithm} key mode {mode:o}");
        let before = std::fs::read(&key).unwrap();
        let again = optin(&[
            "keys",
            "dkim",
            "--domain",
            DOMAIN,
            "--selector",
            "other",
            "--algorithm",
            algorithm,
            "--out",
            key.to_str().unwrap(),
        ]);
        assert!(!again.status.success());
        assert!(
            text(&again.stderr).contains("never overwrites"),
            "{}",
            text(&again.stderr)
        );
        assert_eq!(
            std::fs::read(&key).unwrap(),
            before,
            "the key file was changed"
        );
    }
}

/// A config file for `check-config`, with the DKIM settings given.
fn config_file(dir: &Path, dkim: &str, from: &str) -> PathBuf {
    use base64::Engine;
    let b64 = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    let path = dir.join("optin.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\npublic_url = \"https://optin.test\"\n\n\
             [mail]\nfrom = \"{from}\"\nurl = \"file://{}\"\n\n{dkim}\n\n[security]\n\
             signing_keys = [\"k1:{}\"]\nindex_key = \"{}\"\n\n{}",
            dir.join("mail").display(),
            b64(1),
            b64(2),
            include_str!("../src/example_subscription_types.toml")
        ),
    )
    .unwrap();
    path
}

fn check_config(dir: &Path, key: &Path, domain: &str, from: &str) -> Output {
    let dkim = format!(
        "[mail.dkim]\ndomain = \"{domain}\"\nselector = \"{SELECTOR}\"\nprivate_key_file = \"{}\"",
        key.display()
    );
    let config = config_file(dir, &dkim, from);
    optin(&["check-config", "--config", config.to_str().unwrap()])
}

#[test]
fn check_config_prints_the_record_and_refuses_bad_keys_and_misaligned_from() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    let record = generate_key("ed25519", &key);
    let from = "News <news@mail.optin.test>";

    // A subdomain of the DKIM domain is aligned; the record is printed.
    let ok = check_config(dir.path(), &key, DOMAIN, from);
    let stdout = text(&ok.stdout);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        stdout.contains(&format!("{SELECTOR}._domainkey.{DOMAIN}")),
        "{stdout}"
    );
    assert!(stdout.contains(&record), "{stdout}");

    let refused = |key: &Path, domain: &str, from: &str, expected: &str| {
        let output = check_config(dir.path(), key, domain, from);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("mail.dkim"), "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr}"
        );
    };
    refused(&key, "other.test", from, "not other.test or below it");
    refused(
        &key,
        "mail.optin.test",
        "x <x@optin.test>",
        "not mail.optin.test or below it",
    );
    refused(
        &dir.path().join("missing.pem"),
        DOMAIN,
        from,
        "cannot read the key file",
    );

    let weak = dir.path().join("weak.pem");
    let weak_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
    std::fs::write(
        &weak,
        weak_key
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    refused(&weak, DOMAIN, from, "1024 bits; at least 2048");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    refused(&garbage, DOMAIN, from, "not a PEM private key");
}

#[test]
fn serve_refuses_to_start_with_a_misaligned_from() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    generate_key("rsa", &key);
    let dkim = format!(
        "[mail.dkim]\ndomain = \"elsewhere.test\"\nselector = \"{SELECTOR}\"\nprivate_key_file = \"{}\"",
        key.display()
    );
    let config = config_file(dir.path(), &dkim, "x <x@optin.test>");
    let output = optin(&["serve", "--config", config.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("optin.test is not elsewhere.test or below it"),
        "{stderr}"
    );
}
