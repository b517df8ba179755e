//! The quarantine: signups the firewall holds (`disposable_domain`, `too_fast`,
//! `ip_burst`) get the answer every signup gets and mail nothing; an admin lists,
//! releases (within the per-address cap) or drops them; they expire with the confirmation
//! TTL and go with an erasure; `signup.quarantined` reaches a webhook receiver signed so
//! that the Standard Webhooks Python package accepts it.

mod support;

use std::time::Duration as StdDuration;

use chrono::Duration;
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use support::app::{urlencode, Backend, TestApp};
use support::webhook_receiver::{python_verify, WebhookReceiver};

on_embedded_and_redis!(
    each_reason_holds_the_signup_with_the_same_answer_and_mails_nothing,
    a_release_mails_the_confirmation_within_the_cap_and_a_drop_mails_nothing,
    held_signups_expire_with_the_confirmation_ttl_and_go_with_an_erasure,
    a_held_signup_of_a_rectified_address_is_dropped_with_the_move,
);

const THROWAWAY: &str = "jane@mailinator.com";

/// An app with the hosted form's minimum fill time, or (`burst`) with at most two
/// unconfirmed signups per network and hour.
async fn spawn(backend: Backend, burst: bool) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        if burst {
            settings.signup.max_unconfirmed_per_ip = 2;
        } else {
            settings.signup.min_fill_seconds = 2;
        }
    })
    .await
}

async fn listed(app: &TestApp) -> Vec<Value> {
    app.admin_get_json("/v1/quarantine").await["quarantined"]
        .as_array()
        .expect("a quarantined array")
        .clone()
}

/// The one held signup of `email` in the listing.
async fn held(app: &TestApp, email: &str) -> Value {
    let all = listed(app).await;
    let found: Vec<_> = all.iter().filter(|h| h["email"] == email).collect();
    assert_eq!(found.len(), 1, "{email} is held once: {all:?}");
    found[0].clone()
}

/// Status and body of an answer, for comparing a held signup's with a mailed one's.
/// What a client sees of an answer: its status, where it sends the browser (the signed
/// reference in the query reduced to its length, since each names its own signup) and
/// its body.
async fn answer(response: Response) -> (StatusCode, Option<String>, String) {
    let location = response.headers().get("location").map(|l| {
        let location = l.to_str().unwrap();
        match location.split_once("?ref=") {
            Some((path, reference)) => format!("{path}?ref=<{} bytes>", reference.len()),
            None => location.to_string(),
        }
    });
    (response.status(), location, response.text().await.unwrap())
}

/// The hosted form's signed render time, as a browser gets it.
async fn rendered_at(app: &TestApp) -> String {
    let html = app.get_text(app.url("/signup?types=blog-updates")).await;
    let marker = "name=\"rendered_at\" value=\"";
    let start = html.find(marker).expect("a render time in the form") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

async fn post_form(app: &TestApp, fields: &[(&str, &str)]) -> Response {
    app.client
        .post(app.url("/signup"))
        .form(fields)
        .send()
        .await
        .unwrap()
}

fn quarantined_counted(reason: &str) -> f64 {
    let handle = optin::telemetry::metrics_handle().expect("a metrics recorder");
    let label = format!("reason=\"{reason}\"");
    handle
        .render()
        .lines()
        .filter(|line| line.starts_with("optin_signups_quarantined_total") && line.contains(&label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn each_reason_holds_the_signup_with_the_same_answer_and_mails_nothing(backend: Backend) {
    let app = spawn(backend, false).await;
    let counted_before = quarantined_counted("disposable_domain");

    // disposable_domain, through the API: the same 202 as any other address.
    let mailed = answer(app.signup("ann@example.com", &["blog-updates"]).await).await;
    let held_answer = answer(app.signup(THROWAWAY, &["blog-updates", "job-alerts"]).await).await;
    assert_eq!(held_answer, mailed);
    app.drain_outbox().await;
    assert_eq!(app.mails_to("ann@example.com").len(), 1);
    assert!(
        app.mails_to(THROWAWAY).is_empty(),
        "a held signup mails nothing"
    );
    let disposable = held(&app, THROWAWAY).await;
    assert_eq!(disposable["reason"], "disposable_domain");
    assert_eq!(disposable["source"], "signup_api");
    assert_eq!(
        disposable["types"],
        serde_json::json!(["blog-updates", "job-alerts"])
    );
    assert!(disposable["at"].is_string() && disposable["expires_at"].is_string());
    assert_eq!(
        app.status(THROWAWAY, "job-alerts").await,
        "not_subscribed",
        "single opt-in waits too"
    );
    assert!(quarantined_counted("disposable_domain") - counted_before >= 1.0);

    // too_fast: the hosted form posted right after it was rendered, then a form that
    // was open long enough. Both answer the same redirect.
    let stamp = rendered_at(&app).await;
    let fast = answer(
        post_form(
            &app,
            &[
                ("email", "quick@example.com"),
                ("subscription_types", "blog-updates"),
                ("rendered_at", &stamp),
            ],
        )
        .await,
    )
    .await;
    let stamp = rendered_at(&app).await;
    app.advance_clock(Duration::seconds(3));
    let slow = answer(
        post_form(
            &app,
            &[
                ("email", "slow@example.com"),
                ("subscription_types", "blog-updates"),
                ("rendered_at", &stamp),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(fast, slow);
    assert_eq!(fast.0, StatusCode::SEE_OTHER);
    assert_eq!(held(&app, "quick@example.com").await["reason"], "too_fast");
    assert_eq!(
        held(&app, "quick@example.com").await["source"],
        "signup_form"
    );
    // A stamp whose time was moved is not ours: not judged, mailed.
    let forged = format!("{}.{}", chrono::Utc::now().timestamp(), "00".repeat(32));
    post_form(
        &app,
        &[
            ("email", "forged@example.com"),
            ("subscription_types", "blog-updates"),
            ("rendered_at", &forged),
        ],
    )
    .await;
    app.drain_outbox().await;
    assert_eq!(app.mails_to("slow@example.com").len(), 1);
    assert_eq!(app.mails_to("forged@example.com").len(), 1);
    assert!(app.mails_to("quick@example.com").is_empty());

    // ip_burst: at most 2 unconfirmed per network and hour, all from 127.0.0.1 here; a
    // confirmation gives its count back.
    let app = spawn(backend, true).await;
    for email in ["b1@example.com", "b2@example.com"] {
        assert_eq!(app.signup(email, &["blog-updates"]).await.status(), 202);
    }
    app.drain_outbox().await;
    app.confirm_mailed_link("b1@example.com").await;
    assert_eq!(
        app.signup("b3@example.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    let burst = answer(app.signup("b4@example.com", &["blog-updates"]).await).await;
    assert_eq!(burst.0, StatusCode::ACCEPTED);
    app.drain_outbox().await;
    assert_eq!(
        app.mails_to("b3@example.com").len(),
        1,
        "two unconfirmed: mailed"
    );
    assert!(
        app.mails_to("b4@example.com").is_empty(),
        "the third unconfirmed is held"
    );
    assert_eq!(held(&app, "b4@example.com").await["reason"], "ip_burst");
    assert_eq!(listed(&app).await.len(), 1);
    // The next hour starts a new count.
    app.advance_clock(Duration::hours(1));
    assert_eq!(
        app.signup("b5@example.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    app.drain_outbox().await;
    assert_eq!(app.mails_to("b5@example.com").len(), 1);
}

async fn a_release_mails_the_confirmation_within_the_cap_and_a_drop_mails_nothing(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.signup.max_confirmation_mails_per_day = 1;
    })
    .await;
    assert_eq!(app.signup(THROWAWAY, &["blog-updates"]).await.status(), 202);
    let id = held(&app, THROWAWAY).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let release = |id: String| {
        let app = &app;
        async move {
            app.admin_send(Method::POST, &format!("/v1/quarantine/{id}/release"))
                .await
        }
    };
    let released = release(id.clone()).await;
    assert_eq!(released.status(), StatusCode::ACCEPTED);
    assert!(listed(&app).await.is_empty());
    app.drain_outbox().await;
    assert_eq!(
        app.mails_to(THROWAWAY).len(),
        1,
        "the confirmation went out"
    );
    app.confirm_mailed_link(THROWAWAY).await;
    assert_eq!(app.status(THROWAWAY, "blog-updates").await, "opted_in");
    let events = app
        .admin_get_json(&format!("/v1/contacts/{}/events", urlencode(THROWAWAY)))
        .await;
    let opted_in = events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        opted_in["signup"]["source"], "signup_api",
        "the held signup's evidence"
    );
    assert_eq!(
        release(id).await.status(),
        StatusCode::NOT_FOUND,
        "released once"
    );

    // Held again: the cap (one mail a day) is spent, so the release is refused and the
    // signup stays held.
    assert_eq!(app.signup(THROWAWAY, &["marketing"]).await.status(), 202);
    let again = held(&app, THROWAWAY).await;
    let capped = release(again["id"].as_str().unwrap().to_string()).await;
    assert_eq!(capped.status(), StatusCode::TOO_MANY_REQUESTS);
    let problem: Value = capped.json().await.unwrap();
    assert_eq!(problem["type"], "urn:optin:problem:rate-limited");
    assert_eq!(held(&app, THROWAWAY).await["id"], again["id"]);

    // A drop mails nothing and leaves the rest of the contact alone.
    let dropped = app
        .admin_send(
            Method::DELETE,
            &format!("/v1/quarantine/{}", again["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(dropped.status(), StatusCode::NO_CONTENT);
    assert!(listed(&app).await.is_empty());
    assert_eq!(app.status(THROWAWAY, "blog-updates").await, "opted_in");
    app.advance_clock(Duration::days(2));
    app.drain_outbox().await;
    assert_eq!(app.mails_to(THROWAWAY).len(), 1, "nothing more was mailed");

    // A held signup of an address that holds nothing else goes entirely with its drop.
    assert_eq!(
        app.signup("kim@yopmail.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    let kim = held(&app, "kim@yopmail.com").await;
    let path = format!("/v1/quarantine/{}", kim["id"].as_str().unwrap());
    assert_eq!(
        app.admin_send(Method::DELETE, &path).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.contact("kim@yopmail.com").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.admin_send(Method::DELETE, &path).await.status(),
        StatusCode::NOT_FOUND
    );
    for bad in ["nope", "0.0", "../x"] {
        let status = app
            .admin_send(Method::POST, &format!("/v1/quarantine/{bad}/release"))
            .await
            .status();
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
    let without_key = app
        .client
        .get(app.url("/v1/quarantine"))
        .send()
        .await
        .unwrap();
    assert_eq!(without_key.status(), StatusCode::UNAUTHORIZED);
    for limit in ["0", "", "many", "1001"] {
        let bad_limit = app
            .admin_send(Method::GET, &format!("/v1/quarantine?limit={limit}"))
            .await;
        assert_eq!(
            bad_limit.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit={limit}"
        );
    }
}

async fn held_signups_expire_with_the_confirmation_ttl_and_go_with_an_erasure(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.signup(THROWAWAY, &["blog-updates"]).await.status(), 202);
    app.advance_clock(Duration::days(6));
    assert_eq!(app.purge_expired().await.held_removed, 0);
    assert_eq!(listed(&app).await.len(), 1);
    app.advance_clock(Duration::days(1));
    let report = app.purge_expired().await;
    assert_eq!(report.held_removed, 1);
    assert!(listed(&app).await.is_empty());
    assert_eq!(
        app.contact(THROWAWAY).await.status(),
        StatusCode::NOT_FOUND,
        "the address went with it"
    );

    // Art. 17: an erasure of the address takes its held signup in the same write.
    assert_eq!(
        app.signup("kim@yopmail.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    assert_eq!(listed(&app).await.len(), 1);
    let erased = app
        .admin_send(
            Method::DELETE,
            &format!("/v1/contacts/{}", urlencode("kim@yopmail.com")),
        )
        .await;
    assert!(erased.status().is_success());
    assert!(listed(&app).await.is_empty());
    assert_eq!(app.purge_expired().await.held_removed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_signup_reaches_the_webhook_receiver_signed() {
    let receiver = WebhookReceiver::start().await;
    let secret = optin::webhooks::signature::SigningKey::generate().unwrap();
    let url = receiver.url("/hook");
    let for_settings = secret.clone();
    let app = TestApp::spawn_with(Backend::Redis, move |settings| {
        settings.webhooks.endpoints = vec![optin::webhooks::EndpointSettings {
            id: "crm".into(),
            url,
            secret: secrecy::SecretString::from(for_settings),
            events: Some(vec!["signup.quarantined".into()]),
            subscription_types: None,
        }];
    })
    .await;
    assert_eq!(app.signup(THROWAWAY, &["blog-updates"]).await.status(), 202);
    app.drain_outbox().await;
    let received = receiver.wait_for(1, StdDuration::from_secs(5)).await;
    assert_eq!(received.len(), 1);
    // The independent check: Python's reference library accepts our signature.
    assert_eq!(python_verify(&secret, &received[0]), Ok(()));
    let notice: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(notice["type"], "signup.quarantined");
    let listed = held(&app, THROWAWAY).await;
    assert_eq!(
        notice["data"],
        serde_json::json!({
            "id": listed["id"],
            "email": THROWAWAY,
            "types": ["blog-updates"],
            "reason": "disposable_domain",
            "at": listed["at"],
        })
    );
    // The id in the notice is the one the API releases.
    let path = format!(
        "/v1/quarantine/{}/release",
        notice["data"]["id"].as_str().unwrap()
    );
    assert_eq!(
        app.admin_send(Method::POST, &path).await.status(),
        StatusCode::ACCEPTED
    );
}

/// A signup held for an address is not carried to the address a rectification moves
/// the person to (nobody asked for the new one): the listing is empty after the move, and
/// the old id answers 404 to a release and a drop (never the "repeat with the new address"
/// of an address route, since no address was given), and nothing is mailed.
async fn a_held_signup_of_a_rectified_address_is_dropped_with_the_move(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.signup(THROWAWAY, &["blog-updates"]).await.status(), 202);
    let old_id = held(&app, THROWAWAY).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let moved = app
        .admin(
            Method::POST,
            &format!("/v1/contacts/{}/rectification", urlencode(THROWAWAY)),
        )
        .await
        .json(&serde_json::json!({ "new_email": "jane@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), StatusCode::OK);
    assert!(listed(&app).await.is_empty());
    for (method, path) in [
        (Method::POST, format!("/v1/quarantine/{old_id}/release")),
        (Method::DELETE, format!("/v1/quarantine/{old_id}")),
    ] {
        assert_eq!(
            app.admin_send(method, &path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    app.drain_outbox().await;
    assert!(app.mails_to("jane@example.com").is_empty());
    assert!(app.mails_to(THROWAWAY).is_empty());
}
