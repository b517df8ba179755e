//! Operations: health, readiness, the served spec, Prometheus metrics, and logs that are
//! structured, carry a request id, and never hold an address or a token.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::app::{Backend, TestApp};
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
