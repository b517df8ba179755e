//! The sender API: API keys and scopes, single and batch eligibility for every status,
//! and exact statistics, on both stores.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::app::{urlencode, Backend, TestApp, ADMIN_KEY, SEND_KEY};

on_every_backend!(
    keys_and_scopes_are_enforced,
    eligibility_reflects_every_status_and_restriction,
    a_batch_of_ten_thousand_answers_in_order_with_per_item_errors,
    a_batch_over_ten_thousand_is_refused,
    thirty_two_batches_at_once_all_answer_in_full,
    stats_follow_signups_confirmations_and_unsubscribes_exactly,
);

async fn keys_and_scopes_are_enforced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let eligibility = "/v1/eligibility?email=a%40example.com&subscription_type=marketing";
    let contact = format!("/v1/contacts/{}", urlencode("a@example.com"));
    let cases: [(&str, Option<&str>, u16); 8] = [
        (eligibility, None, 401),
        (eligibility, Some("wrong-key"), 401),
        (eligibility, Some(SEND_KEY), 200),
        (eligibility, Some(ADMIN_KEY), 200),
        ("/v1/stats", Some(SEND_KEY), 403),
        ("/v1/stats", Some(ADMIN_KEY), 200),
        (&contact, Some(SEND_KEY), 403),
        (&contact, None, 401),
    ];
    for (path, key, expected) in cases {
        let mut request = app.client.get(app.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "{path} with {key:?}");
        if expected >= 400 {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        }
    }
}

async fn eligibility_reflects_every_status_and_restriction(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("in@example.com", &["marketing"])
        .await;
    app.subscribe_confirmed("out@example.com", &["marketing"])
        .await;
    app.one_click_unsubscribe("out@example.com", "marketing")
        .await;
    app.subscribe_confirmed("held@example.com", &["marketing"])
        .await;
    app.admin(
        Method::POST,
        &format!("/v1/contacts/{}/restriction", urlencode("held@example.com")),
    )
    .await
    .send()
    .await
    .unwrap();
    app.signup("pending@example.com", &["marketing"]).await;

    let expectations = [
        ("in@example.com", true, "opted_in"),
        ("out@example.com", false, "unsubscribed"),
        ("held@example.com", false, "opted_in"),
        ("pending@example.com", false, "not_subscribed"),
        ("never@example.com", false, "not_subscribed"),
    ];
    for (email, eligible, status) in expectations {
        let answer = app.eligibility(email, "marketing").await;
        assert_eq!(answer["eligible"], eligible, "{email}");
        assert_eq!(answer["status"], status, "{email}");
        assert_eq!(answer["email"], email);
        assert_eq!(answer["subscription_type"], "marketing");
    }
    let unknown_type = app
        .get_with_key(
            "/v1/eligibility?email=in%40example.com&subscription_type=nope",
            SEND_KEY,
        )
        .await;
    assert_eq!(unknown_type.status(), 422);
    assert_eq!(
        unknown_type.json::<Value>().await.unwrap()["field"],
        "subscription_type"
    );
    let bad_email = app
        .get_with_key(
            "/v1/eligibility?email=nope&subscription_type=marketing",
            SEND_KEY,
        )
        .await;
    assert_eq!(bad_email.status(), 422);
    assert_eq!(bad_email.json::<Value>().await.unwrap()["field"], "email");
}

async fn batch(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/eligibility"))
        .bearer_auth(SEND_KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn a_batch_of_ten_thousand_answers_in_order_with_per_item_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("member-17@example.com", &["blog-updates"])
        .await;
    app.subscribe_confirmed("member-9000@example.com", &["blog-updates"])
        .await;
    app.one_click_unsubscribe("member-9000@example.com", "blog-updates")
        .await;

    let emails: Vec<String> = (0..10_000)
        .map(|i| {
            if i % 1000 == 500 {
                format!("broken-{i}")
            } else {
                format!("Member-{i}@Example.com")
            }
        })
        .collect();
    let response = batch(
        &app,
        &json!({ "subscription_type": "blog-updates", "emails": emails }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 10_000);
    for (i, result) in results.iter().enumerate() {
        if i % 1000 == 500 {
            assert!(result["error"].is_string(), "item {i} has its own error");
            assert_eq!(result["email"], format!("broken-{i}"));
        } else {
            assert_eq!(
                result["email"],
                format!("member-{i}@example.com"),
                "order is kept"
            );
            let expected = match i {
                17 => "opted_in",
                9000 => "unsubscribed",
                _ => "not_subscribed",
            };
            assert_eq!(result["status"], expected, "item {i}");
            assert_eq!(result["eligible"], i == 17, "item {i}");
        }
    }
}

/// A sender checking a large send from many workers at once: the batches queue for the
/// server (at most two full batches are worked on at a time) instead of all running
/// together past their deadline and answering 503.
async fn thirty_two_batches_at_once_all_answer_in_full(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("sender-3@example.com", &["blog-updates"])
        .await;
    let emails: Vec<String> = (0..10_000)
        .map(|i| format!("sender-{i}@example.com"))
        .collect();
    let body = json!({ "subscription_type": "blog-updates", "emails": emails });
    let answers = futures_util::future::join_all((0..32).map(|_| batch(&app, &body))).await;
    for (n, response) in answers.into_iter().enumerate() {
        assert_eq!(response.status(), 200, "batch {n}");
        let body: Value = response.json().await.unwrap();
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 10_000, "batch {n}");
        assert_eq!(results[3]["eligible"], true, "batch {n}");
        assert_eq!(results[4]["eligible"], false, "batch {n}");
    }
}

async fn a_batch_over_ten_thousand_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let emails: Vec<String> = (0..10_001).map(|i| format!("m{i}@example.com")).collect();
    let response = batch(
        &app,
        &json!({ "subscription_type": "blog-updates", "emails": emails }),
    )
    .await;
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let missing = batch(&app, &json!({ "emails": ["a@example.com"] })).await;
    assert_eq!(missing.status(), 422);
}

async fn stats_follow_signups_confirmations_and_unsubscribes_exactly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("one@example.com", &["blog-updates", "event-info"])
        .await;
    app.subscribe_confirmed("two@example.com", &["event-info"])
        .await;
    app.subscribe_confirmed("three@example.com", &["marketing"])
        .await;
    app.one_click_unsubscribe("three@example.com", "marketing")
        .await;
    app.signup("four@example.com", &["job-alerts"]).await;
    app.signup("one@example.com", &["job-alerts"]).await;

    let stats = app.admin_get_json("/v1/stats").await;
    assert_eq!(
        stats["marketing_contacts"], 1,
        "only one@ is opted in to a marketing type"
    );
    assert_eq!(
        stats["non_marketing_contacts"], 2,
        "two@ (service only) and three@ (unsubscribed)"
    );
    assert_eq!(stats["pending_confirmations"], 2);
    assert_eq!(
        stats["by_type"]["blog-updates"],
        json!({ "opted_in": 1, "not_subscribed": 2, "unsubscribed": 0 })
    );
    assert_eq!(
        stats["by_type"]["event-info"],
        json!({ "opted_in": 2, "not_subscribed": 1, "unsubscribed": 0 })
    );
    assert_eq!(
        stats["by_type"]["marketing"],
        json!({ "opted_in": 0, "not_subscribed": 2, "unsubscribed": 1 })
    );
    assert_eq!(
        stats["by_type"]["job-alerts"],
        json!({ "opted_in": 0, "not_subscribed": 3, "unsubscribed": 0 })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_must_be_objects_not_arrays() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let signup = app.post_json("/v1/signups", &json!({ "email": "a@example.com", "subscription_types": ["blog-updates"], "source": [null, null] })).await;
    assert_eq!(signup.status(), 422);
    assert_eq!(signup.json::<Value>().await.unwrap()["field"], "source");
    let batch = app
        .client
        .post(app.url("/v1/eligibility"))
        .bearer_auth(SEND_KEY)
        .json(&json!(["blog-updates", ["a@example.com"]]))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 422);
    let put = app
        .admin(
            Method::PUT,
            &format!(
                "/v1/contacts/{}/subscriptions/blog-updates",
                urlencode("x@example.com")
            ),
        )
        .await
        .json(&json!(["unsubscribed", null, null, null, false]))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 422);
    assert_eq!(
        app.contact("x@example.com").await.status(),
        404,
        "nothing stored"
    );
    let wrong_method = app
        .client
        .patch(app.url("/v1/stats"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "GET");
}

/// Every answer that carries personal data tells caches not to keep it, errors included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_with_personal_data_are_never_cached() {
    let app = TestApp::spawn(Backend::Embedded).await;
    app.subscribe_confirmed("cached@example.com", &["blog-updates"])
        .await;
    app.subscribe_confirmed("cached2@example.com", &["blog-updates"])
        .await;
    let contact = |email: &str, rest: &str| format!("/v1/contacts/{}{rest}", urlencode(email));
    let import = "{\"email\":\"imported@example.com\",\"subscription_type\":\"blog-updates\",\"status\":\"not_subscribed\"}\n";
    let requests: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "eligibility",
            app.client
                .get(app.url(
                    "/v1/eligibility?email=cached%40example.com&subscription_type=blog-updates",
                ))
                .bearer_auth(SEND_KEY),
        ),
        (
            "eligibility batch",
            app.client
                .post(app.url("/v1/eligibility"))
                .bearer_auth(SEND_KEY)
                .json(&json!({ "subscription_type": "blog-updates", "emails": ["cached@example.com"] })),
        ),
        (
            "contact",
            app.admin(Method::GET, &contact("cached@example.com", ""))
                .await,
        ),
        (
            "unknown contact",
            app.admin(Method::GET, &contact("nobody@example.com", ""))
                .await,
        ),
        (
            "events",
            app.admin(Method::GET, &contact("cached@example.com", "/events"))
                .await,
        ),
        (
            "export",
            app.admin(Method::GET, &contact("cached@example.com", "/export"))
                .await,
        ),
        (
            "manual change",
            app.admin(
                Method::PUT,
                &contact("cached@example.com", "/subscriptions/blog-updates"),
            )
            .await
            .json(&json!({ "status": "unsubscribed" })),
        ),
        (
            "restriction",
            app.admin(Method::POST, &contact("cached@example.com", "/restriction"))
                .await,
        ),
        (
            "lifting a restriction",
            app.admin(
                Method::DELETE,
                &contact("cached@example.com", "/restriction"),
            )
            .await,
        ),
        (
            "rectification",
            app.admin(
                Method::POST,
                &contact("cached@example.com", "/rectification"),
            )
            .await
            .json(&json!({ "new_email": "moved@example.com" })),
        ),
        (
            "erasure",
            app.admin(Method::DELETE, &contact("cached2@example.com", ""))
                .await,
        ),
        (
            "imports",
            app.admin(Method::POST, "/v1/imports").await.body(import),
        ),
        (
            "dead letters",
            app.admin(Method::GET, "/v1/outbox/dead").await,
        ),
        (
            "dead letter retry",
            app.admin(
                Method::POST,
                &format!("/v1/outbox/dead/{}/retry", uuid::Uuid::new_v4()),
            )
            .await,
        ),
        (
            "wrong method on a contact",
            app.admin(Method::PATCH, &contact("cached@example.com", ""))
                .await,
        ),
    ];
    for (what, request) in requests {
        let response = request.send().await.unwrap();
        let status = response.status();
        assert!(
            status.is_success() || status.is_client_error(),
            "{what}: {status}"
        );
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{what} ({status})"
        );
    }
}

/// A server's 550 that quotes the recipient must not put the address into the dead
/// letter an admin reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_keeps_no_address_from_the_servers_refusal() {
    let app = TestApp::spawn(Backend::Embedded).await;
    app.smtp
        .set_rejecting(support::smtp_sink::Rejection::PermanentEchoingRecipient);
    assert_eq!(
        app.signup("refused.person@example.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    assert_eq!(app.drain_outbox().await, 1);

    let listed = app
        .get_with_key("/v1/outbox/dead", ADMIN_KEY)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !listed.contains("refused.person"),
        "no address in the dead letters: {listed}"
    );
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let last_error = listed["dead_letters"][0]["last_error"]
        .as_str()
        .expect("the dead letter says why");
    assert!(
        last_error.contains("550") && last_error.contains("r***@example.com"),
        "the refusal is kept, its address masked: {last_error}"
    );
}
