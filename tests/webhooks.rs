//! Webhooks end to end: every consent change reaches a real HTTP receiver through the
//! durable outbox, signed so that the independent Python `standardwebhooks` package
//! accepts it; retries keep the `webhook-id`; a 410 holds the endpoint's jobs until it is
//! enabled; an erasure drops the contact's undelivered notices and sends `contact.erased`.

mod support;

use std::time::Duration as StdDuration;

use chrono::Duration;
use optin::config::Settings;
use optin::webhooks::signature::SigningKey;
use optin::webhooks::EndpointSettings;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};
use support::app::{urlencode, Backend, TestApp, SEND_KEY};
use support::webhook_receiver::{python_verify, Answer, ReceivedRequest, WebhookReceiver};

on_every_backend!(
    every_change_reaches_the_endpoint_signed,
    a_410_holds_the_endpoints_jobs_until_it_is_enabled,
    an_erasure_drops_undelivered_notices_and_announces_itself,
);
on_backends!(
    [
        embedded_retries => Backend::Embedded,
        redis_retries => Backend::Redis,
        cluster_retries => Backend::RedisCluster,
    ],
    failed_deliveries_are_retried_with_one_id_then_dead_lettered,
    a_timed_out_delivery_is_retried,
    a_worker_that_dies_mid_delivery_leaves_the_job_to_be_taken_again,
);

const WAIT: StdDuration = StdDuration::from_secs(5);
const ANN: &str = "ann@example.com";

fn endpoint(id: &str, url: String, secret: &str) -> EndpointSettings {
    EndpointSettings {
        id: id.into(),
        url,
        secret: SecretString::from(secret.to_string()),
        events: None,
        subscription_types: None,
    }
}

/// An app with one endpoint `crm` pointing at `receiver`; returns the app and the secret.
async fn app_with_endpoint(backend: Backend, receiver: &WebhookReceiver) -> (TestApp, String) {
    let secret = SigningKey::generate().unwrap();
    let url = receiver.url("/hook");
    let for_settings = secret.clone();
    let app = TestApp::spawn_with(backend, move |settings: &mut Settings| {
        settings.webhooks.endpoints = vec![endpoint("crm", url, &for_settings)];
        settings.webhooks.max_attempts = 3;
        settings.webhooks.retry_base_secs = 10;
        settings.webhooks.timeout_secs = 2;
    })
    .await;
    (app, secret)
}

fn contact_path(email: &str, rest: &str) -> String {
    format!("/v1/contacts/{}{rest}", urlencode(email))
}

fn body(request: &ReceivedRequest) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

fn types_of(requests: &[ReceivedRequest]) -> Vec<String> {
    requests
        .iter()
        .map(|r| body(r)["type"].as_str().unwrap().to_string())
        .collect()
}

fn webhook_id(request: &ReceivedRequest) -> String {
    request
        .header("webhook-id")
        .expect("a webhook-id")
        .to_string()
}

/// Checks the Standard Webhooks signature with our own verifier.
fn assert_signed(secret: &str, request: &ReceivedRequest) {
    let key = SigningKey::parse(secret).unwrap();
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let signature = request.header("webhook-signature").unwrap();
    assert!(
        key.verify(&webhook_id(request), timestamp, &request.body, signature),
        "the signature verifies"
    );
}

async fn endpoint_view(app: &TestApp, id: &str) -> Value {
    let listed = app.admin_get_json("/v1/webhooks").await;
    listed["webhooks"]
        .as_array()
        .expect("a webhooks array")
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("endpoint {id} listed: {listed}"))
        .clone()
}

async fn admin_status(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> u16 {
    let mut request = app.admin(method, path).await;
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn every_change_reaches_the_endpoint_signed(backend: Backend) {
    let receiver = WebhookReceiver::start().await;
    let (app, secret) = app_with_endpoint(backend, &receiver).await;

    app.subscribe_confirmed(ANN, &["blog-updates"]).await;
    app.drain_outbox().await;
    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(types_of(&received), ["subscription.opted_in"]);
    let opted_in = &received[0];
    assert_eq!(opted_in.header("content-type"), Some("application/json"));
    // The independent check: Python's reference library accepts our signature.
    assert_eq!(python_verify(&secret, opted_in), Ok(()));
    let events = app.admin_get_json(&contact_path(ANN, "/events")).await;
    let last_event = events["events"].as_array().unwrap().last().unwrap().clone();
    let data = &body(opted_in)["data"];
    assert_eq!(data["email"], ANN);
    assert_eq!(data["subscription_type"], "blog-updates");
    assert_eq!(data["status"], "opted_in");
    assert_eq!(data["previous_status"], "not_subscribed");
    assert_eq!(data["source"], "confirm_link");
    assert_eq!(data["lawful_basis"], "consent");
    assert_eq!(data["event_id"], last_event["id"], "the provenance event");
    assert_eq!(data["confirm_method"], "button", "how it was confirmed");
    assert_eq!(data["seconds_since_sent"], last_event["seconds_since_sent"]);
    assert!(data["seconds_since_sent"].is_u64());
    assert_eq!(data["at"], last_event["at"]);
    let first_version = data["version"].as_u64().expect("a version");

    app.one_click_unsubscribe(ANN, "blog-updates").await;
    assert_eq!(
        admin_status(&app, Method::POST, &contact_path(ANN, "/restriction"), None).await,
        200
    );
    assert_eq!(
        admin_status(
            &app,
            Method::DELETE,
            &contact_path(ANN, "/restriction"),
            None
        )
        .await,
        200
    );
    let new = "ann.new@example.com";
    let moved = json!({ "new_email": new });
    assert_eq!(
        admin_status(
            &app,
            Method::POST,
            &contact_path(ANN, "/rectification"),
            Some(moved)
        )
        .await,
        200
    );
    // Notices still queued for the old address when it moved are delivered, too.
    app.drain_outbox().await;
    assert_eq!(
        admin_status(&app, Method::DELETE, &contact_path(new, ""), None).await,
        204
    );
    app.drain_outbox().await;
    let received = receiver.wait_for(6, WAIT).await;
    assert_eq!(received.len(), 6);
    let of_type = |wanted: &str| -> Value {
        let found: Vec<&ReceivedRequest> = received
            .iter()
            .filter(|r| body(r)["type"] == wanted)
            .collect();
        assert_eq!(found.len(), 1, "one {wanted} in {:?}", types_of(&received));
        body(found[0])["data"].clone()
    };
    let unsubscribed = of_type("subscription.unsubscribed");
    assert_eq!(unsubscribed["status"], "unsubscribed");
    assert_eq!(unsubscribed["previous_status"], "opted_in");
    assert_eq!(unsubscribed["source"], "one_click");
    assert_eq!(unsubscribed["email"], ANN);
    let restricted = of_type("contact.restricted");
    let lifted = of_type("contact.restriction_lifted");
    assert_eq!(restricted["email"], ANN);
    let rectified = of_type("contact.rectified");
    assert_eq!(rectified["email"], new);
    assert_eq!(rectified["previous_email"], ANN);
    let erased = of_type("contact.erased");
    assert_eq!(
        erased,
        json!({ "email": new, "reason": "erasure", "at": erased["at"] })
    );
    assert_eq!(types_of(&received).last().unwrap(), "contact.erased");
    // Each change is newer than the one before: a receiver can drop stale deliveries.
    let versions: Vec<u64> = [&unsubscribed, &restricted, &lifted]
        .iter()
        .map(|d| d["version"].as_u64().unwrap())
        .collect();
    assert!(
        first_version < versions[0] && versions[0] < versions[1] && versions[1] < versions[2],
        "versions rise: {first_version} {versions:?}"
    );
    assert!(rectified["version"].as_u64().unwrap() >= 1);
    let mut ids: Vec<String> = received.iter().map(webhook_id).collect();
    for request in &received {
        assert_signed(&secret, request);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "one webhook-id per notice");
    let crm = endpoint_view(&app, "crm").await;
    assert_eq!(crm["pending"], 0);
    assert_eq!(crm["last_status"], 200);
    assert!(crm["last_success_at"].is_string());
    assert!(
        !crm.to_string().contains(&secret),
        "the secret is never shown"
    );
}

async fn failed_deliveries_are_retried_with_one_id_then_dead_lettered(backend: Backend) {
    let receiver = WebhookReceiver::start().await;
    receiver.answer(Answer::Status(500));
    let (app, _secret) = app_with_endpoint(backend, &receiver).await;

    app.subscribe_confirmed(ANN, &["blog-updates"]).await;
    app.drain_outbox().await;
    receiver.wait_for(1, WAIT).await;
    let crm = endpoint_view(&app, "crm").await;
    assert_eq!(
        (crm["pending"].clone(), crm["dead"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(crm["last_status"], 500);
    assert!(crm["last_failure_at"].is_string());
    assert_eq!(crm["enabled"], true);

    // Not due before its backoff (10 s, then 20 s) has passed.
    assert_eq!(app.drain_outbox().await, 0);
    app.advance_clock(Duration::seconds(11));
    app.drain_outbox().await;
    app.advance_clock(Duration::seconds(21));
    app.drain_outbox().await;
    let received = receiver.wait_for(3, WAIT).await;
    let ids: Vec<String> = received.iter().map(webhook_id).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one id on every retry: {ids:?}"
    );
    assert_eq!(
        received[0].body, received[2].body,
        "the same bytes each time"
    );

    let dead = app.admin_get_json("/v1/outbox/dead").await;
    let dead = dead["dead_letters"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["kind"], "webhook");
    assert_eq!(dead[0]["id"], ids[0], "the job id is the webhook-id");
    assert_eq!(
        dead[0]["webhook"],
        json!({ "endpoint": "crm", "event_type": "subscription.opted_in" })
    );
    assert_eq!(dead[0]["to"], Value::Null);
    assert_eq!(dead[0]["attempts"], 3);
    assert!(dead[0]["last_error"].as_str().unwrap().contains("500"));
    assert!(
        !dead[0].to_string().contains(ANN),
        "no address in the listing"
    );
    let crm = endpoint_view(&app, "crm").await;
    assert_eq!(
        (crm["pending"].clone(), crm["dead"].clone()),
        (json!(0), json!(1))
    );

    receiver.answer(Answer::Status(204));
    let retry = format!("/v1/outbox/dead/{}/retry", ids[0]);
    assert_eq!(admin_status(&app, Method::POST, &retry, None).await, 202);
    app.drain_outbox().await;
    let received = receiver.wait_for(4, WAIT).await;
    assert_eq!(webhook_id(&received[3]), ids[0]);
    let crm = endpoint_view(&app, "crm").await;
    assert_eq!(
        (crm["pending"].clone(), crm["dead"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(crm["last_status"], 204);
}

async fn a_410_holds_the_endpoints_jobs_until_it_is_enabled(backend: Backend) {
    let receiver = WebhookReceiver::start().await;
    receiver.answer(Answer::Status(410));
    let (app, _secret) = app_with_endpoint(backend, &receiver).await;

    app.subscribe_confirmed(ANN, &["blog-updates"]).await;
    app.drain_outbox().await;
    receiver.wait_for(1, WAIT).await;
    let crm = endpoint_view(&app, "crm").await;
    assert_eq!(crm["enabled"], false);
    assert_eq!(crm["last_status"], 410);
    assert_eq!(crm["pending"], 1, "the job waits: nothing is dropped");

    app.one_click_unsubscribe(ANN, "blog-updates").await;
    app.drain_outbox().await;
    app.advance_clock(Duration::minutes(5));
    app.drain_outbox().await;
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing goes to a disabled endpoint"
    );
    assert_eq!(endpoint_view(&app, "crm").await["pending"], 2);
    assert!(app.admin_get_json("/v1/outbox/dead").await["dead_letters"]
        .as_array()
        .unwrap()
        .is_empty());

    receiver.answer(Answer::Status(200));
    assert_eq!(
        admin_status(&app, Method::POST, "/v1/webhooks/crm/enable", None).await,
        200
    );
    assert_eq!(endpoint_view(&app, "crm").await["enabled"], true);
    app.advance_clock(Duration::seconds(16));
    app.drain_outbox().await;
    let received = receiver.wait_for(3, WAIT).await;
    let mut delivered = types_of(&received[1..]);
    delivered.sort();
    assert_eq!(
        delivered,
        ["subscription.opted_in", "subscription.unsubscribed"]
    );
    assert!(
        received[1..]
            .iter()
            .any(|r| webhook_id(r) == webhook_id(&received[0])),
        "the held job keeps its webhook-id"
    );
    assert_eq!(endpoint_view(&app, "crm").await["pending"], 0);
}

async fn an_erasure_drops_undelivered_notices_and_announces_itself(backend: Backend) {
    let receiver = WebhookReceiver::start().await;
    receiver.answer(Answer::Status(503));
    let (app, _secret) = app_with_endpoint(backend, &receiver).await;

    app.subscribe_confirmed(ANN, &["blog-updates"]).await;
    app.one_click_unsubscribe(ANN, "blog-updates").await;
    app.drain_outbox().await;
    assert_eq!(endpoint_view(&app, "crm").await["pending"], 2);

    assert_eq!(
        admin_status(&app, Method::DELETE, &contact_path(ANN, ""), None).await,
        204
    );
    assert_eq!(
        endpoint_view(&app, "crm").await["pending"],
        1,
        "only the erasure notice is left"
    );
    let before = receiver.received().len();
    receiver.answer(Answer::Status(200));
    app.advance_clock(Duration::hours(1));
    app.drain_outbox().await;
    let received = receiver.wait_for(before + 1, WAIT).await;
    assert_eq!(types_of(&received[before..]), ["contact.erased"]);
    assert_eq!(body(&received[before])["data"]["reason"], "erasure");
    app.advance_clock(Duration::hours(1));
    app.drain_outbox().await;
    assert_eq!(
        receiver.received().len(),
        before + 1,
        "nothing else arrives"
    );
    assert_eq!(endpoint_view(&app, "crm").await["pending"], 0);
}

async fn a_timed_out_delivery_is_retried(backend: Backend) {
    let receiver = WebhookReceiver::start().await;
    receiver.answer(Answer::Hang);
    let (app, _secret) = app_with_endpoint(backend, &receiver).await;
    app.subscribe_confirmed(ANN, &["blog-updates"]).await;

    // `webhooks.timeout_secs` is 2 here: the attempt gives up, and the job waits.
    let started = std::time::Instant::now();
    app.drain_outbox().await;
    assert!(
        started.elapsed() < StdDuration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let crm = endpoint_view(&app, "crm").await;
    assert_eq!(crm["last_status"], Value::Null, "no answer came");
    assert!(crm["last_failure_at"].is_string());
    assert_eq!(crm["pending"], 1);

    receiver.answer(Answer::Status(200));
    app.advance_clock(Duration::seconds(11));
    app.drain_outbox().await;
    let received = receiver.wait_for(2, WAIT).await;
    assert_eq!(webhook_id(&received[0]), webhook_id(&received[1]));
    assert_eq!(received[1].answered, Some(200));
    assert_eq!(endpoint_view(&app, "crm").await["pending"], 0);
}

async fn a_worker_that_dies_mid_delivery_leaves_the_job_to_be_taken_again(backend: Backend) {
    let receiver = WebhookReceiver::start().await;
    let (app, _secret) = app_with_endpoint(backend, &receiver).await;
    app.subscribe_confirmed(ANN, &["blog-updates"]).await;
    receiver.answer(Answer::Hang);
    // The worker takes the job and is stopped while the receiver holds the request: the
    // job stays leased, unacknowledged, as when a process dies mid-delivery.
    tokio::select! {
        _ = app.drain_outbox() => panic!("the hanging receiver never answered"),
        _ = receiver.wait_for(1, WAIT) => {}
    }
    receiver.answer(Answer::Status(200));
    assert_eq!(
        app.drain_outbox().await,
        0,
        "leased: no one else takes it yet"
    );
    // `mail.lease_secs` is 120 by default.
    app.advance_clock(Duration::seconds(121));
    app.drain_outbox().await;
    let received = receiver.wait_for(2, WAIT).await;
    assert_eq!(webhook_id(&received[0]), webhook_id(&received[1]));
    assert_eq!(received[0].body, received[1].body);
    assert_eq!(endpoint_view(&app, "crm").await["pending"], 0);
}

#[tokio::test]
async fn endpoint_filters_choose_events_and_subscription_types() {
    let all = WebhookReceiver::start().await;
    let filtered = WebhookReceiver::start().await;
    let secret = SigningKey::generate().unwrap();
    let (all_url, filtered_url) = (all.url("/all"), filtered.url("/filtered"));
    let app = TestApp::spawn_with(Backend::Embedded, move |settings: &mut Settings| {
        let mut only_blog_unsubscribes = endpoint("blog-unsubscribes", filtered_url, &secret);
        only_blog_unsubscribes.events = Some(vec!["subscription.unsubscribed".into()]);
        only_blog_unsubscribes.subscription_types = Some(vec!["blog-updates".into()]);
        settings.webhooks.endpoints =
            vec![endpoint("all", all_url, &secret), only_blog_unsubscribes];
    })
    .await;

    app.subscribe_confirmed(ANN, &["blog-updates", "job-alerts"])
        .await;
    app.one_click_unsubscribe(ANN, "blog-updates").await;
    app.one_click_unsubscribe(ANN, "job-alerts").await;
    app.drain_outbox().await;

    let everything = all.wait_for(4, WAIT).await;
    let mut kinds: Vec<(String, String)> = everything
        .iter()
        .map(|r| {
            let b = body(r);
            (
                b["type"].as_str().unwrap().to_string(),
                b["data"]["subscription_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("subscription.opted_in".into(), "blog-updates".into()),
            ("subscription.opted_in".into(), "job-alerts".into()),
            ("subscription.unsubscribed".into(), "blog-updates".into()),
            ("subscription.unsubscribed".into(), "job-alerts".into()),
        ]
    );
    let chosen = filtered.wait_for(1, WAIT).await;
    assert_eq!(chosen.len(), 1);
    assert_eq!(body(&chosen[0])["type"], "subscription.unsubscribed");
    assert_eq!(
        body(&chosen[0])["data"]["subscription_type"],
        "blog-updates"
    );
    // contact.* notices go to every endpoint whose events allow them, whatever its types.
    assert_eq!(everything.len(), 4);
}

#[tokio::test]
async fn retention_and_self_service_erasures_say_why() {
    let receiver = WebhookReceiver::start().await;
    let secret = SigningKey::generate().unwrap();
    let url = receiver.url("/hook");
    let app = TestApp::spawn_with(Backend::Embedded, move |settings: &mut Settings| {
        let mut erasures = endpoint("erasures", url, &secret);
        erasures.events = Some(vec!["contact.erased".into()]);
        settings.webhooks.endpoints = vec![erasures];
        settings.privacy.retain_inactive_days = Some(30);
    })
    .await;

    app.subscribe_confirmed(ANN, &["blog-updates"]).await;
    app.one_click_unsubscribe(ANN, "blog-updates").await;
    app.advance_clock(Duration::days(31));
    assert_eq!(app.purge_inactive().await, 1);

    let bob = "bob@example.com";
    app.subscribe_confirmed(bob, &["blog-updates"]).await;
    let preferences = app.preferences_link(bob);
    let erase = app
        .client
        .post(format!("{preferences}/erase"))
        .form(&[("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert!(erase.status().is_success(), "{}", erase.status());
    app.drain_outbox().await;

    let received = receiver.wait_for(2, WAIT).await;
    let erased: Vec<(Value, Value)> = received
        .iter()
        .map(|r| {
            (
                body(r)["data"]["email"].clone(),
                body(r)["data"]["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        erased,
        [
            (json!(ANN), json!("retention")),
            (json!(bob), json!("self_service"))
        ]
    );
}

#[tokio::test]
async fn a_test_delivery_reaches_one_endpoint_and_admins_alone_manage_endpoints() {
    let receiver = WebhookReceiver::start().await;
    let (app, secret) = app_with_endpoint(Backend::Embedded, &receiver).await;

    assert_eq!(
        admin_status(&app, Method::POST, "/v1/webhooks/crm/test", None).await,
        202
    );
    app.drain_outbox().await;
    let received = receiver.wait_for(1, WAIT).await;
    let test = body(&received[0]);
    assert_eq!(test["type"], "webhook.test");
    assert_eq!(test["data"], json!({}));
    assert!(test["timestamp"].is_string());
    assert_eq!(python_verify(&secret, &received[0]), Ok(()));

    for path in ["/v1/webhooks/nope/test", "/v1/webhooks/nope/enable"] {
        assert_eq!(
            admin_status(&app, Method::POST, path, None).await,
            404,
            "{path}"
        );
    }
    let as_sender = app.get_with_key("/v1/webhooks", SEND_KEY).await;
    assert_eq!(as_sender.status(), 403);
    let anonymous = app
        .client
        .get(app.url("/v1/webhooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let listed = app.admin_get_json("/v1/webhooks").await;
    assert_eq!(listed["webhooks"][0]["url"], receiver.url("/hook"));
    assert!(!listed.to_string().contains(&secret));
}

#[test]
fn a_bad_endpoint_is_refused_naming_the_setting() {
    let mut settings = support::app::test_settings("./unused.redb", "file://./unused", 1);
    settings.webhooks.endpoints = vec![endpoint(
        "crm",
        "http://crm.example.com/hook".into(),
        &SigningKey::generate().unwrap(),
    )];
    let error = optin::config::Config::from_settings(settings)
        .err()
        .expect("plain http to another host is refused")
        .to_string();
    assert!(error.contains("webhooks.endpoints[crm].url"), "{error}");
}

#[test]
fn keys_webhook_prints_a_secret_that_endpoints_accept() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_optin"))
        .args(["keys", "webhook"])
        .output()
        .expect("run optin keys webhook");
    assert!(output.status.success());
    let secret = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    SigningKey::parse(&secret).expect("the printed secret parses");
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_optin"))
        .args(["keys", "webhook"])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8(again.stdout).unwrap().trim(), secret);
}

/// Real processes on one Redis: instance A is killed with SIGKILL while its notices are
/// undelivered (the receiver fails them); B and C, running together, deliver every one,
/// and no notice is acknowledged twice, so no two instances delivered it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_a_killed_instance_loses_no_notice_and_two_instances_deliver_each_once() {
    use support::process::{OptinProcess, ProcessSettings};
    use support::redis_server::RedisServer;
    use support::smtp_sink::SmtpSink;

    const CHANGES: usize = 20;
    let redis = RedisServer::start();
    let smtp = SmtpSink::start();
    let receiver = WebhookReceiver::start().await;
    receiver.answer(Answer::Status(500));
    let secret = SigningKey::generate().unwrap();
    let mut settings = ProcessSettings::new(&redis.url, &smtp.url())
        .with_env("OPTIN_WEBHOOKS__RETRY_BASE_SECS", "1")
        .with_env("OPTIN_WEBHOOKS__MAX_ATTEMPTS", "100");
    settings.extra_toml = format!(
        "[[webhooks.endpoints]]\nid = \"crm\"\nurl = \"{}\"\nsecret = \"{secret}\"\n",
        receiver.url("/hook")
    );
    let mut a = OptinProcess::start(&settings).await;
    let client = reqwest::Client::new();
    for i in 0..CHANGES {
        let path = format!(
            "/v1/contacts/{}/subscriptions/blog-updates",
            urlencode(&format!("person{i}@example.com"))
        );
        let answer = client
            .put(a.url(&path))
            .bearer_auth(support::app::ADMIN_KEY)
            .json(&json!({
                "status": "opted_in",
                "lawful_basis": "consent",
                "consent_evidence": "signed paper form"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    }
    // A has tried (and failed) at least one delivery: it holds jobs when it dies.
    receiver.wait_for(1, StdDuration::from_secs(10)).await;
    a.kill9();

    let b = OptinProcess::start(&settings).await;
    let c = OptinProcess::start(&settings).await;
    receiver.answer(Answer::Status(200));
    let deadline = std::time::Instant::now() + StdDuration::from_secs(60);
    while receiver
        .received()
        .iter()
        .filter(|r| r.answered == Some(200))
        .count()
        < CHANGES
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    // Give any double delivery the time to show up.
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    let acknowledged: Vec<ReceivedRequest> = receiver
        .received()
        .into_iter()
        .filter(|r| r.answered == Some(200))
        .collect();
    let mut emails: Vec<String> = acknowledged
        .iter()
        .map(|r| body(r)["data"]["email"].as_str().unwrap().to_string())
        .collect();
    emails.sort();
    let mut expected: Vec<String> = (0..CHANGES)
        .map(|i| format!("person{i}@example.com"))
        .collect();
    expected.sort();
    assert_eq!(
        emails,
        expected,
        "every notice acknowledged exactly once\n--- B ---\n{}\n--- C ---\n{}",
        b.log(),
        c.log()
    );
    let mut ids: Vec<String> = acknowledged.iter().map(webhook_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), CHANGES);
}
