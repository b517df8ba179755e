//! GDPR rights and proof of consent, over HTTP on both stores: the provenance chain (and
//! tampering with it), export, rectification, restriction, erasure with its tombstone,
//! manual changes and imports.

mod support;

use optin::store::compact;
use reqwest::Method;
use serde_json::{json, Value};
use support::app::{urlencode, Backend, TestApp};
use support::redis_server::{event_log, event_log_frames};

on_embedded_and_redis!(
    the_provenance_log_records_who_what_when_and_verifies,
    tampering_with_a_stored_event_breaks_the_chain_at_that_event,
    the_export_holds_everything_held_on_the_person,
    restriction_makes_nothing_eligible_until_lifted,
    rectification_moves_the_history_to_the_new_address,
    an_interrupted_rectification_is_finished_by_repeating_it,
    erasure_leaves_no_byte_of_the_address_and_blocks_silent_reimport,
    manual_changes_follow_the_consent_evidence_rules,
    imports_answer_per_line_and_are_idempotent,
    a_person_downloads_and_erases_their_own_data_from_the_preference_center,
);

#[tokio::test]
async fn erasure_reaches_the_embedded_store_file() {
    let mut app = TestApp::spawn(Backend::Embedded).await;
    let file = std::path::PathBuf::from(app.store_url());
    erasure_reaches_the_files(&mut app, || files_text(std::slice::from_ref(&file))).await;
}

#[tokio::test]
async fn erasure_reaches_redis_append_only_and_snapshot_files() {
    // rdbcompression is off so that the scan below sees the values in the snapshot
    // before the erasure; LZF on top of zstd would hide them from this scan, not from
    // someone who decompresses it.
    let mut app = TestApp::spawn_with_redis_args(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "3600 1",
        "--rdbcompression",
        "no",
    ])
    .await;
    let dir = app.redis().unwrap().dir().to_path_buf();
    let mut connection = app.redis().unwrap().connection();
    let snapshot = move || {
        // Before the erasure, the snapshot must hold the address too.
        let _: () = ::redis::cmd("SAVE").query(&mut connection).unwrap();
    };
    erasure_reaches_the_files_with(&mut app, snapshot, || files_text(&every_file(&dir))).await;
}

async fn erasure_reaches_the_files(app: &mut TestApp, scan: impl FnMut() -> String) {
    erasure_reaches_the_files_with(app, || {}, scan).await;
}

/// Erases one of two people, runs the purge the scheduler would run, and scans the
/// store's files (live and freed space, plain and compact values) for the address as
/// typed and lower-cased, until it is gone or ten seconds have passed. The store keeps
/// working on its rewritten files, across a restart.
async fn erasure_reaches_the_files_with(
    app: &mut TestApp,
    before_erasure: impl FnOnce(),
    mut scan: impl FnMut() -> String,
) {
    let typed = "Erase.Me@Example.COM";
    app.subscribe_confirmed(typed, &["blog-updates"]).await;
    app.signup(typed, &["marketing"]).await; // a pending record and a queued mail
    app.subscribe_confirmed("keep-me@example.com", &["blog-updates"])
        .await;
    before_erasure();
    let before = scan();
    assert!(
        before.contains("erase.me@example.com"),
        "the scan sees addresses in the files"
    );

    let response = app
        .admin_send(Method::DELETE, &contact_path(typed, ""))
        .await;
    assert_eq!(response.status(), 204);
    let purged = app
        .state()
        .subscriptions
        .purge_erased_if_due(std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert!(purged, "the purge runs after an erasure");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let after = scan();
        assert!(
            after.contains("keep-me@example.com"),
            "others stay in the files"
        );
        if !after.contains("erase.me@example.com") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the erased address is still in the store's files after the purge"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !app.state()
            .subscriptions
            .purge_erased_if_due(std::time::Duration::from_secs(60))
            .await
            .unwrap(),
        "nothing is owed after the purge"
    );

    app.subscribe_confirmed("after@example.com", &["blog-updates"])
        .await;
    app.restart().await;
    for kept in ["keep-me@example.com", "after@example.com"] {
        assert_eq!(
            app.eligibility(kept, "blog-updates").await["eligible"],
            true,
            "{kept} is kept in the rewritten files"
        );
    }
}

/// Every file under `dir`.
fn every_file(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(every_file(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The files' bytes as text, lower-cased, followed by the JSON of every compact value
/// found anywhere in them: a zstd frame is found by its magic number wherever it lies,
/// in live data or in space a store has freed but not overwritten.
fn files_text(files: &[std::path::PathBuf]) -> String {
    const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
    let mut text = String::new();
    for file in files {
        let Ok(bytes) = std::fs::read(file) else {
            continue; // removed between the listing and the read
        };
        text.push_str(&String::from_utf8_lossy(&bytes));
        for at in 0..bytes.len().saturating_sub(ZSTD_MAGIC.len()) {
            if bytes[at..at + 4] != ZSTD_MAGIC {
                continue;
            }
            let Ok(length) = zstd::zstd_safe::find_frame_compressed_size(&bytes[at..]) else {
                continue;
            };
            if let Some(Ok(json)) = bytes.get(at..at + length).map(compact::unpack) {
                text.push_str(&String::from_utf8_lossy(&json));
            }
        }
    }
    text.to_lowercase()
}

fn contact_path(email: &str, rest: &str) -> String {
    format!("/v1/contacts/{}{rest}", urlencode(email))
}

async fn event_kinds(app: &TestApp, email: &str) -> Vec<String> {
    events(app, email).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn rectify(app: &TestApp, old: &str, new: &str) -> reqwest::Response {
    app.admin(Method::POST, &contact_path(old, "/rectification"))
        .await
        .json(&json!({ "new_email": new }))
        .send()
        .await
        .unwrap()
}

async fn events(app: &TestApp, email: &str) -> Value {
    app.admin_get_json(&contact_path(email, "/events")).await
}

async fn the_provenance_log_records_who_what_when_and_verifies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({ "email": "proof@example.com", "subscription_types": ["blog-updates"], "locale": "en",
                       "notice_version": "2024-05-v3", "source": { "form_id": "footer", "page_url": "https://shop.example/blog" } });
    assert_eq!(app.post_json("/v1/signups", &body).await.status(), 202);
    app.drain_outbox().await;
    let link = app.confirmation_link("proof@example.com");
    app.client
        .post(&link)
        .header("User-Agent", "ProofBrowser/1.0")
        .send()
        .await
        .unwrap();
    app.one_click_unsubscribe("proof@example.com", "blog-updates")
        .await;

    let log = events(&app, "proof@example.com").await;
    assert_eq!(log["chain_valid"], true);
    assert!(log.get("first_broken_event").is_none());
    let list = log["events"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let opt_in = &list[0];
    assert_eq!(opt_in["type"], "blog-updates");
    assert_eq!(opt_in["from"], "not_subscribed");
    assert_eq!(opt_in["to"], "opted_in");
    assert_eq!(opt_in["source"], "confirm_link");
    assert_eq!(opt_in["lawful_basis"], "consent");
    assert_eq!(opt_in["consent_notice"]["version"], "2024-05-v3");
    assert_eq!(
        opt_in["consent_notice"]["sha256"].as_str().unwrap().len(),
        64
    );
    assert_eq!(opt_in["ip"], "127.0.0.1");
    assert_eq!(opt_in["user_agent"], "ProofBrowser/1.0");
    assert_eq!(opt_in["signup"]["form_id"], "footer");
    assert_eq!(opt_in["signup"]["page_url"], "https://shop.example/blog");
    assert!(opt_in["request_id"].is_string());
    assert_eq!(opt_in["prev_hash"], "0".repeat(64));
    assert_eq!(list[1]["source"], "one_click");
    assert_eq!(list[1]["to"], "unsubscribed");
}

/// Alters the stored `to` of the first event directly in the store.
async fn tamper_first_event(app: &mut TestApp) {
    match app.backend {
        Backend::Redis | Backend::RedisCluster => {
            let mut connection = app.redis().unwrap().connection();
            let keys: Vec<String> = ::redis::cmd("KEYS")
                .arg("optin:*:ev:*")
                .query(&mut connection)
                .unwrap();
            assert_eq!(keys.len(), 1, "one contact's events");
            let log: Vec<u8> = ::redis::cmd("GET")
                .arg(&keys[0])
                .query(&mut connection)
                .unwrap();
            let mut events = event_log_frames(&log);
            let first = String::from_utf8(readable(&events[0])).unwrap();
            let altered = first.replace("\"to\":\"opted_in\"", "\"to\":\"unsubscribed\"");
            assert_ne!(first, altered);
            // Written back in the compact form the store uses, as an attacker with access
            // to Redis could.
            events[0] = compact::pack(altered.as_bytes()).unwrap();
            let _: () = ::redis::cmd("SET")
                .arg(&keys[0])
                .arg(event_log(&events))
                .query(&mut connection)
                .unwrap();
        }
        Backend::Embedded => {
            app.stop().await;
            let db = redb::Database::create(app.store_url()).unwrap();
            let table_def: redb::TableDefinition<(&str, u64), &[u8]> =
                redb::TableDefinition::new("events");
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(table_def).unwrap();
                let (key, value) = {
                    use redb::ReadableTable;
                    let mut iter = table.iter().unwrap();
                    let (k, v) = iter.next().unwrap().unwrap();
                    let (cid, seq) = k.value();
                    (
                        (cid.to_string(), seq),
                        String::from_utf8(v.value().to_vec()).unwrap(),
                    )
                };
                let altered = value.replace("\"to\":\"opted_in\"", "\"to\":\"unsubscribed\"");
                assert_ne!(value, altered);
                table
                    .insert((key.0.as_str(), key.1), altered.as_bytes())
                    .unwrap();
            }
            txn.commit().unwrap();
            drop(db);
            app.start().await;
        }
    }
}

async fn tampering_with_a_stored_event_breaks_the_chain_at_that_event(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("tamper@example.com", &["marketing", "job-alerts"])
        .await;
    let before = events(&app, "tamper@example.com").await;
    assert_eq!(before["chain_valid"], true);
    let first_id = before["events"][0]["id"].clone();
    tamper_first_event(&mut app).await;
    let after = events(&app, "tamper@example.com").await;
    assert_eq!(after["chain_valid"], false);
    assert_eq!(after["first_broken_event"], first_id);
}

async fn the_export_holds_everything_held_on_the_person(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("mine@example.com", &["blog-updates"])
        .await;
    app.signup("mine@example.com", &["marketing"]).await;
    let response = app
        .get_with_key(
            &contact_path("mine@example.com", "/export"),
            support::app::ADMIN_KEY,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let export: Value = response.json().await.unwrap();
    assert_eq!(export["contact"]["email"], "mine@example.com");
    assert_eq!(
        export["contact"]["subscriptions"]["blog-updates"]["status"],
        "opted_in"
    );
    assert_eq!(
        export["contact"]["pending"][0]["types"],
        json!(["marketing"])
    );
    assert_eq!(export["events"].as_array().unwrap().len(), 1);
    assert_eq!(export["chain_valid"], true);
    let missing = app
        .get_with_key(
            &contact_path("nobody@example.com", "/export"),
            support::app::ADMIN_KEY,
        )
        .await;
    assert_eq!(missing.status(), 404);
}

async fn restriction_makes_nothing_eligible_until_lifted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("restrict@example.com", &["blog-updates"])
        .await;
    let response = app
        .admin_send(
            Method::POST,
            &contact_path("restrict@example.com", "/restriction"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer = app
        .eligibility("restrict@example.com", "blog-updates")
        .await;
    assert_eq!(answer["eligible"], false);
    assert_eq!(answer["status"], "opted_in", "the status itself is kept");
    let response = app
        .admin_send(
            Method::DELETE,
            &contact_path("restrict@example.com", "/restriction"),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.eligibility("restrict@example.com", "blog-updates")
            .await["eligible"],
        true
    );
    let kinds = event_kinds(&app, "restrict@example.com").await;
    assert_eq!(
        kinds,
        ["status_changed", "restricted", "restriction_lifted"]
    );
    let log = events(&app, "restrict@example.com").await;
    assert_eq!(log["events"][1]["actor"], "admin-test");
    assert_eq!(log["chain_valid"], true);
}

async fn rectification_moves_the_history_to_the_new_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("old.name@example.com", &["job-alerts"])
        .await;
    let response = rectify(&app, "old.name@example.com", "New.Name@Example.com").await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.contact("old.name@example.com").await.status(), 404);
    assert_eq!(
        app.eligibility("new.name@example.com", "job-alerts").await["eligible"],
        true
    );
    assert_eq!(
        app.eligibility("old.name@example.com", "job-alerts").await["eligible"],
        false
    );
    let log = events(&app, "new.name@example.com").await;
    assert_eq!(log["chain_valid"], true);
    let list = log["events"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["source"], "confirm_link", "the history came along");
    assert_eq!(list[1]["kind"], "rectified");
    let stats: Value = app.admin_get_json("/v1/stats").await;
    assert_eq!(
        stats["by_type"]["job-alerts"]["opted_in"], 1,
        "counted once"
    );

    app.subscribe_confirmed("taken@example.com", &["job-alerts"])
        .await;
    let clash = rectify(&app, "new.name@example.com", "taken@example.com").await;
    assert_eq!(clash.status(), 409);
}

/// Leaves the state an interrupted rectification leaves behind: of its three atomic
/// steps, the first (the old contact marked with where it goes, which freezes it) and the
/// second (the contact written under the new address, with the old history and a
/// `rectified` event) done, the last (removing the old contact) not.
async fn leave_a_half_done_rectification(app: &mut TestApp, old: &str, new: &str) {
    use optin::domain::{ContactChange, EmailAddress, MoveTarget, Planned, RequestMeta};
    app.stop().await;
    let settings = support::app::test_settings(app.store_url(), "smtp://127.0.0.1:25", app.port);
    let config = optin::config::Config::from_settings(settings).unwrap();
    let store = optin::store::open(app.store_url()).await.unwrap();
    let old_id = config.index.contact_id(&EmailAddress::parse(old).unwrap());
    let new_email = EmailAddress::parse(new).unwrap();
    let new_id = config.index.contact_id(&new_email);
    let stored = store.load_contact(&old_id).await.unwrap().unwrap();
    let target = MoveTarget {
        id: new_id.clone(),
        email: new_email,
        meta: RequestMeta::default(),
    };
    let Planned::Write(mark) = stored.clone().start_move(target) else {
        panic!("the mark is a write")
    };
    let marked = mark.after().unwrap().clone();
    store
        .apply(ContactChange::between(
            old_id.clone(),
            Some(&stored),
            Some(marked.clone()),
            Vec::new(),
            Vec::new(),
            &config.catalog,
        ))
        .await
        .unwrap();
    let history = store.events(&old_id).await.unwrap();
    let Some(Planned::Write(moved)) = marked.moved(history, chrono::Utc::now()) else {
        panic!("a marked contact moves")
    };
    let mut events = moved.carried().to_vec();
    events.extend_from_slice(moved.events());
    store
        .apply(ContactChange::between(
            new_id,
            None,
            moved.after().cloned(),
            events,
            Vec::new(),
            &config.catalog,
        ))
        .await
        .unwrap();
    drop(store);
    app.start().await;
}

async fn an_interrupted_rectification_is_finished_by_repeating_it(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("half.old@example.com", &["job-alerts"])
        .await;
    leave_a_half_done_rectification(&mut app, "half.old@example.com", "half.new@example.com").await;
    assert_eq!(
        app.contact("half.old@example.com").await.status(),
        200,
        "the interruption left both contacts (the old one frozen)"
    );
    assert_eq!(app.contact("half.new@example.com").await.status(), 200);

    let repeated = rectify(&app, "half.old@example.com", "half.new@example.com").await;
    assert_eq!(repeated.status(), 200, "the repeat finishes the move");
    assert_eq!(app.contact("half.old@example.com").await.status(), 404);
    assert_eq!(
        events(&app, "half.new@example.com").await["chain_valid"],
        true
    );
    let kinds = event_kinds(&app, "half.new@example.com").await;
    assert_eq!(
        kinds.iter().filter(|k| **k == "rectified").count(),
        1,
        "finishing adds no second rectified event: {kinds:?}"
    );
    assert_eq!(
        app.eligibility("half.new@example.com", "job-alerts").await["eligible"],
        true
    );
    let stats: Value = app.admin_get_json("/v1/stats").await;
    assert_eq!(
        stats["by_type"]["job-alerts"]["opted_in"], 1,
        "counted once after the move"
    );
}

/// A stored Redis value as the JSON inside it: contacts are `<version>:` and a compact
/// value, events (each frame of an event log) are compact; anything else is returned as
/// it is.
fn readable(value: &[u8]) -> Vec<u8> {
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    let value = match value.get(digits..digits + 2) {
        Some([b':', compact::FORMAT_V1]) if digits > 0 => &value[digits + 1..],
        _ => value,
    };
    match value.split_first() {
        Some((&compact::FORMAT_V1, frame)) => {
            compact::unpack(frame).expect("a compact value unpacks")
        }
        _ => value.to_vec(),
    }
}

/// Every stored value, as text, to look for personal data in.
async fn everything_stored(app: &mut TestApp) -> String {
    let mut all = String::new();
    match app.backend {
        Backend::Redis | Backend::RedisCluster => {
            let mut connection = app.redis().unwrap().connection();
            let keys: Vec<String> = ::redis::cmd("KEYS")
                .arg("*")
                .query(&mut connection)
                .unwrap();
            for key in keys {
                all.push_str(&key);
                let kind: String = ::redis::cmd("TYPE")
                    .arg(&key)
                    .query(&mut connection)
                    .unwrap();
                let values: Vec<Vec<u8>> = match kind.as_str() {
                    "string" if key.contains(":ev:") => event_log_frames(
                        &::redis::cmd("GET")
                            .arg(&key)
                            .query::<Vec<u8>>(&mut connection)
                            .unwrap(),
                    ),
                    "string" => vec![::redis::cmd("GET")
                        .arg(&key)
                        .query(&mut connection)
                        .unwrap()],
                    "hash" => ::redis::cmd("HGETALL")
                        .arg(&key)
                        .query(&mut connection)
                        .unwrap(),
                    "list" => ::redis::cmd("LRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .query(&mut connection)
                        .unwrap(),
                    "set" => ::redis::cmd("SMEMBERS")
                        .arg(&key)
                        .query(&mut connection)
                        .unwrap(),
                    "zset" => ::redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .query(&mut connection)
                        .unwrap(),
                    other => panic!("unexpected key type {other}"),
                };
                for value in values {
                    all.push_str(&String::from_utf8_lossy(&readable(&value)));
                    all.push('\n');
                }
            }
        }
        Backend::Embedded => {
            use redb::{ReadableDatabase, TableHandle};
            app.stop().await;
            {
                let db = redb::Database::create(app.store_url()).unwrap();
                let txn = db.begin_read().unwrap();
                let names: Vec<String> = txn
                    .list_tables()
                    .unwrap()
                    .map(|t| t.name().to_string())
                    .collect();
                assert!(names.len() >= 8, "all tables are scanned: {names:?}");
                for name in names {
                    all.push_str(&dump_table(&txn, &name));
                }
            }
            app.start().await;
        }
    }
    all
}

fn dump_table(txn: &redb::ReadTransaction, name: &str) -> String {
    use redb::ReadableTable;
    let mut out = String::new();
    macro_rules! dump {
        ($k:ty, $v:ty) => {
            if let Ok(table) = txn.open_table(redb::TableDefinition::<$k, $v>::new(name)) {
                for entry in table.iter().unwrap() {
                    let (k, v) = entry.unwrap();
                    out.push_str(&format!("{:?} {:?}\n", k.value(), v.value()));
                }
                return String::from_utf8_lossy(out.as_bytes()).replace("\\\"", "\"");
            }
        };
    }
    dump!(&str, &[u8]);
    dump!((&str, u64), &[u8]);
    dump!((u64, &str), ());
    dump!((&str, &str), ());
    dump!((&str, u64, &str), ());
    dump!((&str, &str), u64);
    dump!(&str, &str);
    dump!(&str, u64);
    dump!(&str, i64);
    dump!((&str, u64, &str), ());
    dump!((&str, &str), u64);
    panic!("table {name} has a type this scan does not know");
}

fn bytes_text(dump: &str) -> String {
    // Values were printed as byte lists; turn them back into text to search in.
    dump.split(['[', ']'])
        .map(|chunk| {
            let bytes: Vec<u8> = chunk
                .split(", ")
                .filter_map(|n| n.trim().parse::<u8>().ok())
                .collect();
            if bytes.is_empty() {
                chunk.to_string()
            } else {
                String::from_utf8_lossy(&bytes).into_owned()
            }
        })
        .collect()
}

async fn erasure_leaves_no_byte_of_the_address_and_blocks_silent_reimport(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("erase-me@example.com", &["blog-updates"])
        .await;
    app.signup("erase-me@example.com", &["marketing"]).await; // a pending record and a queued mail
    app.subscribe_confirmed("keep-me@example.com", &["blog-updates"])
        .await;
    // Held in quarantine (a throw-away domain): its record holds the address too.
    app.signup("erase-me@mailinator.com", &["marketing"]).await;
    let before = bytes_text(&everything_stored(&mut app).await);
    assert!(
        before.contains("erase-me@example.com") && before.contains("erase-me@mailinator.com"),
        "the scan does see addresses"
    );
    // The member index (Mailchimp's subscriber_hash) keeps a keyed hash, never the MD5.
    let md5 = optin::service::subscriber_hash(
        &optin::domain::EmailAddress::parse("erase-me@example.com").unwrap(),
    );
    assert!(
        !before.contains(&md5),
        "the MD5 of an address is never stored"
    );

    let response = app
        .admin_send(Method::DELETE, &contact_path("erase-me@example.com", ""))
        .await;
    assert_eq!(response.status(), 204);
    let held = app
        .admin_send(Method::DELETE, &contact_path("erase-me@mailinator.com", ""))
        .await;
    assert_eq!(held.status(), 204);
    let after = bytes_text(&everything_stored(&mut app).await);
    assert!(
        !after.contains("erase-me"),
        "no byte of the erased address remains"
    );
    assert!(
        after.contains("keep-me@example.com"),
        "others are untouched"
    );
    assert_eq!(app.contact("erase-me@example.com").await.status(), 404);
    assert_eq!(app.drain_outbox().await, 0, "the queued mail went with it");

    let import = "{\"email\":\"erase-me@example.com\",\"subscription_type\":\"blog-updates\",\"status\":\"opted_in\",\"lawful_basis\":\"legitimate_interests\"}\n";
    let results = run_import(&app, import).await;
    assert_eq!(
        results[0]["ok"], false,
        "an import cannot quietly re-add an erased person"
    );
    assert_eq!(results[0]["field"], "consent_evidence");

    app.subscribe_confirmed("erase-me@example.com", &["blog-updates"])
        .await;
    assert_eq!(
        app.eligibility("erase-me@example.com", "blog-updates")
            .await["eligible"],
        true,
        "their own signup works"
    );
}

async fn manual_changes_follow_the_consent_evidence_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let put = |email: &str, body: Value| {
        let path = contact_path(email, "/subscriptions/marketing");
        let app = &app;
        async move {
            app.admin(Method::PUT, &path)
                .await
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let no_basis = put("manual@example.com", json!({ "status": "opted_in" })).await;
    assert_eq!(no_basis.status(), 422);
    assert_eq!(
        no_basis.json::<Value>().await.unwrap()["field"],
        "lawful_basis"
    );
    let no_evidence = put(
        "manual@example.com",
        json!({ "status": "opted_in", "lawful_basis": "consent" }),
    )
    .await;
    assert_eq!(no_evidence.status(), 422);
    assert_eq!(
        no_evidence.json::<Value>().await.unwrap()["field"],
        "consent_evidence"
    );
    assert_eq!(
        app.contact("manual@example.com").await.status(),
        404,
        "refused changes store nothing"
    );

    let ok = put("manual@example.com", json!({ "status": "opted_in", "lawful_basis": "consent", "consent_evidence": "paper form 2024-03-02, box 7" })).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        app.status("manual@example.com", "marketing").await,
        "opted_in"
    );
    let log = events(&app, "manual@example.com").await;
    assert_eq!(log["events"][0]["source"], "admin_api");
    assert_eq!(log["events"][0]["actor"], "admin-test");
    assert_eq!(
        log["events"][0]["consent_evidence"],
        "paper form 2024-03-02, box 7"
    );

    assert_eq!(
        put("manual@example.com", json!({ "status": "unsubscribed" }))
            .await
            .status(),
        200
    );
    let back = put(
        "manual@example.com",
        json!({ "status": "opted_in", "lawful_basis": "contract" }),
    )
    .await;
    assert_eq!(
        back.status(),
        422,
        "never back to opted_in without evidence of new consent"
    );
    assert_eq!(
        app.status("manual@example.com", "marketing").await,
        "unsubscribed"
    );

    let ask = put(
        "ask@example.com",
        json!({ "status": "opted_in", "lawful_basis": "consent", "send_confirmation": true }),
    )
    .await;
    assert_eq!(ask.status(), 200);
    assert_eq!(
        ask.json::<Value>().await.unwrap()["outcome"],
        "confirmation_sent"
    );
    assert_eq!(
        app.status("ask@example.com", "marketing").await,
        "not_subscribed"
    );
    app.drain_outbox().await;
    app.client
        .post(app.confirmation_link("ask@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(app.status("ask@example.com", "marketing").await, "opted_in");

    let bad = put(
        "x@example.com",
        json!({ "status": "opted_in", "lawful_basis": "because" }),
    )
    .await;
    assert_eq!(bad.status(), 422);
    assert_eq!(bad.json::<Value>().await.unwrap()["field"], "lawful_basis");
}

async fn run_import(app: &TestApp, ndjson: &str) -> Vec<Value> {
    let response = app
        .admin(Method::POST, "/v1/imports")
        .await
        .header("content-type", "application/x-ndjson")
        .body(ndjson.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn imports_answer_per_line_and_are_idempotent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let lines = [
        r#"{"email":"a@example.com","subscription_type":"blog-updates","status":"opted_in","lawful_basis":"consent","consent_evidence":"event signup sheet 2024-01"}"#,
        r#"{"email":"b@example.com","subscription_type":"event-info","status":"opted_in","lawful_basis":"contract","explanation":"ticket holder"}"#,
        r#"{"email":"not an address","subscription_type":"blog-updates","status":"opted_in","lawful_basis":"contract"}"#,
        r#"{"email":"c@example.com","subscription_type":"nope","status":"opted_in","lawful_basis":"contract"}"#,
        r#"{"email":"d@example.com","subscription_type":"marketing","status":"opted_in","lawful_basis":"consent"}"#,
        r"{this is not json",
        r#"{"email":"e@example.com","subscription_type":"marketing","status":"unsubscribed"}"#,
    ];
    let body = lines.join("\n") + "\n";
    let results = run_import(&app, &body).await;
    assert_eq!(
        results.len(),
        lines.len() + 1,
        "one result per line and a summary"
    );
    let ok: Vec<bool> = results[..lines.len()]
        .iter()
        .map(|r| r["ok"] == true)
        .collect();
    assert_eq!(ok, [true, true, false, false, false, false, true]);
    assert_eq!(results[2]["field"], "email");
    assert_eq!(results[3]["field"], "subscription_type");
    assert_eq!(results[4]["field"], "consent_evidence");
    assert_eq!(results[6]["processed"], 7, "a running count");
    let summary = results.last().unwrap();
    assert_eq!(summary["done"], true);
    assert_eq!(summary["succeeded"], 3);
    assert_eq!(summary["failed"], 4);
    assert_eq!(
        app.status("a@example.com", "blog-updates").await,
        "opted_in"
    );
    assert_eq!(app.status("b@example.com", "event-info").await, "opted_in");
    assert_eq!(
        app.status("e@example.com", "marketing").await,
        "unsubscribed"
    );
    let log = events(&app, "b@example.com").await;
    assert_eq!(log["events"][0]["source"], "import");
    assert_eq!(log["events"][0]["explanation"], "ticket holder");

    let again = run_import(&app, &body).await;
    assert_eq!(
        again[0]["outcome"], "unchanged",
        "re-running changes nothing"
    );
    assert_eq!(again[1]["outcome"], "unchanged");
    assert_eq!(
        events(&app, "a@example.com").await["events"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "no duplicate events"
    );

    // An overlong line is refused on its own, blank lines are skipped (but numbered, as
    // the file has them), and a last line without a newline still counts.
    let overlong = format!(r#"{{"email":"{}@example.com"}}"#, "x".repeat(70 * 1024));
    let body = format!("\n{overlong}\n\n{}", lines[6]);
    let results = run_import(&app, &body).await;
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[0]["ok"], false);
    assert_eq!(results[0]["line"], 2, "the blank first line counts");
    assert_eq!(results[0]["error"], "the line is longer than 65536 bytes");
    assert_eq!(results[1]["ok"], true, "the import goes on: {results:?}");
    assert_eq!(results[1]["line"], 4);
    assert_eq!(results[1]["outcome"], "unchanged");
    assert_eq!(results[2]["succeeded"], 1);
    assert_eq!(results[2]["failed"], 1);
}

async fn a_person_downloads_and_erases_their_own_data_from_the_preference_center(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("self@example.com", &["blog-updates"])
        .await;
    let preferences = app.preferences_link("self@example.com");
    let page = app.get_text(&preferences).await;
    assert!(
        page.contains("id=\"export\"") && page.contains("id=\"erase\""),
        "the page offers both"
    );

    let export = app
        .client
        .post(format!("{preferences}/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    assert!(export.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let export: Value = export.json().await.unwrap();
    assert_eq!(export["contact"]["email"], "self@example.com");
    let log = events(&app, "self@example.com").await;
    assert_eq!(
        log["events"].as_array().unwrap().last().unwrap()["kind"],
        "exported",
        "the export is recorded"
    );
    assert_eq!(log["chain_valid"], true);

    let question = app
        .client
        .get(format!("{preferences}/erase"))
        .send()
        .await
        .unwrap();
    assert_eq!(question.status(), 200);
    assert!(question
        .text()
        .await
        .unwrap()
        .contains("id=\"erase-confirm\""));
    assert_eq!(
        app.contact("self@example.com").await.status(),
        200,
        "asking changes nothing"
    );

    let erased = app
        .client
        .post(format!("{preferences}/erase"))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 200);
    assert_eq!(app.contact("self@example.com").await.status(), 404);
    assert_eq!(
        app.eligibility("self@example.com", "blog-updates").await["eligible"],
        false
    );
    let again = app.client.get(&preferences).send().await.unwrap();
    assert_eq!(again.status(), 410, "the link has nothing left to show");
}
