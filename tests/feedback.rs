//! Bounces and complaints over HTTP, on every store: each provider's published payload
//! (addresses replaced), the effects a sender and an admin see (eligibility, the contact
//! view, stats, events, export), signatures, wrong formats, duplicates, unknown
//! addresses, and an SMTP server that answers `550 5.1.1` for one address.

mod support;

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use optin::clock::Clock as _;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Digest as _;
use support::app::{urlencode, Backend, TestApp, ADMIN_KEY, SEND_KEY};
use support::smtp_sink::Rejection;

on_every_backend!(
    every_provider_format_is_read_as_its_mapping_says,
    ses_signatures_are_checked_against_the_certificate_from_sns,
    sendgrid_signatures_are_required_when_a_key_is_configured,
    duplicates_count_once_and_soft_bounces_mark_at_the_limit,
    the_mark_stops_every_type_until_a_confirmed_signup_or_an_admin_clears_it,
    an_smtp_550_5_1_1_for_one_address_makes_only_that_address_unreachable,
    bounces_and_complaints_are_announced_by_webhook,
);

const FEEDBACK_KEY: &str = "test-feedback-key";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/feedback/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An SNS fixture as SNS would send it now (by the app's clock): messages older than an
/// hour are refused as replays, and the published examples are years old.
fn sns_fixture(app: &TestApp, name: &str) -> String {
    let mut envelope: Value = serde_json::from_str(&fixture(name)).expect("an SNS fixture");
    envelope["Timestamp"] = app
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    envelope.to_string()
}

/// The app with a `feedback` key configured, SNS signatures off unless `adjust` says.
async fn spawn(backend: Backend, adjust: impl FnOnce(&mut optin::config::Settings)) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        let hash = hex::encode(sha2::Sha256::digest(FEEDBACK_KEY.as_bytes()));
        settings
            .security
            .api_keys
            .0
            .push(secrecy::SecretString::from(format!(
                "feedback-test:feedback:{hash}"
            )));
        settings.feedback.ses_verify_signature = false;
        adjust(settings);
    })
    .await
}

/// Posts a body to a feedback input with the feedback key as the Basic password, the
/// way providers send the credentials of `https://feedback:KEY@host/...`.
async fn post_feedback(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .basic_auth("feedback", Some(FEEDBACK_KEY))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .expect("request sent")
}

/// Posts and expects 200 `{"accepted": n}`; returns `n`.
async fn accepted(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> u64 {
    let response = post_feedback(app, path, content_type, body).await;
    let status = response.status();
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "{path}: {answer}");
    answer["accepted"].as_u64().expect("accepted")
}

/// Opts the address in to two marketing types and one service type, as an admin with
/// evidence of consent.
async fn opt_in(app: &TestApp, email: &str) {
    for type_id in ["marketing", "blog-updates", "event-info"] {
        let response = app
            .admin(
                Method::PUT,
                &format!("/v1/contacts/{}/subscriptions/{type_id}", urlencode(email)),
            )
            .await
            .json(&json!({ "status": "opted_in", "lawful_basis": "consent",
                           "consent_evidence": "signed form #42" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "opt-in of {email}");
    }
}

async fn reason(app: &TestApp, email: &str, type_id: &str) -> Option<String> {
    let answer = app.eligibility(email, type_id).await;
    answer["reason"].as_str().map(str::to_string)
}

async fn contact_view(app: &TestApp, email: &str) -> Value {
    app.admin_get_json(&format!("/v1/contacts/{}", urlencode(email)))
        .await
}

async fn unreachable_reason(app: &TestApp, email: &str) -> Option<String> {
    contact_view(app, email).await["unreachable"]["reason"]
        .as_str()
        .map(str::to_string)
}

async fn event_kinds(app: &TestApp, email: &str) -> Vec<String> {
    let events = app
        .admin_get_json(&format!("/v1/contacts/{}/events", urlencode(email)))
        .await;
    assert_eq!(events["chain_valid"], true, "{events}");
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn stats(app: &TestApp) -> Value {
    app.admin_get_json("/v1/stats").await
}

async fn every_provider_format_is_read_as_its_mapping_says(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    for email in [
        "own.hard@example.com",
        "own.soft@example.com",
        "own.complaint@example.com",
        "jane@example.com",
        "richard@example.com",
        "recipient@example.com",
        "john@example.com",
        "bounce@example.com",
        "blocked@example.com",
        "dropped@example.com",
        "spamreport@example.com",
        "delivered@example.com",
        "arathi@example.com",
        "johnh@example.com",
        "user@example.com",
    ] {
        opt_in(&app, email).await;
    }

    // optin's own JSON: an array, with an address nobody knows.
    let own = json!([
        { "email": "own.hard@example.com", "kind": "hard_bounce", "reason": "550 5.1.1 no such user" },
        { "email": "own.soft@example.com", "kind": "soft_bounce" },
        { "email": "own.complaint@example.com", "kind": "complaint" },
        { "email": "nobody@example.com", "kind": "hard_bounce" },
    ]);
    assert_eq!(
        accepted(&app, "/v1/feedback", "application/json", own.to_string()).await,
        4
    );
    // One item alone is accepted too.
    let one = json!({ "email": "own.soft@example.com", "kind": "soft_bounce" });
    assert_eq!(
        accepted(&app, "/v1/feedback", "application/json", one.to_string()).await,
        1
    );

    // SES through SNS (SNS posts text/plain).
    for (name, count) in [
        ("ses-bounce-permanent.json", 1),
        ("ses-complaint.json", 1),
        ("ses-event-bounce-transient.json", 2),
        ("ses-delivery.json", 0),
    ] {
        assert_eq!(
            accepted(
                &app,
                "/v1/feedback/ses",
                "text/plain; charset=UTF-8",
                sns_fixture(&app, name)
            )
            .await,
            count,
            "{name}"
        );
    }
    // Postmark: a hard bounce, then a spam complaint of the same address.
    for name in ["postmark-bounce.json", "postmark-spam-complaint.json"] {
        assert_eq!(
            accepted(
                &app,
                "/v1/feedback/postmark",
                "application/json",
                fixture(name)
            )
            .await,
            1
        );
    }
    // SendGrid: bounce, blocked, dropped (Bounced Address) and spamreport count; the
    // other nine events are ignored.
    assert_eq!(
        accepted(
            &app,
            "/v1/feedback/sendgrid",
            "application/json",
            fixture("sendgrid-events.json")
        )
        .await,
        4
    );
    // A DSN with three recipients, and an ARF abuse report.
    assert_eq!(
        accepted(
            &app,
            "/v1/feedback/message",
            "message/rfc822",
            fixture("dsn-multi-recipient.eml")
        )
        .await,
        3
    );
    assert_eq!(
        accepted(
            &app,
            "/v1/feedback/message",
            "message/rfc822",
            fixture("arf-abuse.eml")
        )
        .await,
        1
    );

    // Hard bounces: every type stops, service types too; the status stays.
    for email in [
        "own.hard@example.com",
        "jane@example.com",
        "john@example.com",
        "bounce@example.com",
        "dropped@example.com",
        "arathi@example.com",
    ] {
        for type_id in ["marketing", "event-info"] {
            let answer = app.eligibility(email, type_id).await;
            assert_eq!(answer["eligible"], false, "{email} {type_id}");
            assert_eq!(answer["reason"], "unreachable", "{email} {type_id}");
            // John also complained (below), which is a change of status.
            if email != "john@example.com" || type_id == "event-info" {
                assert_eq!(answer["status"], "opted_in", "{email} {type_id}");
            }
        }
        assert_eq!(
            unreachable_reason(&app, email).await.as_deref(),
            Some("hard_bounce"),
            "{email}"
        );
    }
    let jane = contact_view(&app, "jane@example.com").await;
    assert!(jane["unreachable"]["since"].is_string(), "{jane}");
    assert_eq!(
        jane["unreachable"]["detail"],
        "smtp; 550 5.1.1 [address] User"
    );
    assert!(event_kinds(&app, "jane@example.com")
        .await
        .contains(&"marked_unreachable".to_string()));

    // Soft bounces: counted, still eligible.
    for (email, count) in [
        ("own.soft@example.com", 2),
        ("recipient@example.com", 1),
        ("blocked@example.com", 1),
        ("johnh@example.com", 1),
    ] {
        assert_eq!(reason(&app, email, "marketing").await, None, "{email}");
        let view = contact_view(&app, email).await;
        assert_eq!(view["recent_soft_bounces"], count, "{email}");
        assert_eq!(view["unreachable"], Value::Null, "{email}");
    }

    // Complaints: marketing types unsubscribed with source complaint; service stays.
    for email in [
        "own.complaint@example.com",
        "richard@example.com",
        "john@example.com",
        "spamreport@example.com",
        "user@example.com",
    ] {
        let view = contact_view(&app, email).await;
        for type_id in ["marketing", "blog-updates", "job-alerts"] {
            assert_eq!(
                view["subscriptions"][type_id]["status"], "unsubscribed",
                "{email} {type_id}"
            );
            assert_eq!(
                view["subscriptions"][type_id]["source"], "complaint",
                "{email} {type_id}"
            );
        }
        assert_eq!(
            view["subscriptions"]["event-info"]["status"], "opted_in",
            "{email}"
        );
        let kinds = event_kinds(&app, email).await;
        let complained = kinds
            .iter()
            .position(|k| k == "complained")
            .expect("a complained event");
        assert!(
            kinds[complained + 1..]
                .iter()
                .all(|k| k == "status_changed"),
            "{kinds:?}"
        );
    }
    assert_eq!(
        reason(&app, "richard@example.com", "marketing")
            .await
            .as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        reason(&app, "richard@example.com", "event-info").await,
        None
    );

    // Delivered mail and ignored events change nothing; the unknown address got nothing.
    assert_eq!(
        reason(&app, "delivered@example.com", "marketing").await,
        None
    );
    assert_eq!(app.contact("nobody@example.com").await.status(), 404);

    let stats = stats(&app).await;
    assert_eq!(stats["unreachable_contacts"], 6, "{stats}");
}

// ------------------------------------------------------------------------- SNS signing

/// A key and self-signed certificate standing in for SNS's, made by this test.
struct SnsSigner {
    key: rsa::RsaPrivateKey,
    cert_pem: String,
}

fn sns_signer() -> SnsSigner {
    use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8");
    let key_pair =
        rcgen::KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).expect("rcgen key");
    let cert = rcgen::CertificateParams::new(vec!["sns.us-east-1.amazonaws.com".to_string()])
        .expect("params")
        .self_signed(&key_pair)
        .expect("certificate");
    SnsSigner {
        key,
        cert_pem: cert.pem(),
    }
}

/// The fixture signed as AWS documents: `name\nvalue\n` for the signed fields in order.
fn sns_signed(fixture_text: &str, version: &str, signer: &SnsSigner) -> Value {
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    let mut envelope: Value = serde_json::from_str(fixture_text).expect("fixture");
    envelope["SignatureVersion"] = version.into();
    let names: &[&str] = if envelope["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let mut text = String::new();
    for name in names {
        if let Some(value) = envelope.get(*name).and_then(Value::as_str) {
            text.push_str(name);
            text.push('\n');
            text.push_str(value);
            text.push('\n');
        }
    }
    let signature = match version {
        "1" => SigningKey::<sha1::Sha1>::new(signer.key.clone())
            .sign(text.as_bytes())
            .to_vec(),
        _ => SigningKey::<sha2::Sha256>::new(signer.key.clone())
            .sign(text.as_bytes())
            .to_vec(),
    };
    envelope["Signature"] = base64::engine::general_purpose::STANDARD
        .encode(signature)
        .into();
    envelope
}

/// A plain HTTP server standing in for the SNS host: it answers every GET with the
/// certificate and records the paths asked for.
struct FakeSns {
    base: url::Url,
    paths: Arc<Mutex<Vec<String>>>,
}

impl FakeSns {
    async fn start(cert_pem: String) -> FakeSns {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let base = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                seen.lock().unwrap().push(path);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    cert_pem.len(),
                    cert_pem
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        FakeSns { base, paths }
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

async fn ses_signatures_are_checked_against_the_certificate_from_sns(backend: Backend) {
    let app = spawn(backend, |s| s.feedback.ses_verify_signature = true).await;
    let signer = sns_signer();
    let sns = FakeSns::start(signer.cert_pem.clone()).await;
    // The test hook: the message still names sns.us-east-1.amazonaws.com and is checked
    // for it; only the connection goes to the local stand-in.
    app.state()
        .subscriptions
        .sns()
        .send_fetches_to(sns.base.clone());
    opt_in(&app, "jane@example.com").await;
    opt_in(&app, "richard@example.com").await;

    // Unsigned (the fixture's example signature): refused, nothing applied.
    let response = post_feedback(
        &app,
        "/v1/feedback/ses",
        "text/plain",
        sns_fixture(&app, "ses-bounce-permanent.json"),
    )
    .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(reason(&app, "jane@example.com", "marketing").await, None);

    // Signed with version 1 and version 2: applied; the certificate is fetched once.
    let bounce = sns_signed(
        &sns_fixture(&app, "ses-bounce-permanent.json"),
        "1",
        &signer,
    );
    assert_eq!(
        accepted(&app, "/v1/feedback/ses", "text/plain", bounce.to_string()).await,
        1
    );
    assert_eq!(
        reason(&app, "jane@example.com", "marketing")
            .await
            .as_deref(),
        Some("unreachable")
    );
    let complaint = sns_signed(&sns_fixture(&app, "ses-complaint.json"), "2", &signer);
    assert_eq!(
        accepted(
            &app,
            "/v1/feedback/ses",
            "text/plain",
            complaint.to_string()
        )
        .await,
        1
    );
    assert_eq!(
        reason(&app, "richard@example.com", "marketing")
            .await
            .as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        sns.paths(),
        ["/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"],
        "one fetch of the certificate, then the cache"
    );

    // A signed message altered afterwards, and one signed by another key: refused.
    let mut altered = sns_signed(&sns_fixture(&app, "ses-complaint.json"), "1", &signer);
    altered["Message"] = altered["Message"]
        .as_str()
        .unwrap()
        .replace("richard@", "jane@")
        .into();
    let response = post_feedback(&app, "/v1/feedback/ses", "text/plain", altered.to_string()).await;
    assert_eq!(response.status(), 401);
    let stranger = sns_signed(&sns_fixture(&app, "ses-complaint.json"), "1", &sns_signer());
    let response =
        post_feedback(&app, "/v1/feedback/ses", "text/plain", stranger.to_string()).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        contact_view(&app, "jane@example.com").await["subscriptions"]["marketing"]["status"],
        "opted_in"
    );

    // A certificate URL on another host is never fetched, even when signed.
    let mut elsewhere: Value =
        serde_json::from_str(&sns_fixture(&app, "ses-complaint.json")).unwrap();
    elsewhere["SigningCertURL"] =
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem".into();
    let elsewhere = sns_signed(&elsewhere.to_string(), "1", &signer);
    let response = post_feedback(
        &app,
        "/v1/feedback/ses",
        "text/plain",
        elsewhere.to_string(),
    )
    .await;
    assert_eq!(response.status(), 401);

    // A subscription confirmation: verified, then its SubscribeURL is fetched.
    let confirmation = sns_signed(
        &sns_fixture(&app, "ses-subscription-confirmation.json"),
        "1",
        &signer,
    );
    assert_eq!(
        accepted(
            &app,
            "/v1/feedback/ses",
            "text/plain",
            confirmation.to_string()
        )
        .await,
        0
    );
    let paths = sns.paths();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(
        paths[1].starts_with("/?Action=ConfirmSubscription&TopicArn="),
        "{paths:?}"
    );
    // One whose SubscribeURL is not on an SNS host is a wrong format, never fetched.
    let mut foreign: Value =
        serde_json::from_str(&sns_fixture(&app, "ses-subscription-confirmation.json")).unwrap();
    foreign["SubscribeURL"] = "https://attacker.example/?Action=ConfirmSubscription".into();
    let foreign = sns_signed(&foreign.to_string(), "1", &signer);
    let response = post_feedback(&app, "/v1/feedback/ses", "text/plain", foreign.to_string()).await;
    assert_eq!(response.status(), 400);
    assert_eq!(sns.paths().len(), 2);
}

/// The answer's problem `type`, after checking the status.
async fn problem_type(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    let problem: Value = response.json().await.expect("problem+json");
    problem["type"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_messages_from_an_unlisted_topic_or_older_than_an_hour_are_refused() {
    const OURS: &str = "arn:aws:sns:us-east-1:123456789012:ses-feedback";
    let app = spawn(Backend::Embedded, |s| {
        s.feedback.ses_verify_signature = true;
        s.feedback.ses_topic_arns = optin::config::StringList(vec![OURS.into()]);
    })
    .await;
    let signer = sns_signer();
    let sns = FakeSns::start(signer.cert_pem.clone()).await;
    app.state()
        .subscriptions
        .sns()
        .send_fetches_to(sns.base.clone());
    opt_in(&app, "jane@example.com").await;
    let bounce = || -> Value {
        serde_json::from_str(&sns_fixture(&app, "ses-bounce-permanent.json")).unwrap()
    };

    // Signed by SNS, but published to someone else's topic.
    let mut foreign = bounce();
    foreign["TopicArn"] = "arn:aws:sns:us-east-1:999999999999:someone-elses".into();
    let foreign = sns_signed(&foreign.to_string(), "2", &signer);
    let response = post_feedback(&app, "/v1/feedback/ses", "text/plain", foreign.to_string()).await;
    assert_eq!(
        problem_type(response, 403).await,
        "urn:optin:problem:sns-topic-not-allowed"
    );

    // Signed, from our topic, but sent two hours ago.
    let mut old = bounce();
    old["Timestamp"] = (app.clock.now() - chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    let old = sns_signed(&old.to_string(), "2", &signer);
    let response = post_feedback(&app, "/v1/feedback/ses", "text/plain", old.to_string()).await;
    assert_eq!(
        problem_type(response, 403).await,
        "urn:optin:problem:sns-message-stale"
    );
    assert_eq!(reason(&app, "jane@example.com", "marketing").await, None);

    // A fresh one from our topic is taken; the same message replayed 61 minutes later is not.
    let fresh = sns_signed(&bounce().to_string(), "2", &signer).to_string();
    app.clock.advance(chrono::Duration::minutes(61));
    let response = post_feedback(&app, "/v1/feedback/ses", "text/plain", fresh.clone()).await;
    assert_eq!(
        problem_type(response, 403).await,
        "urn:optin:problem:sns-message-stale"
    );
    assert_eq!(reason(&app, "jane@example.com", "marketing").await, None);
    let fresh = sns_signed(&bounce().to_string(), "2", &signer).to_string();
    assert_eq!(
        accepted(&app, "/v1/feedback/ses", "text/plain", fresh).await,
        1
    );
    assert_eq!(
        reason(&app, "jane@example.com", "marketing")
            .await
            .as_deref(),
        Some("unreachable")
    );
}

// -------------------------------------------------------------------- SendGrid signing

async fn sendgrid_signatures_are_required_when_a_key_is_configured(backend: Backend) {
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;
    let signing = p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).expect("a key");
    let public = signing.verifying_key().to_public_key_der().expect("DER");
    let shown = base64::engine::general_purpose::STANDARD.encode(public.as_bytes());
    let app = spawn(backend, |s| s.feedback.sendgrid_public_key = Some(shown)).await;
    opt_in(&app, "bounce@example.com").await;
    let body = fixture("sendgrid-events.json");
    let timestamp = "1700000000";
    let sign = |body: &str| {
        let signature: p256::ecdsa::Signature =
            signing.sign(format!("{timestamp}{body}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    };
    let post = |signature: Option<String>, body: String| {
        let mut request = app
            .client
            .post(app.url("/v1/feedback/sendgrid"))
            .bearer_auth(FEEDBACK_KEY)
            .header("Content-Type", "application/json")
            .header("X-Twilio-Email-Event-Webhook-Timestamp", timestamp)
            .body(body);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Email-Event-Webhook-Signature", signature);
        }
        request.send()
    };
    // Missing, and over another body: 401, nothing applied.
    assert_eq!(post(None, body.clone()).await.unwrap().status(), 401);
    let other = sign("[]");
    let response = post(Some(other), body.clone()).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(reason(&app, "bounce@example.com", "marketing").await, None);
    // Signed: applied.
    let response = post(Some(sign(&body)), body.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["accepted"], 4);
    assert_eq!(
        reason(&app, "bounce@example.com", "marketing")
            .await
            .as_deref(),
        Some("unreachable")
    );
}

// ------------------------------------------------------------------ counting and dedup

async fn duplicates_count_once_and_soft_bounces_mark_at_the_limit(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    opt_in(&app, "recipient@example.com").await;
    opt_in(&app, "richard@example.com").await;
    let before = stats(&app).await;

    // The same SES notification delivered three times counts once.
    for _ in 0..3 {
        accepted(
            &app,
            "/v1/feedback/ses",
            "text/plain",
            sns_fixture(&app, "ses-event-bounce-transient.json"),
        )
        .await;
    }
    assert_eq!(
        contact_view(&app, "recipient@example.com").await["recent_soft_bounces"],
        1
    );
    // The same complaint twice: one complained event.
    for _ in 0..2 {
        accepted(
            &app,
            "/v1/feedback/ses",
            "text/plain",
            sns_fixture(&app, "ses-complaint.json"),
        )
        .await;
    }
    let complaints = event_kinds(&app, "richard@example.com")
        .await
        .iter()
        .filter(|k| *k == "complained")
        .count();
    assert_eq!(complaints, 1);

    // Two more soft bounces (own JSON has no event id: each counts) reach the limit of 3.
    let soft = json!({ "email": "recipient@example.com", "kind": "soft_bounce", "reason": "mailbox full" });
    accepted(&app, "/v1/feedback", "application/json", soft.to_string()).await;
    assert_eq!(
        reason(&app, "recipient@example.com", "marketing").await,
        None
    );
    accepted(&app, "/v1/feedback", "application/json", soft.to_string()).await;
    assert_eq!(
        reason(&app, "recipient@example.com", "marketing")
            .await
            .as_deref(),
        Some("unreachable")
    );
    let view = contact_view(&app, "recipient@example.com").await;
    assert_eq!(view["unreachable"]["reason"], "soft_bounce");
    assert_eq!(view["unreachable"]["detail"], "mailbox full");

    // Unknown addresses, in every input: accepted, counted, nothing stored.
    let unknown = json!([{ "email": "ghost@example.com", "kind": "hard_bounce" },
                         { "email": "ghost2@example.com", "kind": "complaint" },
                         { "email": "not an address", "kind": "soft_bounce" }]);
    assert_eq!(
        accepted(
            &app,
            "/v1/feedback",
            "application/json",
            unknown.to_string()
        )
        .await,
        3
    );
    assert_eq!(
        accepted(
            &app,
            "/v1/feedback/postmark",
            "application/json",
            fixture("postmark-bounce.json")
        )
        .await,
        1
    );
    for email in [
        "ghost@example.com",
        "ghost2@example.com",
        "john@example.com",
    ] {
        assert_eq!(app.contact(email).await.status(), 404, "{email}");
    }
    let after = stats(&app).await;
    assert_eq!(after["unreachable_contacts"], 1);
    assert_eq!(
        after["marketing_contacts"],
        before["marketing_contacts"].as_i64().unwrap() - 1,
        "richard left marketing"
    );
    assert_eq!(
        after["non_marketing_contacts"],
        before["non_marketing_contacts"].as_i64().unwrap() + 1
    );
}

// --------------------------------------------------------------- the mark and its end

async fn the_mark_stops_every_type_until_a_confirmed_signup_or_an_admin_clears_it(
    backend: Backend,
) {
    let app = spawn(backend, |_| {}).await;
    let email = "back@example.com";
    app.subscribe_confirmed(email, &["blog-updates", "event-info"])
        .await;
    let hard = json!({ "email": email, "kind": "hard_bounce", "reason": "550 5.1.1 user unknown" });
    accepted(&app, "/v1/feedback", "application/json", hard.to_string()).await;

    // Every type, single and batch.
    for type_id in ["blog-updates", "event-info", "marketing", "job-alerts"] {
        assert_eq!(
            reason(&app, email, type_id).await.as_deref(),
            Some("unreachable"),
            "{type_id}"
        );
    }
    let batch: Value = app
        .client
        .post(app.url("/v1/eligibility"))
        .bearer_auth(SEND_KEY)
        .json(
            &json!({ "subscription_type": "blog-updates", "emails": [email, "other@example.com"] }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(batch["results"][0]["reason"], "unreachable");
    assert_eq!(batch["results"][1]["reason"], "not_opted_in");
    assert_eq!(stats(&app).await["unreachable_contacts"], 1);

    // The export holds the mark; the events record it with its bounce type.
    let export = app
        .admin_get_json(&format!("/v1/contacts/{}/export", urlencode(email)))
        .await;
    assert_eq!(
        export["contact"]["unreachable"]["reason"], "hard_bounce",
        "{export}"
    );
    let marked = export["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "marked_unreachable")
        .expect("event")
        .clone();
    assert_eq!(marked["source"], "bounce");
    assert_eq!(marked["bounce_type"], "hard_bounce");
    assert_eq!(marked["actor"], "feedback-test");

    // A new signup still gets its confirmation mail; confirming clears the mark.
    let mails_before = app.mails_to(email).len();
    assert_eq!(app.signup(email, &["marketing"]).await.status(), 202);
    app.drain_outbox().await;
    assert_eq!(
        app.mails_to(email).len(),
        mails_before + 1,
        "the confirmation went out"
    );
    let link = app.confirmation_link(email);
    assert_eq!(app.client.post(&link).send().await.unwrap().status(), 200);
    assert_eq!(reason(&app, email, "blog-updates").await, None);
    assert_eq!(reason(&app, email, "marketing").await, None);
    assert_eq!(contact_view(&app, email).await["unreachable"], Value::Null);
    assert_eq!(stats(&app).await["unreachable_contacts"], 0);
    assert!(event_kinds(&app, email)
        .await
        .contains(&"unreachable_cleared".to_string()));

    // Marked again, then cleared by an admin.
    let smtp_like = json!({ "email": email, "kind": "hard_bounce" });
    let path = format!("/v1/contacts/{}/unreachable", urlencode(email));
    accepted(
        &app,
        "/v1/feedback",
        "application/json",
        smtp_like.to_string(),
    )
    .await;
    let cleared = app.admin(Method::DELETE, &path).await.send().await.unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(
        cleared.json::<Value>().await.unwrap()["unreachable"],
        Value::Null
    );
    assert_eq!(reason(&app, email, "event-info").await, None);
    // Again: nothing to clear, same answer. An unknown address: 404. A send key: 403.
    assert_eq!(
        app.admin(Method::DELETE, &path)
            .await
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let unknown = app
        .admin(
            Method::DELETE,
            "/v1/contacts/ghost%40example.com/unreachable",
        )
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let with_send_key = app
        .client
        .delete(app.url(&path))
        .bearer_auth(SEND_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(with_send_key.status(), 403);

    // Erasure removes the mark with everything else, and its count.
    accepted(
        &app,
        "/v1/feedback",
        "application/json",
        smtp_like.to_string(),
    )
    .await;
    assert_eq!(stats(&app).await["unreachable_contacts"], 1);
    let erased = app
        .admin(
            Method::DELETE,
            &format!("/v1/contacts/{}", urlencode(email)),
        )
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 204);
    assert_eq!(stats(&app).await["unreachable_contacts"], 0);

    // A rectified address is another mailbox: the mark stays with the old one.
    let (old, new) = ("moving@example.com", "moved@example.com");
    opt_in(&app, old).await;
    let hard = json!({ "email": old, "kind": "hard_bounce" });
    accepted(&app, "/v1/feedback", "application/json", hard.to_string()).await;
    let moved = app
        .admin(
            Method::POST,
            &format!("/v1/contacts/{}/rectification", urlencode(old)),
        )
        .await
        .json(&json!({ "new_email": new }))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    assert_eq!(contact_view(&app, new).await["unreachable"], Value::Null);
    assert_eq!(reason(&app, new, "marketing").await, None);
    let kinds = event_kinds(&app, new).await;
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["rectified", "unreachable_cleared"]
    );
    assert_eq!(stats(&app).await["unreachable_contacts"], 0);
}

// ---------------------------------------------------------------- our own SMTP answer

async fn an_smtp_550_5_1_1_for_one_address_makes_only_that_address_unreachable(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let (gone, fine) = ("gone@example.com", "fine@example.com");
    app.smtp
        .reject_recipient(gone, Rejection::PermanentEchoingRecipient);
    for email in [gone, fine] {
        assert_eq!(app.signup(email, &["blog-updates"]).await.status(), 202);
    }
    app.drain_outbox().await;
    assert_eq!(app.mails_to(fine).len(), 1);
    assert!(app.mails_to(gone).is_empty());

    let view = contact_view(&app, gone).await;
    assert_eq!(view["unreachable"]["reason"], "smtp_rejection", "{view}");
    let detail = view["unreachable"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("5.1.1") && !detail.contains("gone@"),
        "{detail}"
    );
    assert_eq!(
        reason(&app, gone, "blog-updates").await.as_deref(),
        Some("unreachable")
    );
    assert_eq!(contact_view(&app, fine).await["unreachable"], Value::Null);
    assert_eq!(stats(&app).await["unreachable_contacts"], 1);
    let events = app
        .admin_get_json(&format!("/v1/contacts/{}/events", urlencode(gone)))
        .await;
    let marked = &events["events"][0];
    assert_eq!(marked["kind"], "marked_unreachable");
    assert_eq!(marked["bounce_type"], "smtp_rejection");
    assert_eq!(marked["actor"], "outbox");
}

// ------------------------------------------------------------ keys, formats and limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_needs_its_key_and_the_providers_format() {
    let app = spawn(Backend::Embedded, |s| s.server.body_limit_bytes = 64 * 1024).await;
    let own = json!({ "email": "a@example.com", "kind": "hard_bounce" }).to_string();
    let status_with = |credentials: Option<(&str, &str)>, method: Method, path: &str| {
        let mut request = app.client.request(method, app.url(path)).body(own.clone());
        request = match credentials {
            Some(("bearer", key)) => request.bearer_auth(key),
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        };
        async move {
            request
                .send()
                .await
                .expect("request sent")
                .status()
                .as_u16()
        }
    };

    // Bearer and Basic (any user name) both work; others do not.
    for (credentials, expected) in [
        (Some(("bearer", FEEDBACK_KEY)), 200),
        (Some(("anything", FEEDBACK_KEY)), 200),
        (None, 401),
        (Some(("feedback", "nope")), 401),
        (Some(("bearer", SEND_KEY)), 403),
        (Some(("bearer", ADMIN_KEY)), 200), // admin may do everything
    ] {
        let got = status_with(credentials, Method::POST, "/v1/feedback").await;
        assert_eq!(got, expected, "{credentials:?}");
    }
    // The feedback key reads nothing.
    let reading = status_with(Some(("bearer", FEEDBACK_KEY)), Method::GET, "/v1/stats").await;
    assert_eq!(reading, 403);

    // Another provider's body, or none that parses: 400 problem+json naming the input.
    for (path, content_type, body) in [
        (
            "/v1/feedback",
            "application/json",
            r#"{"email":"a@example.com","kind":"bounced"}"#.to_string(),
        ),
        (
            "/v1/feedback/ses",
            "text/plain",
            fixture("postmark-bounce.json"),
        ),
        (
            "/v1/feedback/postmark",
            "application/json",
            fixture("sendgrid-events.json"),
        ),
        (
            "/v1/feedback/sendgrid",
            "application/json",
            fixture("postmark-bounce.json"),
        ),
        (
            "/v1/feedback/message",
            "message/rfc822",
            "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n".to_string(),
        ),
        (
            "/v1/feedback/postmark",
            "application/json",
            "not json".to_string(),
        ),
    ] {
        let response = post_feedback(&app, path, content_type, body).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("the body is not"),
            "{problem}"
        );
    }
    // The message input wants a mail.
    let response = post_feedback(
        &app,
        "/v1/feedback/message",
        "application/json",
        fixture("arf-abuse.eml"),
    )
    .await;
    assert_eq!(response.status(), 415);
    // Bodies are capped.
    let big = format!("[{}]", vec![own.as_str(); 2000].join(","));
    let response = post_feedback(&app, "/v1/feedback", "application/json", big).await;
    assert_eq!(response.status(), 413);
    // Only POST.
    let get = status_with(Some(("bearer", FEEDBACK_KEY)), Method::GET, "/v1/feedback").await;
    assert_eq!(get, 405);
}

// ---------------------------------------------------------------------------- webhooks

async fn bounces_and_complaints_are_announced_by_webhook(backend: Backend) {
    use optin::webhooks::signature::SigningKey;
    let receiver = support::webhook_receiver::WebhookReceiver::start().await;
    let url = receiver.url("/hook");
    let secret = SigningKey::generate().unwrap();
    let app = spawn(backend, move |settings| {
        settings.webhooks.endpoints = vec![optin::webhooks::EndpointSettings {
            id: "crm".into(),
            url,
            secret: secrecy::SecretString::from(secret),
            events: Some(vec!["contact.bounced".into(), "contact.complained".into()]),
            subscription_types: None,
        }];
    })
    .await;
    opt_in(&app, "jane@example.com").await;
    opt_in(&app, "richard@example.com").await;
    for name in ["ses-bounce-permanent.json", "ses-complaint.json"] {
        accepted(
            &app,
            "/v1/feedback/ses",
            "text/plain",
            sns_fixture(&app, name),
        )
        .await;
    }
    // A redelivery announces nothing new.
    accepted(
        &app,
        "/v1/feedback/ses",
        "text/plain",
        sns_fixture(&app, "ses-complaint.json"),
    )
    .await;
    app.drain_outbox().await;
    let received = receiver
        .wait_for(2, std::time::Duration::from_secs(5))
        .await;
    let mut bodies: Vec<Value> = received
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    bodies.sort_by_key(|b| b["type"].as_str().unwrap().to_string());
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0]["type"], "contact.bounced");
    assert_eq!(bodies[0]["data"]["email"], "jane@example.com");
    assert_eq!(bodies[0]["data"]["bounce_type"], "hard_bounce");
    assert_eq!(bodies[1]["type"], "contact.complained");
    assert_eq!(bodies[1]["data"]["email"], "richard@example.com");
}
