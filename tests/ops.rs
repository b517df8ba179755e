//! Operations: health, readiness, the served spec, Prometheus metrics, and logs that are
//! structured, carry a request id, and never hold an address or a token.

mod support;

use std::time::Duration;

use optin::config::StringList;
use serde_json::{json, Value};
use support::app::{Backend, TestApp, ADMIN_KEY, SEND_KEY};
use support::process::{OptinProcess, ProcessSettings};
use support::smtp_sink::SmtpSink;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_the_spec_are_served() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let spec = app
        .client
        .get(app.url("/openapi.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.status(), 200);
    let served = spec.text().await.unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    assert_eq!(served, committed, "the served spec is the committed one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened_per_route_and_source() {
    let app = TestApp::spawn(Backend::Embedded).await;
    app.subscribe_confirmed("metrics@example.com", &["blog-updates"])
        .await;
    app.one_click_unsubscribe("metrics@example.com", "blog-updates")
        .await;
    let metrics = app.get_text(app.url("/metrics")).await;
    for expected in [
        "optin_signups_total",
        "optin_confirmations_total",
        "optin_unsubscribes_total{source=\"one_click\"}",
        "optin_eligibility_checks_total",
        "optin_outbox_sent_total",
        "optin_outbox_queued",
        "optin_outbox_dead",
        "optin_http_request_duration_seconds_bucket",
        "route=\"/v1/signups\"",
        "route=\"/unsubscribe/{token}\"",
    ] {
        assert!(metrics.contains(expected), "/metrics lacks {expected}");
    }
    assert!(
        !metrics.contains("metrics@example.com"),
        "no address in a metric label"
    );
}

const METRICS_KEY: &str = "test-metrics-key";

/// The app with a `metrics` key configured and `adjust` applied.
async fn app_with_metrics_key(adjust: impl FnOnce(&mut optin::config::Settings)) -> TestApp {
    TestApp::spawn_with(Backend::Embedded, |settings| {
        use sha2::Digest as _;
        let hash = hex::encode(sha2::Sha256::digest(METRICS_KEY.as_bytes()));
        settings
            .security
            .api_keys
            .0
            .push(secrecy::SecretString::from(format!(
                "scraper:metrics:{hash}"
            )));
        adjust(settings);
    })
    .await
}

/// `GET /metrics` with an optional key and `X-Forwarded-For`: the status and the body.
async fn scrape(app: &TestApp, key: Option<&str>, forwarded_for: Option<&str>) -> (u16, String) {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(client) = forwarded_for {
        request = request.header("X-Forwarded-For", client);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_a_metrics_key_from_an_address_not_allowed() {
    // The test client is on loopback; no address is allowed, so only a key opens it.
    let app = app_with_metrics_key(|s| s.server.metrics_allowed_ips = StringList(vec![])).await;
    // A signup that queues a confirmation mail: what an outsider must not watch.
    assert_eq!(
        app.signup("new@example.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    app.drain_outbox().await;

    let (status, body) = scrape(&app, None, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("urn:optin:problem:missing-api-key"), "{body}");
    assert!(!body.contains("optin_outbox_sent_total"));
    let (status, body) = scrape(&app, Some("not-a-key"), None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = scrape(&app, Some(SEND_KEY), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("urn:optin:problem:insufficient-scope"),
        "{body}"
    );

    for key in [METRICS_KEY, ADMIN_KEY] {
        let (status, body) = scrape(&app, Some(key), None).await;
        assert_eq!(status, 200, "{key}: {body}");
        assert!(body.contains("optin_outbox_sent_total"), "{body}");
    }
    // The metrics key opens nothing else.
    let stats = app.get_with_key("/v1/stats", METRICS_KEY).await;
    assert_eq!(stats.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_an_allowed_address_without_a_key_but_not_a_client_behind_a_proxy() {
    // Default: loopback only. The test client connects from 127.0.0.1.
    let app = app_with_metrics_key(|_| {}).await;
    let (status, body) = scrape(&app, None, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("optin_outbox_queued"), "{body}");
    // Without trusted proxies, X-Forwarded-For is anyone's to write and is ignored.
    let (status, _) = scrape(&app, None, Some("203.0.113.9")).await;
    assert_eq!(status, 200);

    // Behind a trusted proxy on loopback, the client is the forwarded address.
    let proxied = app_with_metrics_key(|s| {
        s.server.trusted_proxies = StringList(vec!["127.0.0.1".into()]);
        s.server.metrics_allowed_ips = StringList(vec!["10.1.0.0/16".into()]);
    })
    .await;
    let (status, _) = scrape(&proxied, None, Some("203.0.113.9")).await;
    assert_eq!(status, 401, "an outside client relayed by the proxy");
    let (status, _) = scrape(&proxied, None, None).await;
    assert_eq!(status, 401, "the proxy itself is not in the allowed range");
    let (status, _) = scrape(&proxied, None, Some("10.1.2.3")).await;
    assert_eq!(
        status, 200,
        "a scraper inside the allowed range, through the proxy"
    );
    let (status, _) = scrape(&proxied, Some(METRICS_KEY), Some("203.0.113.9")).await;
    assert_eq!(status, 200, "a key opens it from anywhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_lines_with_request_ids_and_never_an_address_or_token() {
    let smtp = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("optin.redb").display().to_string();
    let settings = ProcessSettings::new(&store, &smtp.url()).with_env("OPTIN_LOG__FORMAT", "json");
    let process = OptinProcess::start(&settings).await;
    let client = reqwest::Client::new();
    let email = "secret.person@example.com";
    let response = client
        .post(process.url("/v1/signups"))
        .json(&json!({ "email": email, "subscription_types": ["blog-updates"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let mails = smtp.wait_for(1, Duration::from_secs(10));
    let link = mails[0].confirmation_link();
    let token = link.rsplit('/').next().unwrap().to_string();
    let link = link.replace(&link[..link.find("/confirm/").unwrap()], &process.address);
    client.get(&link).send().await.unwrap();
    client
        .get(process.url(&format!("/v1/contacts/{email}")))
        .send()
        .await
        .unwrap();
    // The access line of the last request is the last thing this test waits for.
    let log = process
        .wait_for_log("/v1/contacts/{email}", Duration::from_secs(10))
        .await;
    assert!(
        !log.contains(email) && !log.contains("secret.person"),
        "no address in the log:\n{log}"
    );
    assert!(!log.contains(&token), "no token in the log");
    assert!(log.contains("s***@example.com"), "addresses appear masked");
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty(), "JSON lines");
    let access: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert!(
        access.iter().any(|l| l["route"] == "/confirm/{token}"),
        "route patterns, not raw paths"
    );
    assert!(access.iter().any(|l| l["route"] == "/v1/contacts/{email}"));
    assert!(
        access
            .iter()
            .any(|l| l["request_id"] == request_id.as_str()),
        "the request id of the answer is in the log"
    );
}
