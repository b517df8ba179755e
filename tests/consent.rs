//! Consent that lapses, end to end: contacts imported with an old `consented_at`, the
//! sweep that runs when the service starts (after a restart, as `optin serve` runs it),
//! the renewal mail and its scanner-safe page, the lapse with its event, its webhook
//! notice and its eligibility answer.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration as StdDuration;

use chrono::{Duration, SecondsFormat};
use optin::clock::Clock;
use optin::config::{ControllerSettings, Settings, StringList};
use optin::webhooks::signature::SigningKey;
use optin::webhooks::EndpointSettings;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};
use support::app::{urlencode, Backend, TestApp};
use support::webhook_receiver::{ReceivedRequest, WebhookReceiver};

on_embedded_and_redis!(
    imported_consent_lapses_or_is_asked_to_renew_at_the_sweep_after_a_restart,
    a_renewal_link_renews_nothing_once_the_consent_has_lapsed,
);

const BLOG: &str = "blog-updates";
/// Consent given 120 days ago: past its 100 days.
const ANN: &str = "ann@example.com";
/// 95 days ago: inside the 10 days before its end, when renewal is asked.
const BOB: &str = "bob@example.com";
/// 10 days ago: nothing due.
const CAT: &str = "cat@example.com";
/// On contract, 120 days ago: no consent to lapse.
const DAN: &str = "dan@example.com";

const WAIT: StdDuration = StdDuration::from_secs(10);

/// `optin keys receipt --out FILE`.
fn new_receipt_key(out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_optin"))
        .args(["keys", "receipt", "--out", out.to_str().unwrap()])
        .output()
        .expect("run the optin binary")
        .status;
    assert!(status.success());
}

/// Blog consent lasts 100 days, renewal asked 10 days before; receipts are on; every
/// notice goes to `receiver` when one is given.
fn consent_settings(settings: &mut Settings, key: &Path, hook: Option<String>) {
    let blog = settings
        .subscription_types
        .iter_mut()
        .find(|t| t.id.as_str() == BLOG)
        .unwrap();
    blog.consent_valid_days = Some(100);
    blog.consent_renewal_days = 10;
    settings.consent.receipt_keys = StringList(vec![key.display().to_string()]);
    settings.consent.controller = Some(ControllerSettings {
        name: "Example B.V.".into(),
        email: "privacy@example.com".into(),
        url: "https://example.com".into(),
    });
    if let Some(url) = hook {
        settings.webhooks.endpoints = vec![EndpointSettings {
            id: "crm".into(),
            url,
            secret: SecretString::from(SigningKey::generate().unwrap()),
            events: None,
            subscription_types: None,
        }];
    }
}

/// Imports one line per `(email, basis, days ago)`; every line must succeed.
async fn import(app: &TestApp, lines: &[(&str, &str, i64)]) {
    let now = app.clock.now();
    let body = lines
        .iter()
        .fold(String::new(), |mut body, (email, basis, days_ago)| {
            let at = (now - Duration::days(*days_ago)).to_rfc3339_opts(SecondsFormat::Secs, true);
            let line = if *basis == "consent" {
                json!({"email": email, "subscription_type": BLOG, "status": "opted_in", "lawful_basis": "consent", "consent_evidence": "paper form", "consented_at": at})
            } else {
                json!({"email": email, "subscription_type": BLOG, "status": "opted_in", "lawful_basis": basis, "explanation": "customer"})
            };
            body.push_str(&line.to_string());
            body.push('\n');
            body
        });
    let response = app
        .admin(Method::POST, "/v1/imports")
        .await
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.lines()
            .take(lines.len())
            .all(|l| l.contains("\"ok\":true")),
        "{text}"
    );
}

async fn events_of(app: &TestApp, email: &str) -> Vec<Value> {
    let provenance = app
        .admin_get_json(&format!("/v1/contacts/{}/events", urlencode(email)))
        .await;
    assert_eq!(provenance["chain_valid"], true, "{provenance}");
    provenance["events"].as_array().unwrap().clone()
}

async fn receipts_of(app: &TestApp, email: &str) -> Vec<Value> {
    let answer = app
        .admin_get_json(&format!("/v1/contacts/{}/receipts", urlencode(email)))
        .await;
    answer["receipts"].as_array().unwrap().clone()
}

/// Waits until the scheduler's sweep has let `email`'s blog consent lapse.
async fn wait_for_lapse(app: &TestApp, email: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while app.status(email, BLOG).await != "not_subscribed" {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep at start did not run"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

fn body(request: &ReceivedRequest) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

/// The renewal link of the newest renewal mail to `email`.
fn renewal_link(app: &TestApp, email: &str) -> String {
    let mails = app.mails_to(email);
    let mail = mails
        .iter()
        .rev()
        .find(|m| m.subject().starts_with("Do you still want"))
        .expect("a renewal mail");
    mail.links()
        .into_iter()
        .find(|l| l.contains("/renew/"))
        .expect("a renewal link")
}

fn hidden_notice_version(page: &str) -> String {
    page.split("name=\"notice_version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the notice version the button agrees to")
        .to_string()
}

async fn imported_consent_lapses_or_is_asked_to_renew_at_the_sweep_after_a_restart(
    backend: Backend,
) {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("receipt.pem");
    new_receipt_key(&key);
    let receiver = WebhookReceiver::start().await;
    let hook = receiver.url("/hook");
    let mut app = TestApp::spawn_with(backend, |s| consent_settings(s, &key, Some(hook))).await;
    import(
        &app,
        &[
            (ANN, "consent", 120),
            (BOB, "consent", 95),
            (CAT, "consent", 10),
            (DAN, "contract", 120),
        ],
    )
    .await;

    // Ann's consent ended 20 days ago: senders are told at once, before any sweep.
    let before = app.eligibility(ANN, BLOG).await;
    assert_eq!(before["eligible"], false);
    assert_eq!(before["reason"], "consent_lapsed");
    assert_eq!(app.eligibility(BOB, BLOG).await["eligible"], true);
    assert_eq!(app.eligibility(DAN, BLOG).await["eligible"], true);
    let bob = app.subscription(BOB, BLOG).await;
    let imported_at = app.clock.now() - Duration::days(95);
    assert_eq!(
        bob["consented_at"],
        imported_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    assert_eq!(
        bob["consent_expires_at"],
        (imported_at + Duration::days(100)).to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    app.drain_outbox().await;
    assert!(app.smtp.messages().is_empty(), "imports mail nobody");
    let notices_before = receiver.received().len();

    // The service restarts, as after a deploy: its sweep runs at start.
    app.run_scheduler_from_next_start();
    app.restart().await;
    wait_for_lapse(&app, ANN).await;

    let lapsed = app.eligibility(ANN, BLOG).await;
    assert_eq!(
        (&lapsed["eligible"], &lapsed["reason"], &lapsed["status"]),
        (
            &json!(false),
            &json!("consent_lapsed"),
            &json!("not_subscribed")
        )
    );
    let events = events_of(&app, ANN).await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "consent_lapsed");
    assert_eq!(last["source"], "expiry");
    assert_eq!(
        (&last["from"], &last["to"]),
        (&json!("opted_in"), &json!("not_subscribed"))
    );
    assert_eq!(
        app.status(DAN, BLOG).await,
        "opted_in",
        "no consent to lapse"
    );
    assert_eq!(app.status(CAT, BLOG).await, "opted_in");

    app.drain_outbox().await;
    // The receivers' copy follows the lapse.
    let notices = receiver.wait_for(notices_before + 1, WAIT).await;
    let lapse_notice = notices[notices_before..]
        .iter()
        .map(body)
        .find(|b| b["type"] == "subscription.not_subscribed")
        .expect("subscription.not_subscribed delivered");
    assert_eq!(lapse_notice["data"]["email"], ANN);
    assert_eq!(lapse_notice["data"]["previous_status"], "opted_in");
    assert_eq!(lapse_notice["data"]["source"], "expiry");

    // Bob was asked once, by a mail of the type with its one-click headers.
    assert!(app.mails_to(CAT).is_empty() && app.mails_to(ANN).is_empty());
    let asked = app.mails_to(BOB);
    assert_eq!(asked.len(), 1);
    let mail = &asked[0];
    assert_eq!(mail.subject(), "Do you still want Blog updates?");
    assert!(mail
        .header("List-Unsubscribe")
        .is_some_and(|h| h.contains("/unsubscribe/")));
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(
        app.subscription(BOB, BLOG).await["renewal_asked_at"],
        json!(app.clock.now())
    );
    assert_eq!(
        app.sweep_consent().await.renewals_asked,
        0,
        "asked only once"
    );
    app.drain_outbox().await;
    assert_eq!(app.mails_to(BOB).len(), 1);

    // The link's page changes nothing: mail scanners open every link.
    let link = renewal_link(&app, BOB);
    let events_before = events_of(&app, BOB).await.len();
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("id=\"renew\""), "one button");
    assert!(page.contains("We keep your address to send you blog updates"));
    assert_eq!(events_of(&app, BOB).await.len(), events_before);

    // Its button renews: consent_renewed, source renewal_link, a new receipt, mailed.
    app.advance_clock(Duration::days(2));
    let form = format!("notice_version={}", hidden_notice_version(&page));
    let renewed = app
        .client
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), 200);
    assert!(renewed.text().await.unwrap().contains("Thank you"));
    let events = events_of(&app, BOB).await;
    let renewal = events.last().unwrap();
    assert_eq!(renewal["kind"], "consent_renewed");
    assert_eq!(renewal["source"], "renewal_link");
    assert_eq!(renewal["type"], BLOG);
    assert_eq!(renewal["lawful_basis"], "consent");
    let receipts = receipts_of(&app, BOB).await;
    assert_eq!(receipts.len(), 2, "the import's and the renewal's");
    assert_eq!(receipts[1]["event_id"], renewal["id"]);
    assert_eq!(receipts[1]["sha256"], renewal["receipt_sha256"]);
    assert_eq!(receipts[1]["act"], "renewed");
    assert_eq!(receipts[1]["method"], "renewal_link");
    let new_end = app.clock.now() + Duration::days(100);
    assert_eq!(
        receipts[1]["expires_at"],
        new_end.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    );
    let bob = app.subscription(BOB, BLOG).await;
    assert_eq!(bob["consent_expires_at"], json!(new_end));
    assert_eq!(bob["renewal_asked_at"], Value::Null);
    assert_eq!(app.drain_outbox().await, 1);
    let receipt_mail = app.mails_to(BOB).pop().unwrap();
    assert_eq!(
        receipt_mail.subject(),
        "You renewed your subscription to Blog updates"
    );
    assert_eq!(
        String::from_utf8(receipt_mail.attachment("consent-receipt.jws").unwrap()).unwrap(),
        receipts[1]["receipt"].as_str().unwrap()
    );

    // A second click renews no more.
    let again = app
        .client
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("Already renewed"));
    assert_eq!(events_of(&app, BOB).await.len(), events.len());

    // Past Bob's first end nothing lapses: the renewal counts from the click.
    app.advance_clock(Duration::days(10));
    let report = app.sweep_consent().await;
    assert_eq!((report.lapsed, report.renewals_asked), (0, 0));
    assert_eq!(app.eligibility(BOB, BLOG).await["eligible"], true);
}

async fn a_renewal_link_renews_nothing_once_the_consent_has_lapsed(backend: Backend) {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("receipt.pem");
    new_receipt_key(&key);
    let app = TestApp::spawn_with(backend, |s| consent_settings(s, &key, None)).await;
    import(&app, &[(BOB, "consent", 95)]).await;
    let report = app.sweep_consent().await;
    assert_eq!((report.renewals_asked, report.lapsed), (1, 0));
    app.drain_outbox().await;
    let link = renewal_link(&app, BOB);
    let page = app.get_text(&link).await;
    let form = format!("notice_version={}", hidden_notice_version(&page));

    // A notice version the page never showed renews nothing: the page asks again.
    let stale = app
        .client
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("notice_version=1999-v0")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 422);
    assert!(stale.text().await.unwrap().contains("id=\"renew\""));
    assert_eq!(events_of(&app, BOB).await.len(), 1);

    app.advance_clock(Duration::days(6));
    assert_eq!(app.sweep_consent().await.lapsed, 1);
    assert_eq!(app.eligibility(BOB, BLOG).await["reason"], "consent_lapsed");
    for response in [
        app.client.get(&link).send().await.unwrap(),
        app.client
            .post(&link)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 410);
    }
    assert_eq!(app.status(BOB, BLOG).await, "not_subscribed");
}
