//! Consent receipts and the record of processing.
//!
//! Receipts are checked with implementations optin's authors did not write: jwcrypto
//! verifies each against the JWK Set the running app serves, and PyLD expands its
//! payload as JSON-LD (tests/receipts/verify.sh makes their venv). Keys come from
//! `optin keys receipt`; the receipts are the ones the running app issued for real
//! opt-ins (a confirmation, the preference center, an import, an admin's change), taken
//! from the mail the person got and from the admin API.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use optin::clock::Clock;
use optin::config::{Config, ControllerSettings, Settings, StringList};
use optin::domain::EmailAddress;
use optin::service::processing_record::{ProcessingRecord, RecordInputs, StoreFacts};
use optin::webhooks::EndpointSettings;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};
use support::app::{test_settings, urlencode, Backend, TestApp};
use support::smtp_sink::ReceivedMail;

const ANN: &str = "ann@example.com";
const BOB: &str = "bob@example.com";
const CAT: &str = "cat@example.com";
const DAN: &str = "dan@example.com";
const EVE: &str = "eve@example.com";
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

/// The provenance log of `email`, after checking that its hash chain verifies.
async fn events_of(app: &TestApp, email: &str) -> Vec<Value> {
    let provenance = app
        .admin_get_json(&format!("/v1/contacts/{}/events", urlencode(email)))
        .await;
    assert_eq!(provenance["chain_valid"], true, "{provenance}");
    provenance["events"].as_array().unwrap().clone()
}

/// The newest opt-in event of `email` to `subscription_type`, as the admin API shows it.
async fn opt_in_event(app: &TestApp, email: &str, subscription_type: &str) -> Value {
    events_of(app, email)
        .await
        .into_iter()
        .rev()
        .find(|e| e["to"] == "opted_in" && e["type"] == subscription_type)
        .unwrap_or_else(|| panic!("no opt-in event of {subscription_type}"))
}

/// The receipts the admin API lists for `email`, oldest first.
async fn receipts_of(app: &TestApp, email: &str) -> Vec<Value> {
    let answer = app
        .admin_get_json(&format!("/v1/contacts/{}/receipts", urlencode(email)))
        .await;
    answer["receipts"].as_array().unwrap().clone()
}

/// The compact receipt the admin API lists for `event`, after checking that the event
/// records its hash.
async fn receipt_of_event(app: &TestApp, email: &str, event: &Value) -> String {
    let receipts = receipts_of(app, email).await;
    let listed = receipts
        .iter()
        .find(|r| r["event_id"] == event["id"])
        .unwrap_or_else(|| panic!("no receipt for event {}: {receipts:?}", event["id"]));
    let compact = listed["receipt"].as_str().unwrap().to_string();
    assert_eq!(listed["sha256"], sha256_hex(&compact));
    assert_eq!(
        event["receipt_sha256"],
        sha256_hex(&compact),
        "the event records the receipt's hash"
    );
    assert!(event.get("receipt").is_none(), "events show the hash only");
    compact
}

/// NDJSON: one line per value.
fn ndjson(lines: &[Value]) -> String {
    lines.iter().fold(String::new(), |mut body, line| {
        body.push_str(&line.to_string());
        body.push('\n');
        body
    })
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// The receipt attached to the newest mail to `email` that carries one, and that mail.
fn mailed_receipt(app: &TestApp, email: &str) -> (ReceivedMail, String) {
    let mail = app
        .mails_to(email)
        .into_iter()
        .rev()
        .find(|m| m.attachment("consent-receipt.jws").is_some())
        .unwrap_or_else(|| panic!("no receipt mailed to {email}"));
    let bytes = mail.attachment("consent-receipt.jws").unwrap();
    (
        mail,
        String::from_utf8(bytes).expect("a compact JWS is ASCII"),
    )
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
async fn a_confirmed_opt_in_mails_its_receipt_which_jwcrypto_verifies_against_the_served_jwks() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("receipt.pem");
    let kid = new_key(&key);
    let app = TestApp::spawn_with(Backend::Embedded, |s| with_receipts(s, &[&key])).await;
    app.subscribe_confirmed(ANN, &[BLOG]).await;
    assert_eq!(app.drain_outbox().await, 1, "the receipt mail");

    // The person's mail: the receipt attached, what it says in words, and the
    // one-click headers of every mail of a type.
    let (mail, compact) = mailed_receipt(&app, ANN);
    assert_eq!(mail.subject(), "You're subscribed to Blog updates");
    assert_eq!(mail.content_type(), "multipart/mixed");
    assert!(mail
        .header("List-Unsubscribe")
        .is_some_and(|h| h.contains("/unsubscribe/")));
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let text = mail.text_body();
    assert!(text.contains(&sha256_hex(&compact)), "{text}");
    assert!(text.contains("/.well-known/jwks.json"), "{text}");
    assert!(
        text.contains("Example B.V. (privacy@example.com)"),
        "{text}"
    );

    // The same receipt is listed for the admin, and its event records its hash.
    let event = opt_in_event(&app, ANN, BLOG).await;
    assert_eq!(receipt_of_event(&app, ANN, &event).await, compact);

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

    let verdict = independent_check(&jwks, &compact);
    assert!(verdict.verified, "{}", verdict.report);
    let report = &verdict.report;
    assert_eq!(report["sha256"], event["receipt_sha256"]);
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
    assert_eq!(status["@type"][0], "dpv:ConsentGiven");
    assert_eq!(status["dpv:isIndicatedAtTime"]["@value"], event["at"]);
    // How: the confirmation's method, which the event records beside its source.
    assert_eq!(status["dpv:hasIndicationMethod"], event["confirm_method"]);
    assert_eq!(status["dpv:hasDuration"]["@type"], "dpv:UntilEventDuration");
    let process = &record["dpv:hasProcess"];
    assert_eq!(process["dpv:hasPurpose"]["dct:identifier"], BLOG);
    assert_eq!(process["dpv:hasPurpose"]["dct:title"], "Blog updates");
    let withdraw = record["dpv:hasConsentControl"]["dpv:isExercisedAt"]["@id"]
        .as_str()
        .unwrap();
    assert!(
        withdraw.starts_with(&app.url("/unsubscribe/")),
        "{withdraw}"
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
        let forged = with_a_changed_byte(&compact, part);
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
    let event = opt_in_event(&before, ANN, BLOG).await;
    let old_receipt = receipt_of_event(&before, ANN, &event).await;

    let after = TestApp::spawn_with(Backend::Embedded, |s| {
        with_receipts(s, &[&new_key_file, &old_key]);
    })
    .await;
    after.subscribe_confirmed(ANN, &[BLOG]).await;
    let event = opt_in_event(&after, ANN, BLOG).await;
    let new_receipt = receipt_of_event(&after, ANN, &event).await;
    let listed = receipts_of(&after, ANN).await;
    assert_eq!(listed[0]["kid"], new_kid.as_str());

    let jwks = served_jwks(&after).await;
    let published: Value = serde_json::from_str(&jwks).unwrap();
    let kids: Vec<&str> = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
    let old_verdict = independent_check(&jwks, &old_receipt);
    assert!(old_verdict.verified, "{}", old_verdict.report);
    assert_eq!(old_verdict.report["header"]["kid"], old_kid.as_str());
    let new_verdict = independent_check(&jwks, &new_receipt);
    assert!(new_verdict.verified, "{}", new_verdict.report);
    assert_eq!(new_verdict.report["header"]["kid"], new_kid.as_str());
    // Without the new key in the set, its receipts no longer verify.
    let before_rotation = served_jwks(&before).await;
    assert!(!independent_check(&before_rotation, &new_receipt).verified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_and_manual_changes_get_a_receipt_without_a_mail_from_their_consent_time() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("receipt.pem");
    new_key(&key);
    let app = TestApp::spawn_with(Backend::Embedded, |s| with_receipts(s, &[&key])).await;
    let given = (app.clock.now() - chrono::Duration::days(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let future = (app.clock.now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let lines = [
        json!({"email": ANN, "subscription_type": BLOG, "status": "opted_in", "lawful_basis": "consent", "consent_evidence": "paper form 7", "consented_at": given}),
        json!({"email": BOB, "subscription_type": BLOG, "status": "opted_in", "lawful_basis": "contract", "explanation": "customer"}),
        json!({"email": CAT, "subscription_type": BLOG, "status": "opted_in", "lawful_basis": "consent", "consent_evidence": "form", "consented_at": future}),
    ];
    let body = ndjson(&lines);
    let response = app
        .admin(Method::POST, "/v1/imports")
        .await
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let results: Vec<Value> = response
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results[0]["ok"], true, "{results:?}");
    assert_eq!(results[1]["ok"], true, "{results:?}");
    assert_eq!(results[2]["ok"], false, "{results:?}");
    assert_eq!(results[2]["field"], "consented_at");

    let put = |email: &str, body: Value| {
        let app = &app;
        let path = format!("/v1/contacts/{}/subscriptions/{BLOG}", urlencode(email));
        async move {
            app.admin(Method::PUT, &path)
                .await
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let manual = put(
        DAN,
        json!({"status": "opted_in", "lawful_basis": "consent", "consent_evidence": "phone call 12"}),
    )
    .await;
    assert_eq!(manual.status(), 200);
    for refused in [
        json!({"status": "opted_in", "lawful_basis": "consent", "consent_evidence": "x", "consented_at": future}),
        json!({"status": "opted_in", "lawful_basis": "contract", "consented_at": given}),
        json!({"status": "opted_in", "lawful_basis": "consent", "consent_evidence": "x", "consented_at": "yesterday"}),
    ] {
        let answer = put(EVE, refused.clone()).await;
        assert_eq!(answer.status(), 422, "{refused}");
        let problem: Value = answer.json().await.unwrap();
        assert_eq!(problem["field"], "consented_at", "{problem}");
    }

    assert_eq!(
        app.drain_outbox().await,
        0,
        "no mail for imports and admins"
    );
    assert!(app.smtp.messages().is_empty());
    assert!(receipts_of(&app, BOB).await.is_empty(), "not on consent");

    let jwks = served_jwks(&app).await;
    for (email, method, at) in [
        (ANN, "import", Some(given.clone())),
        (DAN, "admin_api", None),
    ] {
        let event = opt_in_event(&app, email, BLOG).await;
        let compact = receipt_of_event(&app, email, &event).await;
        let verdict = independent_check(&jwks, &compact);
        assert!(verdict.verified, "{}", verdict.report);
        let status = &verdict.report["payload"]["dpv:hasRecordOfActivity"]["dpv:hasConsentStatus"];
        assert_eq!(status["dpv:hasIndicationMethod"], method);
        let consented = status["dpv:isIndicatedAtTime"]["@value"].as_str().unwrap();
        match at {
            Some(given) => {
                assert_eq!(consented, given, "the consent time the import gave");
                assert_eq!(event["consented_at"], given.as_str());
            }
            None => assert_eq!(consented, event["at"].as_str().unwrap()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preference_center_downloads_every_receipt_and_the_export_holds_them() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("receipt.pem");
    new_key(&key);
    let app = TestApp::spawn_with(Backend::Embedded, |s| with_receipts(s, &[&key])).await;
    app.subscribe_confirmed(ANN, &[BLOG]).await;
    // A second type ticked in the preference center: a receipt of its own, mailed too.
    let preferences = app.preferences_link(ANN);
    let page = app.get_text(&preferences).await;
    let version = page
        .split("name=\"notice_version.job-alerts\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the notice version beside the tick")
        .to_string();
    let form = format!(
        "subscription_types={BLOG}&subscription_types=job-alerts&shown={BLOG}&shown=job-alerts&notice_version.{BLOG}=2024-05-v3&notice_version.job-alerts={version}"
    );
    let saved = app
        .client
        .post(&preferences)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    assert_eq!(app.drain_outbox().await, 2, "one receipt mail per opt-in");
    let mailed: Vec<String> = app
        .mails_to(ANN)
        .iter()
        .filter_map(|m| m.attachment("consent-receipt.jws"))
        .map(|bytes| String::from_utf8(bytes).unwrap())
        .collect();
    assert_eq!(mailed.len(), 2);

    assert!(page.contains("/receipts\""), "the page offers the download");
    let download = app
        .client
        .get(format!("{preferences}/receipts"))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["cache-control"], "no-store");
    assert!(download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("consent-receipts.json"));
    let downloaded: Value = download.json().await.unwrap();
    let compacts: Vec<&str> = downloaded["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["receipt"].as_str().unwrap())
        .collect();
    assert_eq!(
        compacts,
        mailed.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let types: Vec<&str> = downloaded["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["subscription_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, [BLOG, "job-alerts"]);
    assert_eq!(downloaded["receipts"][1]["method"], "preference_center");

    let export = app
        .admin_get_json(&format!("/v1/contacts/{}/export", urlencode(ANN)))
        .await;
    let exported: Vec<&str> = export["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["receipt"].as_str().unwrap())
        .collect();
    assert_eq!(exported, compacts);
    assert_eq!(export["chain_valid"], true);
    // The token of a link that is not a preferences link downloads nothing.
    let unsubscribe = app.unsubscribe_link(ANN, BLOG).await;
    let token = unsubscribe.rsplit('/').next().unwrap();
    let refused = app
        .client
        .get(app.url(&format!("/preferences/{token}/receipts")))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(!refused.text().await.unwrap().contains("eyJ"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_receipt_keys_the_key_set_is_empty() {
    let app = TestApp::spawn(Backend::Embedded).await;
    assert!(app.state().subscriptions.config().receipts.is_none());
    let jwks: Value = serde_json::from_str(&served_jwks(&app).await).unwrap();
    assert_eq!(jwks, serde_json::json!({ "keys": [] }));
    // Opt-ins are recorded without receipts, and nobody is offered a download.
    app.subscribe_confirmed(ANN, &[BLOG]).await;
    assert_eq!(app.drain_outbox().await, 0, "no receipt mail");
    assert!(opt_in_event(&app, ANN, BLOG)
        .await
        .get("receipt_sha256")
        .is_none());
    assert!(receipts_of(&app, ANN).await.is_empty());
    let page = app.get_text(&app.preferences_link(ANN)).await;
    assert!(page.contains("id=\"export\""), "the preference center");
    assert!(!page.contains("id=\"receipts\""));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_processing_record_counts_the_bases_in_use_and_names_every_recipient() {
    let crm_secret = optin::webhooks::SigningKey::generate().unwrap();
    let warehouse_secret = optin::webhooks::SigningKey::generate().unwrap();
    let (crm_for, warehouse_for) = (crm_secret.clone(), warehouse_secret.clone());
    let app = TestApp::spawn_with(Backend::Redis, move |settings| {
        let mut crm = endpoint(
            "crm",
            "https://crm.example.com/hooks/optin?token=crm-path-token",
            &crm_for,
        );
        // Blog's subscription notices only: no `contact.*` notice, which would tell it
        // of every type's subscribers.
        crm.subscription_types = Some(vec![BLOG.to_string()]);
        crm.events = Some(vec![
            "subscription.opted_in".into(),
            "subscription.unsubscribed".into(),
        ]);
        settings.webhooks.endpoints = vec![
            crm,
            endpoint(
                "warehouse",
                "https://warehouse.example.net/ingest",
                &warehouse_for,
            ),
        ];
        settings.feedback.providers = vec!["ses".into(), "postmark".into()];
        settings.subscription_types[1].consent_valid_days = Some(730);
    })
    .await;
    let lines = [
        json!({"email": ANN, "subscription_type": BLOG, "status": "opted_in", "lawful_basis": "consent", "consent_evidence": "form 1"}),
        json!({"email": BOB, "subscription_type": BLOG, "status": "opted_in", "lawful_basis": "consent", "consent_evidence": "form 2"}),
        json!({"email": CAT, "subscription_type": BLOG, "status": "opted_in", "lawful_basis": "contract", "explanation": "customer"}),
        json!({"email": DAN, "subscription_type": "job-alerts", "status": "opted_in", "lawful_basis": "legitimate_interests", "explanation": "applicant"}),
    ];
    let body = ndjson(&lines);
    let imported = app
        .admin(Method::POST, "/v1/imports")
        .await
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(imported.text().await.unwrap().contains("\"succeeded\":4"));
    // A confirmed signup counts too; one who leaves again does not.
    app.subscribe_confirmed(EVE, &["job-alerts"]).await;
    app.one_click_unsubscribe(BOB, BLOG).await;

    let record = app.admin_get_json("/v1/processing-record").await;
    let activity = |id: &str| {
        record["activities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["subscription_type"] == id)
            .unwrap()
            .clone()
    };
    let bases = |id: &str| -> Vec<(String, u64)> {
        activity(id)["lawful_bases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["lawful_basis"].as_str().unwrap().to_string(),
                    b["contacts"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        bases(BLOG),
        [("consent".to_string(), 1), ("contract".to_string(), 1)]
    );
    assert_eq!(
        bases("job-alerts"),
        [
            ("consent".to_string(), 1),
            ("legitimate_interests".to_string(), 1)
        ]
    );
    assert!(bases("marketing").is_empty());
    assert_eq!(activity(BLOG)["retention"]["consent_valid_days"], 730);
    let hosts = |id: &str| -> Vec<String> {
        activity(id)["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r["host"]
                    .as_str()
                    .or(r["name"].as_str())
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        hosts(BLOG),
        [
            "crm.example.com",
            "warehouse.example.net",
            "127.0.0.1",
            "Amazon SES",
            "Postmark"
        ]
    );
    assert_eq!(
        hosts("job-alerts"),
        [
            "warehouse.example.net",
            "127.0.0.1",
            "Amazon SES",
            "Postmark"
        ]
    );
    assert_eq!(
        record["controller"],
        Value::Null,
        "not configured: the document says so"
    );
    let in_force: Vec<&str> = record["technical_measures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["in_force"] == true)
        .map(|m| m["measure"].as_str().unwrap())
        .collect();
    assert_eq!(
        in_force,
        [
            "signed_links",
            "hash_chain",
            "pseudonymous_keys",
            "api_key_hashing",
            "webhook_signatures"
        ]
    );

    let markdown = app
        .get_with_key(
            "/v1/processing-record?format=markdown",
            support::app::ADMIN_KEY,
        )
        .await;
    assert_eq!(markdown.status(), 200);
    assert_eq!(
        markdown.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    let markdown = markdown.text().await.unwrap();
    assert!(
        markdown.contains("  - consent (Art. 6(1)(a)): 1 contacts"),
        "{markdown}"
    );
    assert!(
        markdown.contains("  - legitimate_interests (Art. 6(1)(f)): 1 contacts"),
        "{markdown}"
    );
    assert!(markdown.contains("crm.example.com") && markdown.contains("Postmark"));
    for secret in [
        crm_secret.as_str(),
        warehouse_secret.as_str(),
        "crm-path-token",
        "/hooks/optin",
        ANN,
    ] {
        assert!(!markdown.contains(secret), "{secret} in the document");
        assert!(!record.to_string().contains(secret), "{secret} in the JSON");
    }

    let refused = app
        .get_with_key("/v1/processing-record?format=pdf", support::app::ADMIN_KEY)
        .await;
    assert_eq!(refused.status(), 422);
    assert_eq!(refused.json::<Value>().await.unwrap()["field"], "format");
    let sender = app
        .get_with_key("/v1/processing-record", support::app::SEND_KEY)
        .await;
    assert_eq!(sender.status(), 403);

    // The console shows the same document.
    let signed_in = app
        .client
        .post(app.url("/admin/login"))
        .form(&[("key", support::app::ADMIN_KEY)])
        .send()
        .await
        .unwrap();
    let cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("optin_admin="))
        .expect("a session cookie");
    let page = app
        .client
        .get(app.url("/admin/processing-record"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("consent (Art. 6(1)(a)): 1 contacts"),
        "{page}"
    );
    assert!(page.contains("warehouse.example.net"));
    let download = app
        .client
        .get(app.url("/admin/processing-record?format=markdown"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        download.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    let downloaded = download.text().await.unwrap();
    assert_eq!(
        downloaded.lines().skip(1).collect::<Vec<_>>(),
        markdown.lines().skip(1).collect::<Vec<_>>(),
        "the same document but for its time"
    );
}
