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

/// An address whose owner asked not to be sent confirmation requests: signed up, then
/// the cancel link of the mailed confirmation pressed with "don't ask me again".
const BLOCKED: &str = "sdk.blocked@example.com";

/// The mails written to the file transport's folder for `email`.
fn mails_to(mail_dir: &Path, email: &str) -> Vec<support::smtp_sink::ReceivedMail> {
    let Ok(entries) = std::fs::read_dir(mail_dir) else {
        return Vec::new();
    };
    entries
        .map(|entry| support::smtp_sink::ReceivedMail {
            from: String::new(),
            to: Vec::new(),
            raw: std::fs::read(entry.expect("a mail file").path()).expect("a readable mail"),
        })
        .filter(|mail| mail.header("To").is_some_and(|to| to.contains(email)))
        .collect()
}

async fn block_confirmation_requests(process: &OptinProcess, mail_dir: &Path) {
    let client = reqwest::Client::new();
    let signup = client
        .post(process.url("/v1/signups"))
        .json(&serde_json::json!({ "email": BLOCKED, "subscription_types": ["blog-updates"] }))
        .send()
        .await
        .expect("signup answers");
    assert_eq!(signup.status(), 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let cancel = loop {
        let links = mails_to(mail_dir, BLOCKED)
            .iter()
            .flat_map(support::smtp_sink::ReceivedMail::links)
            .find(|link| link.contains("/unsubscribe/"));
        if let Some(link) = links {
            break link;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no confirmation mail to {BLOCKED}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let blocked = client
        .post(&cancel)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("block=1")
        .send()
        .await
        .expect("the cancel link answers");
    assert_eq!(blocked.status(), 200);
}

/// Runs the SDK script against `process` and checks what the calls recorded.
async fn sdks_drive(process: &OptinProcess, mail_dir: &Path) {
    block_confirmation_requests(process, mail_dir).await;
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

    // The refused confirmation requests mailed nothing and left the block in place.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        mails_to(mail_dir, BLOCKED).len(),
        1,
        "only the first confirmation"
    );
    let contact: serde_json::Value = client
        .get(process.url("/v1/contacts/sdk.blocked%40example.com"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("the contact answers")
        .json()
        .await
        .expect("contact JSON");
    assert!(contact["signup_blocked_since"].is_string(), "{contact}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdks_work_against_the_embedded_store() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = dir.path().join("optin.redb").display().to_string();
    let mail_dir = dir.path().join("mail");
    let mail = format!("file://{}", mail_dir.display());
    let process = OptinProcess::start(&ProcessSettings::new(&store, &mail)).await;
    sdks_drive(&process, &mail_dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdks_work_against_redis() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mail_dir = dir.path().join("mail");
    let mail = format!("file://{}", mail_dir.display());
    let process = OptinProcess::start(&ProcessSettings::new(&redis.url, &mail)).await;
    sdks_drive(&process, &mail_dir).await;
}
