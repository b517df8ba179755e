//! Backups, restores and moves between stores, through the running app, the library's
//! store commands and the real `optin` binary; encrypted dumps opened with the real
//! `age` tool.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::Path;
use std::process::Command;

use chrono::Duration;
use serde_json::{json, Value};
use sha2::Digest;

use support::app::{urlencode, Backend, TestApp};
use support::process::{run_configured, ProcessSettings};

const BACKUP_KEY: &str = "test-backup-key";
const FEEDBACK_KEY: &str = "test-feedback-key";
const TYPES: [&str; 4] = ["blog-updates", "marketing", "job-alerts", "event-info"];

fn sha256_hex(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// One consent receipt key for every app of these tests, made by `optin keys receipt`:
/// every opt-in on consent then keeps a receipt with its event, which the round trips
/// must carry.
fn receipt_key() -> &'static Path {
    static KEY: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    let (_, path) = KEY.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("receipt.pem");
        let made = Command::new(env!("CARGO_BIN_EXE_optin"))
            .args(["keys", "receipt", "--out", path.to_str().expect("a path")])
            .output()
            .expect("run optin keys receipt");
        assert!(made.status.success(), "optin keys receipt failed");
        (dir, path)
    });
    path
}

/// Settings with a `backup` and a `feedback` key, one webhook endpoint that never
/// answers (its deliveries die at the first failure), mails that die at the first, and
/// consent receipts.
fn settings(settings: &mut optin::config::Settings, hook_port: u16) {
    settings.consent.receipt_keys =
        optin::config::StringList(vec![receipt_key().display().to_string()]);
    settings.consent.controller = Some(optin::config::ControllerSettings {
        name: "Example B.V.".into(),
        email: "privacy@example.com".into(),
        url: "https://example.com".into(),
    });
    for (name, scope, key) in [
        ("backup-test", "backup", BACKUP_KEY),
        ("feedback-test", "feedback", FEEDBACK_KEY),
    ] {
        settings
            .security
            .api_keys
            .0
            .push(secrecy::SecretString::from(format!(
                "{name}:{scope}:{}",
                sha256_hex(key)
            )));
    }
    settings.webhooks.max_attempts = 1;
    settings.webhooks.endpoints = vec![optin::webhooks::EndpointSettings {
        id: "crm".into(),
        url: format!("http://127.0.0.1:{hook_port}/hook"),
        secret: secrecy::SecretString::from(
            optin::webhooks::signature::SigningKey::generate().expect("a secret"),
        ),
        events: None,
        subscription_types: None,
    }];
    settings.mail.max_attempts = 1;
}

async fn spawn(backend: Backend, hook_port: u16) -> TestApp {
    TestApp::spawn_with(backend, move |s| settings(s, hook_port)).await
}

/// The people of the round trip, one of each kind.
const OPTED_IN: &str = "opted@example.com";
const UNSUBSCRIBED: &str = "gone@example.com";
const PENDING: &str = "pending@example.com";
const RESTRICTED: &str = "restricted@example.com";
const UNREACHABLE: &str = "bounced@example.com";
const BLOCKED: &str = "blocker@example.com";
const ERASED: &str = "erased@example.com";
const DEAD_MAIL: &str = "deadmail@example.com";
/// At a throw-away domain: held in quarantine instead of mailed.
const HELD: &str = "held@mailinator.com";
const EVERYONE: [&str; 9] = [
    OPTED_IN,
    UNSUBSCRIBED,
    PENDING,
    RESTRICTED,
    UNREACHABLE,
    BLOCKED,
    ERASED,
    DEAD_MAIL,
    HELD,
];

async fn ok(response: reqwest::Response, what: &str) {
    let status = response.status();
    assert!(
        status.is_success(),
        "{what}: {status} {}",
        response.text().await.unwrap_or_default()
    );
}

/// Fills the app's store with every kind of record, through the API as people and
/// operators make them.
async fn fill(app: &TestApp) {
    // A mail that dies: the SMTP server refuses it, and one attempt is all it gets.
    app.smtp
        .set_rejecting(support::smtp_sink::Rejection::Temporary);
    assert_eq!(app.signup(DEAD_MAIL, &["blog-updates"]).await.status(), 202);
    app.drain_outbox().await;
    app.smtp.set_accepting();

    app.subscribe_confirmed(OPTED_IN, &["blog-updates", "marketing"])
        .await;
    app.subscribe_confirmed(UNSUBSCRIBED, &["blog-updates"])
        .await;
    app.one_click_unsubscribe(UNSUBSCRIBED, "blog-updates")
        .await;
    assert_eq!(app.signup(PENDING, &["job-alerts"]).await.status(), 202);
    app.subscribe_confirmed(RESTRICTED, &["event-info"]).await;
    ok(
        app.admin_send(
            reqwest::Method::POST,
            &format!("/v1/contacts/{}/restriction", urlencode(RESTRICTED)),
        )
        .await,
        "restrict",
    )
    .await;
    app.subscribe_confirmed(UNREACHABLE, &["marketing"]).await;
    let bounce = app
        .client
        .post(app.url("/v1/feedback"))
        .bearer_auth(FEEDBACK_KEY)
        .json(&json!({"email": UNREACHABLE, "kind": "hard_bounce", "reason": "no such user"}))
        .send()
        .await
        .expect("feedback sent");
    ok(bounce, "hard bounce").await;
    assert_eq!(app.signup(BLOCKED, &["blog-updates"]).await.status(), 202);
    app.drain_outbox().await;
    let cancel = app.mails_to(BLOCKED)[0]
        .links()
        .into_iter()
        .find(|link| link.contains("/unsubscribe/"))
        .expect("a cancel link");
    let blocked = app
        .client
        .post(&cancel)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("block=1")
        .send()
        .await
        .expect("cancel sent");
    ok(blocked, "block").await;
    app.subscribe_confirmed(ERASED, &["blog-updates"]).await;
    ok(
        app.admin_send(
            reqwest::Method::DELETE,
            &format!("/v1/contacts/{}", urlencode(ERASED)),
        )
        .await,
        "erase",
    )
    .await;
    assert_eq!(app.signup(HELD, &["marketing"]).await.status(), 202);
    // Every webhook delivery fails once and dies; the endpoint's state records it.
    app.drain_outbox().await;
}

/// Leaves out what differs between two apps on the same data: the time of asking, and
/// signed links issued at that time.
fn without_moments(mut value: Value) -> Value {
    match &mut value {
        Value::Object(map) => {
            for moment in [
                "exported_at",
                "list_unsubscribe",
                "manage_preferences_url",
                "list_unsubscribe_post",
            ] {
                map.remove(moment);
            }
            for (_, inner) in map.iter_mut() {
                *inner = without_moments(inner.take());
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                *item = without_moments(item.take());
            }
        }
        _ => {}
    }
    value
}

async fn get(app: &TestApp, path: &str, key: &str) -> Value {
    let response = app.get_with_key(path, key).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    json!({ "status": status, "body": without_moments(body) })
}

/// Everything a user of the app can see about the people of [`EVERYONE`]: each contact's
/// answer, events (ids, hashes, chain verdict), export and eligibility; the statistics,
/// dead letters, webhook states and tombstones.
async fn observe(app: &TestApp) -> Value {
    let admin = support::app::ADMIN_KEY;
    let mut people = serde_json::Map::new();
    for email in EVERYONE {
        let path = format!("/v1/contacts/{}", urlencode(email));
        let mut eligibility = serde_json::Map::new();
        for type_id in TYPES {
            eligibility.insert(
                type_id.into(),
                without_moments(app.eligibility(email, type_id).await),
            );
        }
        people.insert(
            email.into(),
            json!({
                "contact": get(app, &path, admin).await,
                "events": get(app, &format!("{path}/events"), admin).await,
                "export": get(app, &format!("{path}/export"), admin).await,
                "receipts": get(app, &format!("{path}/receipts"), admin).await,
                "eligibility": eligibility,
            }),
        );
    }
    let mut tombstones = get(app, "/v1/tombstones", admin).await;
    if let Some(list) = tombstones["body"]["tombstones"].as_array_mut() {
        list.sort_by_key(|t| t["contact_id"].as_str().unwrap_or_default().to_string());
    }
    // Redis keeps an endpoint's times to the millisecond (its key schema always has).
    let mut webhooks = get(app, "/v1/webhooks", admin).await;
    for endpoint in webhooks["body"]["webhooks"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        for field in ["last_failure_at", "last_success_at", "disabled_at"] {
            if let Some(at) = endpoint[field].as_str() {
                let at: chrono::DateTime<chrono::Utc> = at.parse().expect("a time");
                endpoint[field] = json!(at.timestamp_millis());
            }
        }
    }
    json!({
        "people": people,
        "quarantine": get(app, "/v1/quarantine", admin).await,
        "stats": get(app, "/v1/stats", admin).await,
        "dead_letters": get(app, "/v1/outbox/dead", admin).await,
        "webhooks": webhooks,
        "tombstones": tombstones,
    })
}

/// Fails naming each place where `found` differs from what the original answered.
fn assert_same(found: &Value, original: &Value, store: &str) {
    fn differences(found: &Value, original: &Value, path: String, out: &mut Vec<String>) {
        match (found, original) {
            (Value::Object(a), Value::Object(b)) => {
                for key in a.keys().chain(b.keys()) {
                    let (x, y) = (
                        a.get(key).unwrap_or(&Value::Null),
                        b.get(key).unwrap_or(&Value::Null),
                    );
                    if x != y && !out.iter().any(|o| o.starts_with(&format!("{path}/{key}:"))) {
                        differences(x, y, format!("{path}/{key}"), out);
                    }
                }
            }
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                for (index, (x, y)) in a.iter().zip(b).enumerate() {
                    differences(x, y, format!("{path}/{index}"), out);
                }
            }
            (a, b) if a != b => out.push(format!("{path}: {a} instead of {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    differences(found, original, String::new(), &mut out);
    assert!(
        out.is_empty(),
        "{store} answers differently from the original:\n{}",
        out.join("\n")
    );
}

/// Downloads `GET /v1/backup` into a file.
async fn download_backup(app: &TestApp, to: &Path) -> reqwest::header::HeaderMap {
    let response = app.get_with_key("/v1/backup", BACKUP_KEY).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("the dump");
    std::fs::write(to, &bytes).expect("write the dump");
    headers
}

/// The lines of a plain dump file.
fn dump_lines(bytes: &[u8]) -> Vec<String> {
    let decoder = zstd::stream::read::Decoder::new(bytes).expect("zstd");
    std::io::BufReader::new(decoder)
        .lines()
        .map(|line| line.expect("a line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_goes_embedded_to_redis_to_cluster_to_embedded_and_every_answer_stays_the_same() {
    let hook_port = support::free_port();
    let dir = tempfile::tempdir().expect("a folder");

    // The original, on the embedded store, backed up online by the running service.
    let original = spawn(Backend::Embedded, hook_port).await;
    fill(&original).await;
    let pending_link = original.confirmation_link(PENDING);
    let seen = observe(&original).await;
    assert_eq!(
        seen["people"][ERASED]["contact"]["status"], 404,
        "the erased contact is gone"
    );
    let receipts = &seen["people"][OPTED_IN]["receipts"]["body"]["receipts"];
    assert_eq!(
        receipts.as_array().map(Vec::len),
        Some(2),
        "a receipt per confirmed type, to carry through every store: {receipts}"
    );
    assert!(
        seen["dead_letters"]["body"]["dead_letters"]
            .as_array()
            .is_some_and(|dead| dead.iter().any(|d| d["kind"] == "mail")
                && dead.iter().any(|d| d["kind"] == "webhook")),
        "dead mail and webhook deliveries: {}",
        seen["dead_letters"]
    );
    assert!(seen["webhooks"]["body"]
        .to_string()
        .contains("last_failure_at"));
    let held = &seen["quarantine"]["body"]["quarantined"];
    assert_eq!(held.as_array().map(Vec::len), Some(1), "{held}");
    assert_eq!(held[0]["email"], HELD);
    let first_dump = dir.path().join("first.optin.zst");
    let headers = download_backup(&original, &first_dump).await;
    assert_eq!(headers["content-type"], "application/zstd");
    assert_eq!(headers["cache-control"], "no-store");
    let lines = dump_lines(&std::fs::read(&first_dump).expect("the dump"));
    let kinds: Vec<String> = lines
        .iter()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // The held signup rides in its contact's record, like the rest of what is held on
    // the address, so that an erasure takes both in one write.
    assert!(
        lines
            .iter()
            .any(|line| line.contains(HELD) && line.contains(r#""held":{"#)),
        "the held signup in its contact's line"
    );
    for kind in [
        "header",
        "contact",
        "tombstone",
        "mail_allowance",
        "job",
        "endpoint_state",
        "trailer",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "a {kind} record in {kinds:?}"
        );
    }

    // Into Redis, by `optin restore`.
    let mut redis = spawn(Backend::Redis, hook_port).await;
    redis.stop().await;
    let restored = optin::maintenance::restore(&redis.config(), &first_dump, None, None)
        .await
        .expect("restores");
    assert_eq!(restored.report.counts["contact"], 8);
    redis.start().await;
    assert_same(&observe(&redis).await, &seen, "Redis");

    // Into a Redis Cluster, by `optin migrate`.
    let mut cluster = spawn(Backend::RedisCluster, hook_port).await;
    cluster.stop().await;
    redis.stop().await;
    let migrated = optin::maintenance::migrate(&redis.config(), cluster.store_url())
        .await
        .expect("migrates");
    assert!(migrated.report.matches(), "{:?}", migrated.report);
    assert_eq!(migrated.report.copied, migrated.report.found);
    cluster.start().await;
    assert_same(&observe(&cluster).await, &seen, "the cluster");

    // Back to an embedded store, by `optin backup` of the cluster and a restore.
    let second_dump = dir.path().join("second.optin.zst");
    cluster.stop().await;
    optin::maintenance::backup(&cluster.config(), &second_dump, &[])
        .await
        .expect("backs up");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&second_dump)
            .expect("the dump")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "a dump only its owner reads");
    let mut last = spawn(Backend::Embedded, hook_port).await;
    last.stop().await;
    optin::maintenance::restore(&last.config(), &second_dump, None, None)
        .await
        .expect("restores");
    last.start().await;
    assert_same(&observe(&last).await, &seen, "the last embedded store");

    // The pending signup's confirmation mail, sent by the original, still confirms.
    let path = &pending_link[pending_link.find("/confirm/").expect("a confirm link")..];
    let confirmed = last
        .client
        .post(last.url(path))
        .send()
        .await
        .expect("confirm sent");
    assert_eq!(confirmed.status(), 200);
    assert_eq!(last.status(PENDING, "job-alerts").await, "opted_in");
    let events = last
        .admin_get_json(&format!("/v1/contacts/{}/events", urlencode(PENDING)))
        .await;
    assert_eq!(events["chain_valid"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_dump_opens_with_the_age_tool_and_restores_with_the_identity() {
    let dir = tempfile::tempdir().expect("a folder");
    let key = dir.path().join("key.txt");
    let made = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen runs (apt-get install age)");
    assert!(made.status.success(), "{made:?}");
    let recipient = std::fs::read_to_string(&key)
        .expect("the key")
        .lines()
        .find_map(|line| line.strip_prefix("# public key: ").map(str::to_string))
        .expect("the public key");
    let hook_port = support::free_port();
    let mut app = TestApp::spawn_with(Backend::Embedded, |s| {
        settings(s, hook_port);
        s.backup.age_recipients = optin::config::StringList(vec![recipient.clone()]);
    })
    .await;
    app.subscribe_confirmed(OPTED_IN, &["blog-updates"]).await;

    // The endpoint encrypts to `backup.age_recipients`.
    let served = dir.path().join("served.optin.zst.age");
    let headers = download_backup(&app, &served).await;
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".optin.zst.age"));
    let encrypted = std::fs::read(&served).expect("the dump");
    assert!(encrypted.starts_with(b"age-encryption.org/v1"));
    assert!(
        !String::from_utf8_lossy(&encrypted).contains("opted@"),
        "no address in the clear"
    );
    let plain = dir.path().join("served.optin.zst");
    let decrypted = Command::new("age")
        .arg("--decrypt")
        .arg("--identity")
        .arg(&key)
        .arg("--output")
        .arg(&plain)
        .arg(&served)
        .output()
        .expect("age runs");
    assert!(decrypted.status.success(), "{decrypted:?}");
    let lines = dump_lines(&std::fs::read(&plain).expect("decrypted"));
    let header: Value = serde_json::from_str(&lines[0]).expect("a header");
    assert_eq!(header["format"], "optin-dump");
    assert_eq!(header["version"], 1);
    assert_eq!(header["source"], "embedded");
    assert_eq!(header["consistency"], "snapshot");
    let trailer: Value = serde_json::from_str(lines.last().unwrap()).expect("a trailer");
    let mut digest = sha2::Sha256::new();
    for line in &lines[..lines.len() - 1] {
        digest.update(line.as_bytes());
        digest.update(b"\n");
    }
    assert_eq!(trailer["sha256"], hex::encode(digest.finalize()));
    assert_eq!(trailer["counts"]["contact"], 1);
    assert!(lines.iter().any(|line| line.contains(OPTED_IN)));

    // `optin backup --encrypt-to` and `optin restore --identity`, as an operator runs them.
    app.stop().await;
    let store_url = app.store_url().to_string();
    let process = ProcessSettings::new(&store_url, "file:///tmp");
    let written = dir.path().join("cli.optin.zst.age");
    let backup = run_configured(
        &process,
        support::free_port(),
        &[
            "backup",
            "--to",
            written.to_str().unwrap(),
            "--encrypt-to",
            &recipient,
        ],
    );
    assert!(backup.status.success(), "{backup:?}");
    let decrypted = Command::new("age")
        .args(["-d", "-i"])
        .arg(&key)
        .arg(&written)
        .output()
        .expect("age runs");
    assert!(decrypted.status.success(), "{decrypted:?}");
    assert!(dump_lines(&decrypted.stdout)[0].contains("optin-dump"));

    let target = tempfile::tempdir().expect("a folder");
    let target_url = target.path().join("restored.redb").display().to_string();
    let target_process = ProcessSettings::new(&target_url, "file:///tmp");
    let without_key = run_configured(
        &target_process,
        support::free_port(),
        &["restore", "--from", written.to_str().unwrap()],
    );
    assert!(!without_key.status.success());
    assert!(
        String::from_utf8_lossy(&without_key.stderr).contains("--identity"),
        "{without_key:?}"
    );
    let restore = run_configured(
        &target_process,
        support::free_port(),
        &[
            "restore",
            "--from",
            written.to_str().unwrap(),
            "--identity",
            key.to_str().unwrap(),
        ],
    );
    assert!(restore.status.success(), "{restore:?}");
    assert!(String::from_utf8_lossy(&restore.stdout).contains("1 contact"));
    let verify = run_configured(&target_process, support::free_port(), &["verify"]);
    assert!(verify.status.success(), "{verify:?}");
    assert!(String::from_utf8_lossy(&verify.stdout).contains("1 contacts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_endpoint_needs_a_backup_key_and_an_admin_key_is_not_one() {
    let app = spawn(Backend::Embedded, support::free_port()).await;
    let admin = app
        .get_with_key("/v1/backup", support::app::ADMIN_KEY)
        .await;
    assert_eq!(admin.status(), 403);
    let none = app.client.get(app.url("/v1/backup")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let backup = app.get_with_key("/v1/tombstones", BACKUP_KEY).await;
    assert_eq!(backup.status(), 403, "a backup key may do nothing else");
    let bad = app
        .get_with_key("/v1/tombstones?since=yesterday", support::app::ADMIN_KEY)
        .await;
    assert_eq!(bad.status(), 422);
    let problem: Value = bad.json().await.unwrap();
    assert_eq!(problem["field"], "since");
}

/// A restore is refused, before anything is written, into a store that holds anything,
/// and from a dump made under another index key; one that stops halfway leaves a mark
/// that stops the service from starting on that store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_are_refused_into_a_full_store_under_another_key_and_after_an_unfinished_one() {
    let dir = tempfile::tempdir().expect("a folder");
    let hook_port = support::free_port();
    let source = spawn(Backend::Embedded, hook_port).await;
    source
        .subscribe_confirmed(OPTED_IN, &["blog-updates"])
        .await;
    source
        .subscribe_confirmed(UNSUBSCRIBED, &["marketing"])
        .await;
    let dump = dir.path().join("dump.optin.zst");
    download_backup(&source, &dump).await;

    // Not empty: the target already holds a contact.
    let mut full = spawn(Backend::Redis, hook_port).await;
    full.subscribe_confirmed(RESTRICTED, &["blog-updates"])
        .await;
    full.stop().await;
    let error = optin::maintenance::restore(&full.config(), &dump, None, None)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("not empty"), "{error}");
    full.start().await;
    assert_eq!(
        full.contact(OPTED_IN).await.status(),
        404,
        "nothing written"
    );
    assert_eq!(full.status(RESTRICTED, "blog-updates").await, "opted_in");

    // Another index key.
    let other = tempfile::tempdir().expect("a folder");
    let other_url = other.path().join("other.redb").display().to_string();
    let foreign = run_configured(
        &ProcessSettings::new(&other_url, "file:///tmp").with_env(
            "OPTIN_SECURITY__INDEX_KEY",
            &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]),
        ),
        support::free_port(),
        &["restore", "--from", dump.to_str().unwrap()],
    );
    assert!(!foreign.status.success());
    assert!(
        String::from_utf8_lossy(&foreign.stderr).contains("another index key"),
        "{foreign:?}"
    );
    let reopened = optin::store::open(&other_url).await.expect("opens");
    assert!(
        reopened.is_empty().await.unwrap(),
        "nothing written, not even a mark"
    );
    drop(reopened);

    // A dump cut short: the restore writes what it read, then fails, and leaves its mark.
    let bytes = std::fs::read(&dump).expect("the dump");
    let lines = dump_lines(&bytes);
    let cut: String = lines[..lines.len() - 1]
        .iter()
        .flat_map(|line| [line.as_str(), "\n"])
        .collect();
    let cut_dump = dir.path().join("cut.optin.zst");
    std::fs::write(&cut_dump, zstd::encode_all(cut.as_bytes(), 3).unwrap()).unwrap();
    let mut target = spawn(Backend::Embedded, hook_port).await;
    target.stop().await;
    let error = optin::maintenance::restore(&target.config(), &cut_dump, None, None)
        .await
        .err()
        .expect("an incomplete dump fails");
    assert!(error.to_string().contains("incomplete"), "{error}");
    let refused = optin::startup::Application::build(
        target.config(),
        std::sync::Arc::new(optin::clock::SystemClock),
        optin::startup::Background::default(),
    )
    .await
    .err()
    .expect("serve refuses the store");
    let message = format!("{refused:#}");
    assert!(message.contains("unfinished restore"), "{message}");
    assert!(message.contains("optin restore"), "{message}");
    let again = optin::maintenance::restore(&target.config(), &dump, None, None)
        .await
        .err()
        .expect("a restore over an unfinished one is refused");
    assert!(again.to_string().contains("unfinished restore"), "{again}");

    // Emptied, the same store takes the whole dump and serves again.
    std::fs::remove_file(target.store_url()).expect("remove the store file");
    optin::maintenance::restore(&target.config(), &dump, None, None)
        .await
        .expect("restores");
    target.start().await;
    assert_eq!(target.status(OPTED_IN, "blog-updates").await, "opted_in");
}

/// Erasures made after a backup are applied again after restoring it, from the later
/// tombstone list or from a later dump; a person who came back is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_applies_the_erasures_made_after_its_dump() {
    let dir = tempfile::tempdir().expect("a folder");
    let hook_port = support::free_port();
    // Rectified after the dump: one person then erased at the new address, one not.
    let (moved_erased, moved_erased_new) =
        ("moved-erased@example.com", "moved-erased-new@example.com");
    let (moved, moved_new) = ("moved@example.com", "moved-new@example.com");
    let live = spawn(Backend::Embedded, hook_port).await;
    for email in [OPTED_IN, ERASED, RESTRICTED, moved_erased, moved] {
        live.subscribe_confirmed(email, &["blog-updates"]).await;
    }
    let old_dump = dir.path().join("old.optin.zst");
    download_backup(&live, &old_dump).await;
    live.advance_clock(Duration::hours(1));
    for (old, new) in [(moved_erased, moved_erased_new), (moved, moved_new)] {
        let rectified = live
            .admin(
                reqwest::Method::POST,
                &format!("/v1/contacts/{}/rectification", urlencode(old)),
            )
            .await
            .json(&json!({ "new_email": new }))
            .send()
            .await
            .expect("rectification sent");
        ok(rectified, "rectify").await;
    }
    for email in [ERASED, RESTRICTED, moved_erased_new] {
        ok(
            live.admin_send(
                reqwest::Method::DELETE,
                &format!("/v1/contacts/{}", urlencode(email)),
            )
            .await,
            "erase",
        )
        .await;
    }
    let since = urlencode("2000-01-01T00:00:00Z");
    let list = live
        .get_with_key(
            &format!("/v1/tombstones?since={since}"),
            support::app::ADMIN_KEY,
        )
        .await;
    assert_eq!(list.status(), 200);
    let list_file = dir.path().join("tombstones.json");
    let list_body = list.bytes().await.unwrap();
    let parsed: Value = serde_json::from_slice(&list_body).expect("JSON");
    // Three erasures, and the person's address before their rectification, which the
    // erasure reached too; the move that was not followed by an erasure is no erasure.
    assert_eq!(
        parsed["tombstones"].as_array().unwrap().len(),
        4,
        "{parsed}"
    );
    std::fs::write(&list_file, &list_body).unwrap();
    let later_dump = dir.path().join("later.optin.zst");
    download_backup(&live, &later_dump).await;

    for later in [&list_file, &later_dump] {
        let mut target = spawn(Backend::Redis, hook_port).await;
        target.stop().await;
        let outcome =
            optin::maintenance::restore(&target.config(), &old_dump, None, Some(later.as_path()))
                .await
                .expect("restores");
        assert_eq!(outcome.report.erased, 3, "from {}", later.display());
        target.start().await;
        assert_eq!(target.status(OPTED_IN, "blog-updates").await, "opted_in");
        assert_eq!(
            target.status(moved, "blog-updates").await,
            "opted_in",
            "a rectification is no erasure: the dump's contact stays"
        );
        for email in [ERASED, RESTRICTED, moved_erased] {
            assert_eq!(
                target.contact(email).await.status(),
                404,
                "{email} erased again"
            );
        }
        let tombstones = target.admin_get_json("/v1/tombstones").await;
        assert_eq!(
            by_contact(&tombstones),
            by_contact(&parsed),
            "each erasure's own tombstone: its time, reason and request"
        );
    }
}

fn by_contact(list: &Value) -> BTreeMap<String, Value> {
    list["tombstones"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| (t["contact_id"].as_str().unwrap().to_string(), t.clone()))
        .collect()
}

/// `optin verify` finds a changed byte in a stored event and names the contact, masked.
async fn verify_names_a_contact_whose_stored_event_changed(backend: Backend) {
    let mut app = spawn(backend, support::free_port()).await;
    app.subscribe_confirmed(OPTED_IN, &["blog-updates", "marketing"])
        .await;
    app.subscribe_confirmed(RESTRICTED, &["blog-updates"]).await;
    app.stop().await;
    let process = ProcessSettings::new(app.store_url(), "file:///tmp");
    let clean = run_configured(&process, support::free_port(), &["verify"]);
    assert!(clean.status.success(), "{clean:?}");
    assert!(String::from_utf8_lossy(&clean.stdout).contains("0 chains broken"));

    let id = app
        .config()
        .index
        .contact_id(&optin::domain::EmailAddress::parse(OPTED_IN).expect("an address"));
    change_one_byte_of_an_event(&mut app, &id).await;
    let found = run_configured(&process, support::free_port(), &["verify"]);
    assert!(!found.status.success(), "a broken chain fails the command");
    let stdout = String::from_utf8_lossy(&found.stdout);
    assert!(stdout.contains("BROKEN o***@example.com"), "{stdout}");
    assert!(!stdout.contains(OPTED_IN), "the address only masked");
    assert!(
        !stdout.contains("r***@example.com"),
        "only the changed contact: {stdout}"
    );
    assert!(stdout.contains("1 chains broken"), "{stdout}");
}

/// Changes one byte inside the first stored event of contact `id`, behind the store's
/// back: in the redb file, or in the Redis event log.
async fn change_one_byte_of_an_event(app: &mut TestApp, id: &optin::domain::ContactId) {
    use redb::ReadableTable;
    const EVENTS: redb::TableDefinition<(&str, u64), &[u8]> = redb::TableDefinition::new("events");
    match app.backend {
        Backend::Embedded => {
            let db = redb::Database::create(app.store_url()).expect("the store file");
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(EVENTS).unwrap();
                let mut event = table
                    .get((id.as_str(), 1))
                    .unwrap()
                    .expect("the first event")
                    .value()
                    .to_vec();
                let text = String::from_utf8(event.clone()).unwrap();
                // The recorded IP address: the event still reads, but its hash changed.
                let at = text.find("\"ip\":\"127.0.0.1\"").expect("an IP address") + 14;
                event[at] = b'9';
                let changed = String::from_utf8(event.clone()).unwrap();
                assert_ne!(changed, text);
                table.insert((id.as_str(), 1), event.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        Backend::Redis => {
            let redis = app.redis().expect("a Redis");
            let mut connection = redis.connection();
            let bucket = id.bucket(optin::store::redis::SHARDS);
            let key = format!("optin:{{s{bucket}}}:ev:{id}");
            let log: Vec<u8> = ::redis::cmd("GET")
                .arg(&key)
                .query(&mut connection)
                .unwrap();
            let mut frames = support::redis_server::event_log_frames(&log);
            let first = &mut frames[0];
            // An opt-in with its receipt is in format 2: read and write it in its own.
            let format = optin::store::compact::Format::of_byte(first[0]).expect("compact");
            let json = optin::store::compact::unpack_as(format, &first[1..]).expect("compact");
            let mut json = String::from_utf8(json).unwrap();
            json = json.replacen("\"kind\":\"status_changed\"", "\"kind\":\"restricted\"", 1);
            *first = optin::store::compact::pack_as(
                format,
                optin::store::compact::Literals::Coded,
                json.as_bytes(),
            )
            .unwrap();
            let _: () = ::redis::cmd("SET")
                .arg(&key)
                .arg(support::redis_server::event_log(&frames))
                .query(&mut connection)
                .unwrap();
        }
        Backend::RedisCluster => unreachable!("not run on a cluster"),
    }
}

on_embedded_and_redis!(verify_names_a_contact_whose_stored_event_changed);

/// A dump kept for years is checked offline, with no configuration and no store: its
/// trailer and every chain in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_is_verified_offline_and_a_changed_event_in_it_is_found() {
    let dir = tempfile::tempdir().expect("a folder");
    let app = spawn(Backend::Embedded, support::free_port()).await;
    app.subscribe_confirmed(OPTED_IN, &["blog-updates"]).await;
    let dump = dir.path().join("dump.optin.zst");
    download_backup(&app, &dump).await;
    let verify = |path: &Path| {
        support::process::optin_command(dir.path())
            .args(["verify", "--from"])
            .arg(path)
            .output()
            .expect("optin runs")
    };
    let clean = verify(&dump);
    assert!(clean.status.success(), "{clean:?}");
    assert!(
        String::from_utf8_lossy(&clean.stdout).contains("1 contacts, 1 events: 0 chains broken"),
        "{clean:?}"
    );

    // An event changed in the dump, and the trailer recomputed to hide it: the chain
    // still tells.
    let lines = dump_lines(&std::fs::read(&dump).unwrap());
    let mut changed: Vec<String> = lines[..lines.len() - 1]
        .iter()
        .map(|line| match line.split_once("\"events\":[") {
            // Only inside the events: the contact's own fields are not chained.
            Some((contact, events)) => format!(
                "{contact}\"events\":[{}",
                events.replacen("\"source\":\"confirm_link\"", "\"source\":\"admin_api\"", 1)
            ),
            None => line.clone(),
        })
        .collect();
    assert_ne!(changed, lines[..lines.len() - 1].to_vec());
    let mut digest = sha2::Sha256::new();
    for line in &changed {
        digest.update(line.as_bytes());
        digest.update(b"\n");
    }
    let mut trailer: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    trailer["sha256"] = json!(hex::encode(digest.finalize()));
    changed.push(trailer.to_string());
    let text: String = changed
        .iter()
        .flat_map(|line| [line.as_str(), "\n"])
        .collect();
    let forged = dir.path().join("forged.optin.zst");
    std::fs::write(&forged, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
    let found = verify(&forged);
    assert!(!found.status.success());
    assert!(
        String::from_utf8_lossy(&found.stdout).contains("BROKEN o***@example.com"),
        "{found:?}"
    );

    // A dump with a changed byte and its old trailer is refused as a whole.
    let mut reader = std::io::BufReader::new(
        zstd::stream::read::Decoder::new(std::fs::File::open(&dump).unwrap()).unwrap(),
    );
    let mut plain = String::new();
    reader.read_to_string(&mut plain).unwrap();
    let tampered = plain.replacen("\"locale\":\"en\"", "\"locale\":\"nl\"", 1);
    assert_ne!(tampered, plain);
    let tampered_path = dir.path().join("tampered.optin.zst");
    std::fs::write(
        &tampered_path,
        zstd::encode_all(tampered.as_bytes(), 3).unwrap(),
    )
    .unwrap();
    let refused = verify(&tampered_path);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("trailer"),
        "{refused:?}"
    );
}
