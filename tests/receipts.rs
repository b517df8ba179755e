//! Consent receipts and the record of processing.
//!
//! Receipts are checked with implementations optin's authors did not write: jwcrypto
//! verifies each against the JWK Set the running app serves, and PyLD expands its
//! payload as JSON-LD (tests/receipts/verify.sh makes their venv). Keys come from
//! `optin keys receipt`; the opt-in they record is a real signup and confirmation.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use optin::config::{Config, ControllerSettings, Settings, StringList};
use optin::domain::{EmailAddress, Event, EventKind, Status};
use optin::receipts::{Receipt, ReceiptFacts};
use optin::service::processing_record::{ProcessingRecord, RecordInputs, StoreFacts};
use optin::webhooks::EndpointSettings;
use secrecy::SecretString;
use serde_json::Value;
use support::app::{test_settings, urlencode, Backend, TestApp};

const ANN: &str = "ann@example.com";
const BLOG: &str = "blog-updates";

fn optin(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_optin"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the optin binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `optin keys receipt --out FILE`; gives the kid it printed.
fn new_key(out: &Path) -> String {
    let output = optin(
        &["keys", "receipt", "--out", out.to_str().unwrap()],
        out.parent().unwrap(),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    stdout
        .split("its kid is ")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_else(|| panic!("no kid printed: {stdout}"))
        .to_string()
}

fn with_receipts(settings: &mut Settings, keys: &[&Path]) {
    settings.consent.receipt_keys =
        StringList(keys.iter().map(|k| k.display().to_string()).collect());
    settings.consent.controller = Some(ControllerSettings {
        name: "Example B.V.".into(),
        email: "privacy@example.com".into(),
        url: "https://example.com".into(),
    });
}

/// What jwcrypto and PyLD made of a receipt.
struct Verdict {
    verified: bool,
    report: Value,
}

fn independent_check(jwks: &str, compact: &str) -> Verdict {
    let dir = tempfile::tempdir().unwrap();
    let jwks_file = dir.path().join("jwks.json");
    let receipt_file = dir.path().join("consent-receipt.jws");
    std::fs::write(&jwks_file, jwks).unwrap();
    std::fs::write(&receipt_file, compact).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/receipts/verify.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg(&jwks_file)
        .arg(&receipt_file)
        .output()
        .expect("run tests/receipts/verify.sh");
    let stdout = text(&output.stdout);
    let verified = match output.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "verify.sh could not run the check ({}): {stdout} {}",
            output.status,
            text(&output.stderr)
        ),
    };
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("verify.py printed no JSON ({e}): {stdout}"));
    assert_eq!(report["verified"], verified, "{report}");
    Verdict { verified, report }
}

/// The served JWK Set, as text, after checking how it is served.
async fn served_jwks(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/jwk-set+json"
    );
    response.text().await.unwrap()
}

/// The opt-in event of `email` to `subscription_type`, as the admin API shows it.
async fn opt_in_event(app: &TestApp, email: &str, subscription_type: &str) -> (Value, Event) {
    let provenance = app
        .admin_get_json(&format!("/v1/contacts/{}/events", urlencode(email)))
        .await;
    assert_eq!(provenance["chain_valid"], true);
    let json = provenance["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["to"] == "opted_in" && e["type"] == subscription_type)
        .unwrap_or_else(|| panic!("no opt-in event: {provenance}"))
        .clone();
    let event: Event = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(event.kind, EventKind::StatusChanged);
    assert_eq!(event.to, Some(Status::OptedIn));
    (json, event)
}

/// Issues the receipt the service would issue for that opt-in.
async fn receipt_for(app: &TestApp, email: &str, subscription_type: &str) -> (Value, Receipt) {
    let (json, event) = opt_in_event(app, email, subscription_type).await;
    let state = app.state();
    let subscriptions = &state.subscriptions;
    let config = subscriptions.config();
    let contact = subscriptions.contact_id(&EmailAddress::parse(email).unwrap());
    let withdraw = url::Url::parse(&app.unsubscribe_link(email, subscription_type).await).unwrap();
    let facts = ReceiptFacts::for_event(
        &event,
        contact,
        config.catalog.get(subscription_type).unwrap(),
        config.catalog.default_locale(),
        withdraw,
    )
    .unwrap();
    let issuer = config.receipts.as_ref().expect("receipts are on");
    (json, issuer.issue(&facts, subscriptions.now()).unwrap())
}

/// The compact receipt with one base64url character changed, to another valid one, in
/// the middle of the given part (0 header, 1 payload, 2 signature).
fn with_a_changed_byte(compact: &str, part: usize) -> String {
    let mut parts: Vec<Vec<u8>> = compact.split('.').map(|p| p.as_bytes().to_vec()).collect();
    let middle = parts[part].len() / 2;
    let byte = &mut parts[part][middle];
    *byte = if *byte == b'A' { b'B' } else { b'A' };
    let parts: Vec<String> = parts
        .into_iter()
        .map(|p| String::from_utf8(p).unwrap())
        .collect();
    parts.join(".")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_of_a_real_opt_in_verifies_with_jwcrypto_against_the_served_jwks() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("receipt.pem");
    let kid = new_key(&key);
    let app = TestApp::spawn_with(Backend::Embedded, |s| with_receipts(s, &[&key])).await;
    app.subscribe_confirmed(ANN, &[BLOG]).await;
    let (event, receipt) = receipt_for(&app, ANN, BLOG).await;
    assert_eq!(receipt.kid, kid);

    let jwks = served_jwks(&app).await;
    let published: Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(published["keys"].as_array().unwrap().len(), 1);
    let jwk = &published["keys"][0];
    assert_eq!(
        (
            &jwk["kty"],
            &jwk["crv"],
            &jwk["alg"],
            &jwk["use"],
            &jwk["kid"]
        ),
        (
            &Value::from("OKP"),
            &Value::from("Ed25519"),
            &Value::from("EdDSA"),
            &Value::from("sig"),
            &Value::from(kid.as_str())
        )
    );
    assert!(jwk.get("d").is_none(), "never the private key");

    let verdict = independent_check(&jwks, &receipt.compact);
    assert!(verdict.verified, "{}", verdict.report);
    let report = &verdict.report;
    assert_eq!(report["sha256"], receipt.sha256.as_str());
    assert_eq!(report["header"]["alg"], "EdDSA");
    assert_eq!(report["header"]["kid"], kid.as_str());

    // The payload states the event it belongs to.
    let payload = &report["payload"];
    assert_eq!(payload["event_id"], event["id"]);
    assert_eq!(payload["prev_hash"], event["prev_hash"]);
    assert_eq!(payload["iss"], app.address.as_str());
    let record = &payload["dpv:hasRecordOfActivity"];
    assert_eq!(record["dct:identifier"], event["id"]);
    let contact = app
        .state()
        .subscriptions
        .contact_id(&EmailAddress::parse(ANN).unwrap());
    assert_eq!(
        record["dpv:hasDataSubject"]["dct:identifier"],
        contact.as_str()
    );
    let notice = &record["dpv:hasNotice"];
    assert_eq!(notice["dct:identifier"], event["consent_notice"]["id"]);
    assert_eq!(notice["schema:version"], event["consent_notice"]["version"]);
    assert_eq!(notice["schema:sha256"], event["consent_notice"]["sha256"]);
    assert_eq!(notice["dct:language"], event["consent_notice"]["locale"]);
    let status = &record["dpv:hasConsentStatus"];
    assert_eq!(status["dpv:isIndicatedAtTime"]["@value"], event["at"]);
    assert_eq!(status["dpv:hasIndicationMethod"], event["source"]);
    let process = &record["dpv:hasProcess"];
    assert_eq!(process["dpv:hasPurpose"]["dct:identifier"], BLOG);
    assert_eq!(process["dpv:hasPurpose"]["dct:title"], "Blog updates");
    assert_eq!(
        record["dpv:hasConsentControl"]["dpv:isExercisedAt"]["@id"],
        app.unsubscribe_link(ANN, BLOG).await.as_str()
    );
    assert!(
        !report.to_string().contains(ANN),
        "the address is not in the receipt"
    );

    // PyLD expands the payload to DPV's own IRIs: no prefix is left unexpanded.
    let has = |field: &str, iri: &str| report[field].as_array().unwrap().iter().any(|v| v == iri);
    for iri in ["ConsentReceipt", "ConsentRecord", "ConsentGiven", "Process"] {
        assert!(
            has("types", &format!("https://w3id.org/dpv#{iri}")),
            "{iri}"
        );
    }
    for iri in [
        "hasRecordOfActivity",
        "hasDataSubject",
        "hasDataController",
        "hasPurpose",
        "hasPersonalData",
        "hasLegalBasis",
        "hasNotice",
        "hasConsentStatus",
        "isIndicatedAtTime",
        "hasConsentControl",
        "isExercisedAt",
        "hasDuration",
    ] {
        assert!(
            has("properties", &format!("https://w3id.org/dpv#{iri}")),
            "{iri}"
        );
    }
    assert!(has("ids", "https://w3id.org/dpv/legal/eu/gdpr#A6-1-a"));
    assert!(has("ids", "https://w3id.org/dpv/pd#EmailAddress"));
    assert!(
        has("ids", "https://w3id.org/dpv/pd#IPAddress"),
        "the test app records IPs"
    );
    let unexpanded: Vec<&Value> = ["types", "properties", "ids"]
        .iter()
        .flat_map(|field| report[*field].as_array().unwrap())
        .filter(|iri| {
            let iri = iri.as_str().unwrap();
            [
                "dpv:", "pd:", "eu-gdpr:", "dct:", "schema:", "skos:", "rdf:", "xsd:",
            ]
            .iter()
            .any(|prefix| iri.starts_with(prefix))
        })
        .collect();
    assert!(unexpanded.is_empty(), "{unexpanded:?}");

    // One changed character anywhere and the receipt no longer verifies.
    for (part, what) in [(1, "payload"), (2, "signature"), (0, "header")] {
        let forged = with_a_changed_byte(&receipt.compact, part);
        let verdict = independent_check(&jwks, &forged);
        assert!(!verdict.verified, "a changed {what} verified");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rotation_old_receipts_still_verify_and_new_ones_name_the_new_key() {
    let keys = tempfile::tempdir().unwrap();
    let old_key = keys.path().join("2025.pem");
    let new_key_file = keys.path().join("2026.pem");
    let old_kid = new_key(&old_key);
    let new_kid = new_key(&new_key_file);

    let before = TestApp::spawn_with(Backend::Embedded, |s| with_receipts(s, &[&old_key])).await;
    before.subscribe_confirmed(ANN, &[BLOG]).await;
    let (_, old_receipt) = receipt_for(&before, ANN, BLOG).await;
    assert_eq!(old_receipt.kid, old_kid);

    let after = TestApp::spawn_with(Backend::Embedded, |s| {
        with_receipts(s, &[&new_key_file, &old_key]);
    })
    .await;
    after.subscribe_confirmed(ANN, &[BLOG]).await;
    let (_, new_receipt) = receipt_for(&after, ANN, BLOG).await;
    assert_eq!(new_receipt.kid, new_kid);

    let jwks = served_jwks(&after).await;
    let published: Value = serde_json::from_str(&jwks).unwrap();
    let kids: Vec<&str> = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
    for receipt in [&old_receipt, &new_receipt] {
        let verdict = independent_check(&jwks, &receipt.compact);
        assert!(verdict.verified, "{}", verdict.report);
    }
    // Without the old key in the set, its receipts no longer verify.
    let before_rotation = served_jwks(&before).await;
    assert!(!independent_check(&before_rotation, &new_receipt.compact).verified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_receipt_keys_the_key_set_is_empty() {
    let app = TestApp::spawn(Backend::Embedded).await;
    assert!(app.state().subscriptions.config().receipts.is_none());
    let jwks: Value = serde_json::from_str(&served_jwks(&app).await).unwrap();
    assert_eq!(jwks, serde_json::json!({ "keys": [] }));
}

#[test]
fn keys_receipt_writes_a_private_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("receipt.pem");
    let kid = new_key(&out);
    assert_eq!(kid.len(), 43, "a base64url SHA-256: {kid}");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let pem = std::fs::read_to_string(&out).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));

    let again = optin(
        &["keys", "receipt", "--out", out.to_str().unwrap()],
        dir.path(),
    );
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("never overwrites"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), pem);
}

/// `serve` makes the key on its first start; `check-config` (which writes nothing) then
/// finds and names it, and leaves it as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_setup_makes_its_receipt_key_once() {
    let mut process = support::process::OptinProcess::start_bare(&[]).await;
    process.kill9();
    let key = process.dir().join("data/receipt-key.pem");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let pem = std::fs::read_to_string(&key).unwrap();
    let first = optin(&["check-config"], process.dir());
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("Consent receipts: signed with kid"),
        "{}",
        text(&first.stdout)
    );
    let second = optin(&["check-config"], process.dir());
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        pem,
        "kept, not remade"
    );
    assert_eq!(text(&first.stdout), text(&second.stdout));
}

fn settings() -> Settings {
    test_settings("/nonexistent/optin.redb", "file:///nonexistent", 8080)
}

fn refusal(settings: Settings) -> String {
    Config::from_settings(settings)
        .err()
        .map_or_else(|| "accepted".into(), |e| e.to_string())
}

#[test]
fn consent_settings_that_cannot_work_are_refused_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let mut unreadable = settings();
    with_receipts(&mut unreadable, &[&missing]);
    let message = refusal(unreadable);
    assert!(message.contains("`consent.receipt_keys`"), "{message}");
    assert!(message.contains("missing.pem"), "{message}");

    let not_a_key = dir.path().join("not-a-key.pem");
    std::fs::write(
        &not_a_key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let mut damaged = settings();
    with_receipts(&mut damaged, &[&not_a_key]);
    let message = refusal(damaged);
    assert!(message.contains("`consent.receipt_keys`"), "{message}");
    assert!(message.contains("not an Ed25519 key"), "{message}");

    let key = dir.path().join("key.pem");
    new_key(&key);
    let mut nobody = settings();
    with_receipts(&mut nobody, &[&key]);
    nobody.consent.controller = None;
    assert!(refusal(nobody).contains("`consent.controller`"));

    let mut bad_email = settings();
    with_receipts(&mut bad_email, &[&key]);
    bad_email.consent.controller.as_mut().unwrap().email = "privacy".into();
    assert!(refusal(bad_email).contains("`consent.controller.email`"));

    let mut bad_url = settings();
    with_receipts(&mut bad_url, &[&key]);
    bad_url.consent.controller.as_mut().unwrap().url = "example.com".into();
    assert!(refusal(bad_url).contains("`consent.controller.url`"));

    let mut no_sweep = settings();
    no_sweep.consent.sweep_minutes = 0;
    assert!(refusal(no_sweep).contains("`consent.sweep_minutes`"));

    let mut renewal_too_late = settings();
    renewal_too_late.subscription_types[1].consent_valid_days = Some(20);
    let message = refusal(renewal_too_late);
    assert!(message.contains("`subscription_types`"), "{message}");
    assert!(message.contains("consent_renewal_days (30)"), "{message}");

    let mut fine = settings();
    with_receipts(&mut fine, &[&key]);
    fine.subscription_types[1].consent_valid_days = Some(365);
    assert_eq!(refusal(fine), "accepted");
}

fn endpoint(id: &str, url: &str, secret: &str) -> EndpointSettings {
    EndpointSettings {
        id: id.into(),
        url: url.into(),
        secret: SecretString::from(secret.to_string()),
        events: None,
        subscription_types: None,
    }
}

#[test]
fn the_processing_record_names_recipients_by_host_and_holds_no_secret() {
    const SMTP_PASSWORD: &str = "Sup3r-Secret-Pa55";
    let crm_secret = optin::webhooks::SigningKey::generate().unwrap();
    let warehouse_secret = optin::webhooks::SigningKey::generate().unwrap();
    let mut settings = settings();
    settings.mail.url = SecretString::from(format!(
        "smtp://mailer:{SMTP_PASSWORD}@smtp.relay.example:587?tls=starttls"
    ));
    let mut crm = endpoint(
        "crm",
        "https://crm.example.com/hooks/optin?token=crm-path-token",
        &crm_secret,
    );
    crm.subscription_types = Some(vec![BLOG.to_string()]);
    crm.events = Some(vec!["subscription.opted_in".into()]);
    let warehouse = endpoint(
        "warehouse",
        "https://warehouse.example.net/ingest",
        &warehouse_secret,
    );
    settings.webhooks.endpoints = vec![crm, warehouse];
    settings.feedback.providers = vec!["ses".into(), "postmark".into()];
    settings.privacy.retain_inactive_days = Some(400);
    settings.subscription_types[1].consent_valid_days = Some(730);
    let config = Config::from_settings(settings).expect("valid settings");

    let store = StoreFacts {
        lawful_bases: [(
            BLOG.to_string(),
            [(optin::domain::LawfulBasis::Consent, 12)].into(),
        )]
        .into(),
        dump_encryption: false,
    };
    let now = chrono::Utc::now();
    let record = ProcessingRecord::build(&RecordInputs::from_config(&config, store, now));
    let json = serde_json::to_value(&record).unwrap();
    let markdown = record.to_markdown();

    let recipients = json["recipients"].to_string();
    for host in [
        "crm.example.com",
        "warehouse.example.net",
        "smtp.relay.example",
    ] {
        assert!(recipients.contains(host), "{host} in {recipients}");
        assert!(markdown.contains(host), "{host} in the document");
    }
    for name in ["Amazon SES", "Postmark"] {
        assert!(recipients.contains(name), "{name} in {recipients}");
        assert!(markdown.contains(name), "{name} in the document");
    }
    assert!(!recipients.contains("SendGrid"));

    // The crm endpoint takes only blog opt-ins; the warehouse every change.
    let activity = |id: &str| {
        json["activities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["subscription_type"] == id)
            .unwrap()
            .clone()
    };
    let blog = activity(BLOG);
    let webhook_hosts = |activity: &Value| -> Vec<String> {
        activity["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "webhook")
            .map(|r| r["host"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        webhook_hosts(&blog),
        ["crm.example.com", "warehouse.example.net"]
    );
    assert_eq!(
        webhook_hosts(&activity("job-alerts")),
        ["warehouse.example.net"]
    );
    assert_eq!(blog["lawful_bases"][0]["lawful_basis"], "consent");
    assert_eq!(blog["lawful_bases"][0]["gdpr_article"], "Art. 6(1)(a)");
    assert_eq!(blog["lawful_bases"][0]["contacts"], 12);
    assert_eq!(blog["retention"]["consent_valid_days"], 730);
    assert_eq!(blog["retention"]["inactive_contact_days"], 400);
    assert_eq!(blog["retention"]["unconfirmed_signup_days"], 7);
    assert!(markdown.contains("  - consent (Art. 6(1)(a)): 12 contacts"));

    for secret in [
        SMTP_PASSWORD,
        "mailer",
        crm_secret.as_str(),
        warehouse_secret.as_str(),
        "crm-path-token",
        "/hooks/optin",
    ] {
        assert!(!json.to_string().contains(secret), "{secret} in the JSON");
        assert!(!markdown.contains(secret), "{secret} in the document");
    }
    assert!(!json.to_string().contains("test-admin-key"));
}
