//! The proof that real clients work: the vendors' official Python SDKs
//! (`hubspot-api-client`, `mailchimp-marketing`, pinned, in a venv made by
//! tests/compat/sdk.sh) drive a running release binary, on the embedded store and on a
//! real redis-server. The script asserts every answer; here its exit status and what the
//! calls left in the store are checked.

mod support;

use std::path::Path;
use std::process::Command;

use support::app::{ADMIN_KEY, SEND_KEY};
use support::process::{OptinProcess, ProcessSettings};
use support::redis_server::RedisServer;

/// Runs the SDK script against `process` and checks what the calls recorded.
async fn sdks_drive(process: &OptinProcess) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/sdk.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&process.address)
        .arg(ADMIN_KEY)
        .arg(SEND_KEY)
        .output()
        .expect("run tests/compat/sdk.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the SDK check failed ({}):\n{stdout}\n{}\nservice log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        process.log()
    );
    assert!(stdout.contains("every SDK call answered as expected"));

    // What the SDK calls did is what optin's own API shows, recorded as its own writes.
    let client = reqwest::Client::new();
    let events: serde_json::Value = client
        .get(process.url("/v1/contacts/sdk.hubspot%40example.com/events"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("events answer")
        .json()
        .await
        .expect("events JSON");
    assert_eq!(events["chain_valid"], true);
    let opt_in = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "blog-updates" && e["to"] == "opted_in")
        .expect("the SDK's subscribe is an event");
    assert_eq!(opt_in["source"], "admin_api");
    assert_eq!(opt_in["actor"], "admin-test");
    assert_eq!(opt_in["lawful_basis"], "consent");
    assert_eq!(
        process
            .eligibility("sdk.hubspot@example.com", "event-info")
            .await["status"],
        "opted_in"
    );
    assert_eq!(
        process
            .eligibility("sdk.direct@example.com", "blog-updates")
            .await["status"],
        "unsubscribed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdks_work_against_the_embedded_store() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = dir.path().join("optin.redb").display().to_string();
    let mail = format!("file://{}", dir.path().join("mail").display());
    let process = OptinProcess::start(&ProcessSettings::new(&store, &mail)).await;
    sdks_drive(&process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdks_work_against_redis() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mail = format!("file://{}", dir.path().join("mail").display());
    let process = OptinProcess::start(&ProcessSettings::new(&redis.url, &mail)).await;
    sdks_drive(&process).await;
}
