//! One rule, one place (DESIGN.md): the same intent through every door that has it is the
//! same operation with the same outcome, only in each door's shape. Asking someone to
//! confirm (the `/v1` API, HubSpot v3 and v4, Mailchimp), unsubscribing from everything
//! (the preference center, HubSpot v4) and recording the notice shown (the preference
//! center), on every backend. The vendors' own SDKs check the same answers in
//! `tests/compat_sdk.rs`.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::app::{urlencode, Backend, TestApp};

on_every_backend!(
    asking_a_blocked_address_to_confirm_is_refused_at_every_door,
    asking_past_the_mail_cap_is_429_at_every_door,
    unsubscribing_from_everything_is_one_change_at_every_door,
    the_preference_center_records_only_a_notice_it_showed,
);

const V3: &str = "/communication-preferences/v3";
const V4: &str = "/communication-preferences/v4";

fn contact_path(email: &str, rest: &str) -> String {
    format!("/v1/contacts/{}{rest}", urlencode(email))
}

fn md5(email: &str) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(email.to_lowercase().as_bytes()))
}

/// Sends `body` (when any) as JSON with the admin key; the status and the JSON answer.
async fn admin_json(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.admin(method, path).await;
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Every way of asking `email` to confirm a type without evidence of consent: the door,
/// its request, and the answer it gives when the rule refuses.
fn confirmation_requests(email: &str) -> Vec<(&'static str, Method, String, Value)> {
    vec![
        (
            "v1",
            Method::PUT,
            contact_path(email, "/subscriptions/marketing"),
            json!({ "status": "opted_in", "lawful_basis": "consent", "send_confirmation": true }),
        ),
        (
            "hubspot v3",
            Method::POST,
            format!("{V3}/subscribe"),
            json!({ "emailAddress": email, "subscriptionId": "marketing" }),
        ),
        (
            "hubspot v4",
            Method::POST,
            format!("{V4}/statuses/{}?channel=EMAIL", urlencode(email)),
            json!({ "statusState": "SUBSCRIBED", "subscriptionId": "marketing", "channel": "EMAIL" }),
        ),
        (
            "mailchimp",
            Method::PUT,
            format!("/3.0/lists/marketing/members/{}", md5(email)),
            json!({ "email_address": email, "status_if_new": "pending", "status": "pending" }),
        ),
    ]
}

/// Signs `email` up and presses "don't ask me again" on the mailed cancel link.
async fn blocked(app: &TestApp, email: &str) {
    assert_eq!(app.signup(email, &["blog-updates"]).await.status(), 202);
    app.drain_outbox().await;
    let cancel = app.mails_to(email)[0]
        .links()
        .into_iter()
        .find(|link| link.contains("/unsubscribe/"))
        .expect("a cancel link");
    let answer = app
        .client
        .post(&cancel)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("block=1")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

async fn events(app: &TestApp, email: &str) -> Vec<Value> {
    app.admin_get_json(&contact_path(email, "/events")).await["events"]
        .as_array()
        .expect("events")
        .clone()
}

async fn asking_a_blocked_address_to_confirm_is_refused_at_every_door(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "no-more-asks@example.com";
    blocked(&app, email).await;
    let mails_before = app.mails_to(email).len();

    for (door, method, path, body) in confirmation_requests(email) {
        let (status, answer) = admin_json(&app, method, &path, Some(body)).await;
        match door {
            "v1" => {
                assert_eq!(status, 409, "{door}: {answer}");
                assert!(
                    answer["type"].as_str().unwrap().ends_with("signup-blocked"),
                    "{door}: {answer}"
                );
            }
            "hubspot v3" | "hubspot v4" => {
                assert_eq!(status, 400, "{door}: {answer}");
                assert_eq!(answer["category"], "VALIDATION_ERROR", "{door}: {answer}");
            }
            _ => {
                assert_eq!(status, 400, "{door}: {answer}");
                assert_eq!(
                    answer["title"], "Member In Compliance State",
                    "{door}: {answer}"
                );
            }
        }
    }
    assert_eq!(
        app.drain_outbox().await,
        0,
        "a blocked address gets no mail"
    );
    assert_eq!(app.mails_to(email).len(), mails_before);

    // An opt-in with evidence needs no lifted block, and does not lift it.
    let (status, _) = admin_json(
        &app,
        Method::PUT,
        &contact_path(email, "/subscriptions/event-info"),
        Some(json!({ "status": "opted_in", "lawful_basis": "consent", "consent_evidence": "signed form at the event" })),
    )
    .await;
    assert_eq!(status, 200);
    assert!(app.contact_json(email).await["signup_blocked_since"].is_string());

    // Only the person or an admin's explicit request lifts it.
    let (status, answer) = admin_json(
        &app,
        Method::DELETE,
        &contact_path(email, "/signup-block"),
        None,
    )
    .await;
    assert_eq!(
        (status, &answer),
        (200, &json!({ "signup_blocked_since": null }))
    );
    assert!(app.contact_json(email).await["signup_blocked_since"].is_null());
    let lift = events(&app, email)
        .await
        .into_iter()
        .find(|event| event["kind"] == "signup_block_lifted")
        .expect("the lifting is recorded");
    assert_eq!(lift["actor"], "admin-test");
    let again = app
        .admin_send(Method::DELETE, &contact_path(email, "/signup-block"))
        .await;
    assert_eq!(again.status(), 200, "lifting no block is no error");
    let lifts = events(&app, email)
        .await
        .iter()
        .filter(|event| event["kind"] == "signup_block_lifted")
        .count();
    assert_eq!(lifts, 1, "and records nothing");
    let unknown = app
        .admin_send(
            Method::DELETE,
            &contact_path("nobody@example.com", "/signup-block"),
        )
        .await;
    assert_eq!(unknown.status(), 404);

    let (status, answer) = admin_json(
        &app,
        Method::PUT,
        &contact_path(email, "/subscriptions/marketing"),
        Some(json!({ "status": "opted_in", "lawful_basis": "consent", "send_confirmation": true })),
    )
    .await;
    assert_eq!(
        (status, &answer["outcome"]),
        (200, &json!("confirmation_sent"))
    );
    assert_eq!(app.drain_outbox().await, 1, "asking works again");
}

async fn asking_past_the_mail_cap_is_429_at_every_door(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "asked-often@example.com";
    // max_confirmation_mails_per_day is 3.
    for subscription_type in ["job-alerts", "blog-updates", "event-info"] {
        assert_eq!(app.signup(email, &[subscription_type]).await.status(), 202);
    }
    assert_eq!(app.drain_outbox().await, 3);

    for (door, method, path, body) in confirmation_requests(email) {
        let (status, answer) = admin_json(&app, method, &path, Some(body)).await;
        assert_eq!(status, 429, "{door}: {answer}");
        match door {
            "v1" => assert!(answer["type"].is_string(), "problem+json: {answer}"),
            "hubspot v3" | "hubspot v4" => {
                assert_eq!(answer["status"], "error", "{door}: {answer}");
                assert_eq!(answer["category"], "RATE_LIMITS", "{door}: {answer}");
            }
            _ => assert_eq!(answer["title"], "Too Many Requests", "{door}: {answer}"),
        }
    }
    assert_eq!(app.drain_outbox().await, 0);
    assert_eq!(app.status(email, "marketing").await, "not_subscribed");
}

/// Checks that the `count` events after the first `skip` are unsubscriptions sharing one
/// request id and one time.
fn one_change(events: &[Value], skip: usize, count: usize) {
    let change: Vec<&Value> = events.iter().skip(skip).collect();
    assert_eq!(change.len(), count, "{change:?}");
    let first = change[0];
    assert!(first["request_id"].is_string(), "{first}");
    for event in &change {
        assert_eq!(event["to"], "unsubscribed", "{event}");
        assert_eq!(
            event["request_id"], first["request_id"],
            "one request: {change:?}"
        );
        assert_eq!(event["at"], first["at"], "one moment: {change:?}");
    }
}

async fn unsubscribing_from_everything_is_one_change_at_every_door(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let types = ["job-alerts", "blog-updates", "marketing"];
    // Every type is left, those never joined included: "not again" holds for all.
    let every_type = 4;

    let person = "everything-page@example.com";
    app.subscribe_confirmed(person, &types).await;
    let before = events(&app, person).await.len();
    let preferences = app.preferences_link(person);
    let answer = app
        .client
        .post(&preferences)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("unsubscribe_all=1")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    one_change(&events(&app, person).await, before, every_type);

    let person = "everything-hubspot@example.com";
    app.subscribe_confirmed(person, &types).await;
    let before = events(&app, person).await.len();
    let (status, answer) = admin_json(
        &app,
        Method::POST,
        &format!(
            "{V4}/statuses/{}/unsubscribe-all?channel=EMAIL",
            urlencode(person)
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    one_change(&events(&app, person).await, before, every_type);
    for subscription_type in types {
        assert_eq!(app.status(person, subscription_type).await, "unsubscribed");
    }
}

async fn the_preference_center_records_only_a_notice_it_showed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "notice@example.com";
    app.subscribe_confirmed(email, &["blog-updates"]).await;
    let before = events(&app, email).await.len();
    let preferences = app.preferences_link(email);
    let forged = app
        .client
        .post(&preferences)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("shown=blog-updates&shown=marketing&subscription_types=blog-updates&subscription_types=marketing&notice_version.marketing=1999-never-shown")
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        422,
        "a notice the page never showed is refused"
    );
    let page = forged.text().await.unwrap();
    assert!(
        page.contains("name=\"notice_version.marketing\""),
        "the page is shown again, with the current notice: {page}"
    );
    assert_eq!(app.status(email, "marketing").await, "not_subscribed");
    assert_eq!(events(&app, email).await.len(), before, "nothing recorded");
    assert_eq!(app.drain_outbox().await, 0);
}
