//! Faults, with real processes and no mocks: Redis killed and started again, or hung with
//! SIGSTOP, under a running app; an SMTP server that refuses for a while or for good; the
//! service binary killed with SIGKILL mid-traffic (on Redis and on the embedded store); a
//! worker that dies holding a job; and SIGTERM during a request.
//!
//! Each test asserts what a person or an operator would notice: the answer and how fast it
//! comes, whether the confirmation mail arrives (once), what the admin API shows, and that
//! nothing acknowledged is lost and nothing half-written appears.
//!
//! The tests that run the service binary as separate processes are named `slow_…`. CI
//! runs them all; locally `cargo test --test faults -- --skip slow_` leaves them out.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::app::{urlencode, Backend, TestApp, ADMIN_KEY, SEND_KEY};
use support::process::{OptinProcess, ProcessSettings};
use support::redis_server::RedisServer;
use support::smtp_sink::{ReceivedMail, Rejection, SmtpSink};

/// A request to a dead store must be answered within this (the store bounds each call
/// to 2 s; the rest is slack for a loaded test machine).
const FAIL_FAST: Duration = Duration::from_millis(2500);

/// Redis as the README asks for when no acknowledged change may be lost.
const DURABLE_REDIS: &[&str] = &["--appendonly", "yes", "--appendfsync", "always"];

/// Sends a signal (`STOP`, `CONT`, …) to a process, as `kill -NAME PID` would.
fn send_signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// Polls `/readyz` until it answers 200; fails after 10 s, naming what should have healed.
async fn wait_until_ready(app: &TestApp, after_what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("readyz answers")
            .status();
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still answers {status} 10 s after Redis {after_what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 10 s) until the instance's outbox holds no job, queued or being sent:
/// from then on it sends nothing more, so a duplicate would already have arrived.
/// Outbox workers of the crash test's instances: the bound on mails doubled by a kill.
const CRASH_TEST_WORKERS: usize = 4;

async fn wait_for_empty_outbox(process: &OptinProcess) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = reqwest::get(process.url("/metrics"))
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("/metrics text");
        if metrics.lines().any(|line| line == "optin_outbox_queued 0") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox was not empty 10 s later\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_problem_json(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"))
}

/// Sends one request and measures how long the answer took.
async fn timed(request: reqwest::RequestBuilder) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let response = request
        .send()
        .await
        .expect("the app answers (a status, not a dropped connection)");
    (response, started.elapsed())
}

/// Mails in the sink, by lower-cased recipient.
fn mails_by_recipient(smtp: &SmtpSink) -> BTreeMap<String, Vec<ReceivedMail>> {
    let mut by_recipient: BTreeMap<String, Vec<ReceivedMail>> = BTreeMap::new();
    for mail in smtp.messages() {
        for to in &mail.to {
            by_recipient
                .entry(to.to_ascii_lowercase())
                .or_default()
                .push(mail.clone());
        }
    }
    by_recipient
}

/// Waits (bounded) until `address` has received at least one mail; returns when.
async fn wait_for_mail_to(smtp: &SmtpSink, address: &str, timeout: Duration) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        if mails_by_recipient(smtp).contains_key(address) {
            return Some(Instant::now());
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// After an outage, a new signup is answered 202 and its mail is the only one queued.
async fn a_new_signup_gets_only_its_own_mail(app: &TestApp, email: &str, subscription_type: &str) {
    assert_eq!(app.signup(email, &[subscription_type]).await.status(), 202);
    assert_eq!(
        app.drain_outbox().await,
        1,
        "only the new signup's mail is queued"
    );
    assert_eq!(app.mails_to(email).len(), 1);
}

/// The same link on another instance: every instance shares the signing keys.
fn on_instance(link: &str, process: &OptinProcess) -> String {
    let path = &link[link.find("/confirm/").expect("a confirm link")..];
    process.url(path)
}

// ---------------------------------------------------------------------------------------
// 1. Redis goes down under a running app, and comes back.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_requests_get_a_fast_503_and_once_it_is_back_everything_works_and_nothing_is_half_written(
) {
    let mut app = TestApp::spawn_with_redis_args(DURABLE_REDIS).await;
    app.subscribe_confirmed("kept@example.com", &["blog-updates"])
        .await;
    assert_eq!(app.mails_to("kept@example.com").len(), 1);

    app.redis().expect("a Redis backend").stop();

    // A new address and a second type for a known one: both must fail whole.
    for (email, types) in [
        ("newcomer@example.com", ["blog-updates"]),
        ("kept@example.com", ["job-alerts"]),
    ] {
        let (response, took) = timed(
            app.client
                .post(app.url("/v1/signups"))
                .json(&json!({ "email": email, "subscription_types": types })),
        )
        .await;
        assert_eq!(
            response.status(),
            503,
            "a signup for {email} while Redis is down"
        );
        println!("while Redis was down, a signup for {email} was answered 503 in {took:?}");
        assert!(
            took < FAIL_FAST,
            "the signup for {email} was answered after {took:?}, not within {FAIL_FAST:?}"
        );
        assert!(
            is_problem_json(&response),
            "a 503 under /v1 is problem+json: {:?}",
            response.headers()
        );
        assert!(
            response.headers().get("retry-after").is_some(),
            "a 503 tells the client when to retry"
        );
        let problem: Value = response.json().await.expect("a problem body");
        assert_eq!(problem["type"], "urn:optin:problem:unavailable");
        assert_eq!(problem["status"], 503);
    }

    let (ready, took) = timed(app.client.get(app.url("/readyz"))).await;
    assert_eq!(ready.status(), 503, "/readyz reports the store is gone");
    println!(
        "while Redis was down, /readyz answered {} in {took:?}",
        ready.status()
    );
    assert!(took < FAIL_FAST, "/readyz answered after {took:?}");

    let (eligibility, took) = timed(
        app.client
            .get(app.url("/v1/eligibility"))
            .query(&[
                ("email", "kept@example.com"),
                ("subscription_type", "blog-updates"),
            ])
            .bearer_auth(SEND_KEY),
    )
    .await;
    assert_eq!(
        eligibility.status(),
        503,
        "a sender asking while Redis is down gets 503, never a guess such as eligible=false"
    );
    println!(
        "while Redis was down, eligibility answered {} in {took:?}",
        eligibility.status()
    );
    assert!(took < FAIL_FAST, "eligibility answered after {took:?}");
    assert!(is_problem_json(&eligibility));

    app.redis().expect("a Redis backend").restart();
    let back = Instant::now();
    wait_until_ready(&app, "came back: the app does not reconnect by itself").await;
    println!(
        "/readyz was 200 again {:?} after Redis restarted",
        back.elapsed()
    );

    // What was acknowledged before the outage is intact; what failed left no trace.
    let kept: Value = app
        .contact("kept@example.com")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        kept["subscriptions"]["blog-updates"]["status"], "opted_in",
        "{kept}"
    );
    assert_eq!(
        kept["subscriptions"]["blog-updates"]["source"], "confirm_link",
        "{kept}"
    );
    assert_eq!(
        kept["subscriptions"]["job-alerts"]["status"], "not_subscribed",
        "the failed signup changed nothing: {kept}"
    );
    assert_eq!(
        kept["pending_confirmations"],
        json!([]),
        "the failed signup left no pending confirmation: {kept}"
    );
    assert_eq!(
        app.eligibility("kept@example.com", "blog-updates").await["eligible"],
        true
    );
    assert_eq!(
        app.contact("newcomer@example.com").await.status(),
        404,
        "the failed signup stored no contact"
    );
    let depth = app.outbox_depth().await;
    assert_eq!(
        (depth.queued, depth.dead),
        (0, 0),
        "the failed signups queued no mail"
    );

    // And the service works again, mail included, without a restart of the app.
    a_new_signup_gets_only_its_own_mail(&app, "after@example.com", "job-alerts").await;
    assert!(
        app.mails_to("newcomer@example.com").is_empty(),
        "no mail for a signup that was answered 503"
    );
    assert_eq!(
        app.mails_to("kept@example.com").len(),
        1,
        "no second mail for the known address"
    );
    app.confirm_mailed_link("after@example.com").await;
    assert_eq!(
        app.status("after@example.com", "job-alerts").await,
        "opted_in"
    );
}

/// A hung Redis (SIGSTOP: the connection stays open and nothing answers) is worse than a
/// dead one for a client that waits; every call must still give up in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_hangs_requests_still_get_a_503_in_time_and_the_service_recovers_when_it_resumes(
) {
    let mut app = TestApp::spawn(Backend::Redis).await;
    app.subscribe_confirmed("kept@example.com", &["blog-updates"])
        .await;
    let pid = app.redis().expect("a Redis backend").pid();
    let signal = |name: &str| send_signal(pid, name);
    signal("STOP");

    let (signup, took) =
        timed(app.client.post(app.url("/v1/signups")).json(
            &json!({ "email": "stalled@example.com", "subscription_types": ["blog-updates"] }),
        ))
        .await;
    let signup_status = signup.status();
    let (ready, ready_took) = timed(app.client.get(app.url("/readyz"))).await;
    let (eligibility, eligibility_took) = timed(
        app.client
            .get(app.url("/v1/eligibility"))
            .query(&[
                ("email", "kept@example.com"),
                ("subscription_type", "blog-updates"),
            ])
            .bearer_auth(SEND_KEY),
    )
    .await;
    let eligibility_status = eligibility.status();
    signal("CONT");
    println!("while Redis hung: signup {signup_status} in {took:?}, /readyz {} in {ready_took:?}, eligibility {eligibility_status} in {eligibility_took:?}", ready.status());

    assert_eq!(signup_status, 503, "a signup while Redis hangs");
    assert!(is_problem_json(&signup));
    assert!(
        took < FAIL_FAST,
        "the signup was answered after {took:?}, not within {FAIL_FAST:?}"
    );
    assert_eq!(ready.status(), 503, "/readyz while Redis hangs");
    assert!(
        ready_took < FAIL_FAST,
        "/readyz answered after {ready_took:?}"
    );
    assert_eq!(eligibility_status, 503, "eligibility while Redis hangs");
    assert!(
        eligibility_took < FAIL_FAST,
        "eligibility answered after {eligibility_took:?}"
    );

    let resumed = Instant::now();
    wait_until_ready(&app, "resumed").await;
    println!(
        "/readyz was 200 again {:?} after Redis resumed",
        resumed.elapsed()
    );
    assert_eq!(
        app.eligibility("kept@example.com", "blog-updates").await["eligible"],
        true
    );
    assert_eq!(
        app.contact("stalled@example.com").await.status(),
        404,
        "the signup answered 503 stored nothing"
    );
    a_new_signup_gets_only_its_own_mail(&app, "resumed@example.com", "blog-updates").await;
    assert!(app.mails_to("stalled@example.com").is_empty());
}

// ---------------------------------------------------------------------------------------
// 2 and 3. The SMTP server refuses, for a while (451) or for good (550). Every backend.
// ---------------------------------------------------------------------------------------

on_every_backend!(
    a_mail_server_that_refuses_for_a_while_delays_the_mail_which_then_arrives_exactly_once,
    a_mail_refused_for_good_is_dead_lettered_at_once_and_an_admin_can_send_it_again,
);

async fn a_mail_server_that_refuses_for_a_while_delays_the_mail_which_then_arrives_exactly_once(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.smtp.set_rejecting(Rejection::Temporary);

    assert_eq!(
        app.signup("later@example.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    assert_eq!(app.drain_outbox().await, 1, "the worker tried the job");
    assert!(
        app.smtp.messages().is_empty(),
        "the server refused with 451: nothing arrived"
    );
    let depth = app.outbox_depth().await;
    assert_eq!(
        (depth.queued, depth.dead),
        (1, 0),
        "a 451 keeps the job queued for a retry, it is not dead-lettered"
    );
    assert!(app
        .get_with_key("/v1/outbox/dead", ADMIN_KEY)
        .await
        .json::<Value>()
        .await
        .unwrap()["dead_letters"]
        .as_array()
        .unwrap()
        .is_empty());

    app.smtp.set_accepting();
    assert_eq!(
        app.drain_outbox().await,
        0,
        "the job waits for its backoff (retry_base_secs = 60 in the tests), it is not hammered"
    );
    assert!(app.smtp.messages().is_empty());

    app.advance_clock(chrono::Duration::seconds(61));
    assert_eq!(
        app.drain_outbox().await,
        1,
        "after the backoff the job is sent"
    );
    assert_eq!(app.drain_outbox().await, 0, "and then it is gone");
    assert_eq!(
        app.mails_to("later@example.com").len(),
        1,
        "the mail arrives exactly once"
    );
    assert_eq!(app.smtp.messages().len(), 1);
    let depth = app.outbox_depth().await;
    assert_eq!((depth.queued, depth.dead), (0, 0));

    // The late mail is as good as a prompt one.
    app.confirm_mailed_link("later@example.com").await;
    assert_eq!(
        app.status("later@example.com", "blog-updates").await,
        "opted_in"
    );
}

async fn a_mail_refused_for_good_is_dead_lettered_at_once_and_an_admin_can_send_it_again(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.smtp.set_rejecting(Rejection::Permanent);

    assert_eq!(
        app.signup("bounced@example.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    assert_eq!(app.drain_outbox().await, 1);
    assert!(
        app.smtp.messages().is_empty(),
        "the server refused with 550: nothing arrived"
    );
    let depth = app.outbox_depth().await;
    assert_eq!(
        (depth.queued, depth.dead),
        (0, 1),
        "a 550 dead-letters the job on the first attempt"
    );
    app.advance_clock(chrono::Duration::days(1));
    assert_eq!(
        app.drain_outbox().await,
        0,
        "a dead letter is never retried by itself"
    );

    let listed = app.get_with_key("/v1/outbox/dead", ADMIN_KEY).await;
    assert_eq!(listed.status(), 200);
    let listed = listed.text().await.unwrap();
    assert!(
        !listed.contains("bounced@example.com"),
        "the dead-letter list shows no full address: {listed}"
    );
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let dead = listed["dead_letters"].as_array().expect("dead_letters");
    assert_eq!(dead.len(), 1, "{listed}");
    let letter = &dead[0];
    assert_eq!(
        letter["to"], "b***@example.com",
        "the address is masked: {letter}"
    );
    assert_eq!(letter["attempts"], 1, "{letter}");
    let last_error = letter["last_error"].as_str().unwrap_or_default();
    assert!(
        last_error.contains("550"),
        "last_error says what the server answered: {letter}"
    );
    let id = letter["id"].as_str().expect("an id").to_string();

    let unknown = app
        .admin(
            reqwest::Method::POST,
            &format!("/v1/outbox/dead/{}/retry", uuid::Uuid::new_v4()),
        )
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404, "retrying an unknown dead letter");
    assert!(is_problem_json(&unknown), "{:?}", unknown.headers());
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["type"],
        "urn:optin:problem:not-found"
    );

    app.smtp.set_accepting();
    let retried = app
        .admin_send(
            reqwest::Method::POST,
            &format!("/v1/outbox/dead/{id}/retry"),
        )
        .await;
    assert_eq!(retried.status(), 202);
    assert_eq!(
        app.drain_outbox().await,
        1,
        "the revived job is due at once"
    );
    assert_eq!(
        app.mails_to("bounced@example.com").len(),
        1,
        "the mail arrives once"
    );
    assert_eq!(app.drain_outbox().await, 0);
    assert_eq!(app.smtp.messages().len(), 1);

    let listed = app.admin_get_json("/v1/outbox/dead").await;
    assert_eq!(
        listed["dead_letters"],
        json!([]),
        "the dead-letter list is empty again"
    );
    let depth = app.outbox_depth().await;
    assert_eq!((depth.queued, depth.dead), (0, 0));

    let again = app
        .admin_send(
            reqwest::Method::POST,
            &format!("/v1/outbox/dead/{id}/retry"),
        )
        .await;
    assert_eq!(
        again.status(),
        404,
        "a dead letter is revived once; it is not dead any more"
    );

    app.confirm_mailed_link("bounced@example.com").await;
    assert_eq!(
        app.status("bounced@example.com", "blog-updates").await,
        "opted_in"
    );
}

// ---------------------------------------------------------------------------------------
// 4. kill -9 in the middle of a burst of signups.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_a_crash_mid_traffic_on_redis_loses_no_acknowledged_signup_every_one_gets_its_mail() {
    let redis = RedisServer::start_with_args(DURABLE_REDIS);
    a_crash_mid_traffic_loses_no_acknowledged_signup(&redis.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_a_crash_mid_traffic_on_the_embedded_store_loses_no_acknowledged_signup_every_one_gets_its_mail(
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optin.redb").display().to_string();
    a_crash_mid_traffic_loses_no_acknowledged_signup(&path).await;
}

/// 200 signups, at most 16 in flight; kill -9 after about 100 answers; a new process on
/// the same store must mail every signup that was answered 202.
async fn a_crash_mid_traffic_loses_no_acknowledged_signup(store_url: &str) {
    const TOTAL: usize = 200;
    const KILL_AFTER: usize = 100;
    // Requests in flight at once: a kill then lands with some in flight and the rest
    // never sent, so the test sees acknowledged, lost-in-flight and refused requests.
    const IN_FLIGHT: usize = 16;

    let smtp = SmtpSink::start();
    // One test client posts every signup, as a form backend behind one address would:
    // the per-IP signup limits are raised, as its operator would raise them (else the
    // firewall holds the burst in quarantine).
    let settings = ProcessSettings::new(store_url, &smtp.url())
        .with_env("OPTIN_SIGNUP__MAX_SIGNUPS_PER_IP", "100000")
        .with_env("OPTIN_SIGNUP__MAX_UNCONFIRMED_PER_IP", "100000")
        .with_env("OPTIN_MAIL__WORKERS", &CRASH_TEST_WORKERS.to_string());
    let mut first = OptinProcess::start(&settings).await;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut requests = Vec::new();
    for i in 0..TOTAL {
        let (client, answered, slots) = (client.clone(), answered.clone(), slots.clone());
        let url = first.url("/v1/signups");
        let email = format!("crash-{i:03}@example.com");
        requests.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let result = client
                .post(url)
                .json(&json!({ "email": email, "subscription_types": ["blog-updates"] }))
                .send()
                .await;
            let status = result.ok().map(|r| r.status().as_u16());
            if status.is_some() {
                answered.fetch_add(1, Ordering::SeqCst);
            }
            (email, status)
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "only {} of {TOTAL} signups were answered in 20 s\n{}",
            answered.load(Ordering::SeqCst),
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.kill9();

    let mut acknowledged = BTreeSet::new();
    let mut other_answers = Vec::new();
    let mut unanswered = 0;
    for request in requests {
        match request.await.unwrap() {
            (email, Some(202)) => {
                acknowledged.insert(email);
            }
            (email, Some(status)) => other_answers.push((email, status)),
            (_, None) => unanswered += 1,
        }
    }
    assert!(
        other_answers.is_empty(),
        "before the kill, {} signups were answered with something else than 202, e.g. {:?}",
        other_answers.len(),
        &other_answers[..other_answers.len().min(5)]
    );
    let label = if store_url.starts_with("redis") {
        "redis"
    } else {
        "embedded"
    };
    println!(
        "[{label}] kill -9 after {KILL_AFTER} answers: {} acknowledged, {unanswered} never answered",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() >= KILL_AFTER && acknowledged.len() < TOTAL,
        "the kill landed part-way: {} of {TOTAL} acknowledged",
        acknowledged.len()
    );

    let mailed_before_restart = smtp.messages().len();
    let second = OptinProcess::start(&settings).await;
    let restarted = Instant::now();
    let mut first_new_mail_after = None;
    let deadline = restarted + Duration::from_secs(30);
    let missing = loop {
        if first_new_mail_after.is_none() && smtp.messages().len() > mailed_before_restart {
            first_new_mail_after = Some(restarted.elapsed());
        }
        let received = mails_by_recipient(&smtp);
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|a| !received.contains_key(*a))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        missing.is_empty(),
        "{} acknowledged signups never got their confirmation mail within 30 s of the restart \
         (acknowledged means stored for good): {:?}\n--- second instance log ---\n{}",
        missing.len(),
        missing.iter().take(10).collect::<Vec<_>>(),
        second.log()
    );
    // Whatever the second instance still would send (a duplicate) is sent once its outbox
    // is empty.
    wait_for_empty_outbox(&second).await;
    let received = mails_by_recipient(&smtp);
    let duplicates: Vec<(&String, usize)> = received
        .iter()
        .filter(|(_, mails)| mails.len() > 1)
        .map(|(to, mails)| (to, mails.len()))
        .collect();
    let unacknowledged_but_mailed = received
        .keys()
        .filter(|a| !acknowledged.contains(*a))
        .count();
    println!(
        "[{label}] {mailed_before_restart} mails were sent before the kill; after the restart the first new one came \
         {first_new_mail_after:?} later and the outbox was empty {:?} later, {} in all",
        restarted.elapsed(),
        smtp.messages().len() - mailed_before_restart
    );
    println!(
        "[{label}] {} duplicate(s): {duplicates:?}; {unacknowledged_but_mailed} signup(s) in flight at the kill \
         were stored and mailed though never answered",
        duplicates.len()
    );
    // At-least-once: a job being sent at the kill may be sent again after its lease. Each
    // worker has at most one job in flight (it waits for the job's removal to be durable
    // before it takes the next), so at most one mail per worker can be doubled. (Waiting
    // for the outbox to empty, rather than a fixed half second, lets every such duplicate
    // arrive before this count.)
    assert!(
        duplicates.len() <= CRASH_TEST_WORKERS,
        "more duplicates than jobs in flight at the kill: {duplicates:?}"
    );
    assert!(
        received.values().all(|mails| mails.len() <= 2),
        "an address got more than two mails: {duplicates:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 5. A worker dies holding a job: another instance sends it after the lease.
// ---------------------------------------------------------------------------------------

/// Deterministic design: instance A's mail server is a "black hole", a TCP listener of this
/// test that accepts connections and never says a word. A takes the job (lease 2 s),
/// connects to send it and waits for a greeting that never comes. The moment the black hole
/// sees that connection we know A holds the job, and kill -9 A: it dies mid-send, without
/// acknowledging or releasing anything. Instance B, on the same Redis with the real SMTP
/// sink, must send the job once A's lease ends (and not before), exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_a_mail_held_by_an_instance_that_died_is_sent_by_another_instance_after_the_lease() {
    let redis = RedisServer::start();
    let smtp = SmtpSink::start();

    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let black_hole_port = black_hole.local_addr().unwrap().port();
    let (connected_tx, connected_rx) = std::sync::mpsc::channel::<Instant>();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in black_hole.incoming().flatten() {
            held.push(stream); // keep it open and silent
            if connected_tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });

    let black_hole_url = format!("smtp://127.0.0.1:{black_hole_port}?tls=none");
    let mut a = OptinProcess::start(&ProcessSettings::new(&redis.url, &black_hole_url)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let answer = client
        .post(a.url("/v1/signups"))
        .json(&json!({ "email": "orphan@example.com", "subscription_types": ["blog-updates"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);

    let claimed_at =
        tokio::task::spawn_blocking(move || connected_rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("instance A never tried to send the mail\n{}", a.log()));
    a.kill9();
    assert!(smtp.messages().is_empty());

    let b = OptinProcess::start(&ProcessSettings::new(&redis.url, &smtp.url())).await;
    let arrived_at = wait_for_mail_to(&smtp, "orphan@example.com", Duration::from_secs(15))
        .await
        .unwrap_or_else(|| {
            panic!(
                "instance B never sent the job A died holding (lease 2 s)\n--- B's log ---\n{}",
                b.log()
            )
        });
    let waited = arrived_at - claimed_at;
    println!("the mail arrived {waited:?} after A took the job");
    assert!(
        waited >= Duration::from_millis(1500),
        "B sent the job {waited:?} after A took it, before A's 2 s lease could have ended"
    );
    wait_for_empty_outbox(&b).await;
    let mails = mails_by_recipient(&smtp)
        .remove("orphan@example.com")
        .unwrap_or_default();
    assert_eq!(mails.len(), 1, "the mail arrives exactly once");

    // The person can confirm with it, on the instance that is alive.
    let link = on_instance(&mails[0].confirmation_link(), &b);
    assert_eq!(client.post(&link).send().await.unwrap().status(), 200);
    let eligibility = b.eligibility("orphan@example.com", "blog-updates").await;
    assert_eq!(eligibility["status"], "opted_in", "{eligibility}");
}

// ---------------------------------------------------------------------------------------
// 6. SIGTERM while a request is in flight.
// ---------------------------------------------------------------------------------------

/// The request is made in flight deterministically: the test sends the headers and half of
/// the body, sends SIGTERM, and only then the rest of the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_on_sigterm_the_service_finishes_the_request_in_flight_and_exits_cleanly() {
    let redis = RedisServer::start_with_args(DURABLE_REDIS);
    let smtp = SmtpSink::start();
    let settings = ProcessSettings::new(&redis.url, &smtp.url());
    let mut process = OptinProcess::start(&settings).await;

    let body =
        json!({ "email": "term@example.com", "subscription_types": ["blog-updates"] }).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", process.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    // A first, complete request on the same keep-alive connection proves the server has
    // taken the connection, so the second one is surely in its hands at SIGTERM.
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        process.port
    )
    .unwrap();
    let mut first_answer = [0u8; 512];
    let n = stream.read(&mut first_answer).unwrap();
    let first_answer = String::from_utf8_lossy(&first_answer[..n]);
    assert!(first_answer.starts_with("HTTP/1.1 200"), "{first_answer}");
    assert!(
        first_answer.ends_with("ok"),
        "the whole /healthz answer came in one read: {first_answer:?}"
    );
    write!(
        stream,
        "POST /v1/signups HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{head}",
        process.port,
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    process.sigterm();
    let terminated = Instant::now();
    assert!(
        process
            .wait_exit(Duration::from_millis(500))
            .await
            .is_none(),
        "the service exited with a request in flight\n{}",
        process.log()
    );

    stream.write_all(tail.as_bytes()).unwrap();
    stream.flush().unwrap();
    let mut answer = String::new();
    let read = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 202"),
        "the request in flight at SIGTERM is answered 202, got {read:?}: {answer:?}\n{}",
        process.log()
    );

    let status = process.wait_exit(Duration::from_secs(10)).await;
    let took = terminated.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "the service was still running 10 s after SIGTERM\n{}",
            process.log()
        )
    });
    assert!(
        status.success(),
        "the service exits with status 0 on SIGTERM, got {status}\n{}",
        process.log()
    );
    assert!(
        took < Duration::from_secs(5),
        "the service took {took:?} to stop after SIGTERM"
    );
    println!("exited {status} {took:?} after SIGTERM (the request was held open 0.5 s of that)");

    let refused = std::net::TcpStream::connect(("127.0.0.1", process.port));
    assert!(refused.is_err(), "nothing listens any more after the exit");

    // The signup answered during shutdown is stored: its mail arrives, from this
    // instance before it stopped or from the next one, and only once.
    let next = OptinProcess::start(&settings).await;
    let arrived = wait_for_mail_to(&smtp, "term@example.com", Duration::from_secs(10)).await;
    assert!(
        arrived.is_some(),
        "the signup acknowledged during shutdown never got its mail\n--- next instance ---\n{}",
        next.log()
    );
    wait_for_empty_outbox(&next).await;
    assert_eq!(mails_by_recipient(&smtp)["term@example.com"].len(), 1);
    let contact = client_get_contact(&next, "term@example.com").await;
    assert_eq!(
        contact["pending_confirmations"].as_array().map(Vec::len),
        Some(1),
        "{contact}"
    );
}

async fn client_get_contact(process: &OptinProcess, email: &str) -> Value {
    let response = reqwest::Client::new()
        .get(process.url(&format!("/v1/contacts/{}", urlencode(email))))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The request deadline answers before anything slower does: a page with the localized
/// error page, the API with problem+json, both 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_gets_a_503_page_or_problem() {
    let mut app = TestApp::spawn_with(Backend::Redis, |s| s.server.request_timeout_secs = 1).await;
    app.subscribe_confirmed("late@example.com", &["blog-updates"])
        .await;
    let preferences = app.preferences_link("late@example.com");
    let pid = app.redis().expect("a Redis backend").pid();
    let signal = |name: &str| send_signal(pid, name);
    signal("STOP");
    let (page, page_took) =
        timed(app.client.get(&preferences).header("Accept-Language", "nl")).await;
    let (api, api_took) = timed(
        app.client
            .get(app.url("/v1/eligibility"))
            .query(&[
                ("email", "late@example.com"),
                ("subscription_type", "blog-updates"),
            ])
            .bearer_auth(SEND_KEY),
    )
    .await;
    signal("CONT");
    assert_eq!(page.status(), 503);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(
        page.text().await.unwrap().contains("lang=\"nl\""),
        "the localized error page"
    );
    assert_eq!(api.status(), 503);
    assert!(is_problem_json(&api));
    for took in [page_took, api_took] {
        assert!(
            took < Duration::from_millis(1400),
            "answered at the 1 s deadline, not the store's: {took:?}"
        );
    }
}
