//! HubSpot's communication preferences API (v3 and v4) on optin: every route, the
//! `legalBasis` mapping, the double opt-in without evidence, HubSpot's error shape and
//! the key checks, through the routes, recorded as optin's own API records them.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::app::{urlencode, Backend, TestApp, ADMIN_KEY, SEND_KEY};

on_embedded_and_redis!(
    v3_definitions_are_the_subscription_types,
    v3_subscribe_with_evidence_opts_in_and_is_recorded_like_the_own_api,
    v3_subscribe_without_evidence_or_basis_starts_a_double_opt_in,
    v3_every_legal_basis_maps_and_non_gdpr_is_refused,
    v3_unsubscribe_holds_and_an_unsubscribed_person_needs_new_consent,
    v4_single_statuses_read_and_write_in_the_envelope,
    v4_batches_answer_per_input_and_are_capped,
    v4_unsubscribe_all_leaves_every_type,
    v4_generated_links_are_manage_and_unsubscribe_links_never_preferences,
    keys_and_scopes_are_enforced_in_hubspots_error_shape,
    bad_input_is_a_hubspot_400_and_changes_nothing,
);

const V3: &str = "/communication-preferences/v3";
const V4: &str = "/communication-preferences/v4";

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request sent")
}

/// Sends and expects `status`; returns the JSON body.
async fn expect(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let response = send(app, method.clone(), path, key, body).await;
    assert_eq!(response.status(), status, "{method} {path}");
    response.json().await.expect("a JSON body")
}

async fn v3_subscribe(app: &TestApp, body: Value) -> Value {
    expect(
        app,
        Method::POST,
        &format!("{V3}/subscribe"),
        ADMIN_KEY,
        Some(body),
        200,
    )
    .await
}

/// The v3 status of one type for an address.
async fn v3_status(app: &TestApp, email: &str, type_id: &str) -> Value {
    let answer = expect(
        app,
        Method::GET,
        &format!("{V3}/status/email/{}", urlencode(email)),
        SEND_KEY,
        None,
        200,
    )
    .await;
    assert_eq!(answer["recipient"], email.to_lowercase());
    answer["subscriptionStatuses"]
        .as_array()
        .expect("subscriptionStatuses")
        .iter()
        .find(|s| s["id"] == type_id)
        .cloned()
        .expect("every type has a status")
}

async fn events(app: &TestApp, email: &str) -> Vec<Value> {
    let answer = app
        .admin_get_json(&format!("/v1/contacts/{}/events", urlencode(email)))
        .await;
    assert_eq!(answer["chain_valid"], true);
    answer["events"].as_array().expect("events").clone()
}

/// HubSpot's error body, with the category expected.
fn assert_hubspot_error(body: &Value, category: &str) {
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["category"], category, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["correlationId"]
            .as_str()
            .is_some_and(|c| c.len() == 36),
        "{body}"
    );
}

/// Sends and expects HubSpot's 400 `VALIDATION_ERROR`; returns the body.
async fn refused(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> Value {
    let answer = expect(app, method, path, key, body, 400).await;
    assert_hubspot_error(&answer, "VALIDATION_ERROR");
    answer
}

async fn v3_definitions_are_the_subscription_types(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let answer = expect(
        &app,
        Method::GET,
        &format!("{V3}/definitions"),
        SEND_KEY,
        None,
        200,
    )
    .await;
    let definitions = answer["subscriptionDefinitions"].as_array().unwrap();
    let ids: Vec<&str> = definitions
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["job-alerts", "blog-updates", "marketing", "event-info"]
    );
    let blog = &definitions[1];
    assert_eq!(blog["name"], "Blog updates");
    assert_eq!(blog["purpose"], "Marketing");
    assert_eq!(definitions[3]["purpose"], "Service");
    assert_eq!(blog["communicationMethod"], "Email");
    assert_eq!(blog["isActive"], true);
    assert_eq!(blog["isInternal"], false);
    assert!(blog["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(blog["createdAt"], "1970-01-01T00:00:00.000Z");

    let v4 = expect(
        &app,
        Method::GET,
        &format!("{V4}/definitions"),
        SEND_KEY,
        None,
        200,
    )
    .await;
    assert_eq!(v4["status"], "COMPLETE");
    assert_eq!(v4["results"], answer["subscriptionDefinitions"]);
    assert!(v4["startedAt"].is_string() && v4["completedAt"].is_string());
}

async fn v3_subscribe_with_evidence_opts_in_and_is_recorded_like_the_own_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "Jane.Doe@Example.com";
    let status = v3_subscribe(
        &app,
        json!({
            "emailAddress": email,
            "subscriptionId": "blog-updates",
            "legalBasis": "CONSENT_WITH_NOTICE",
            "legalBasisExplanation": "Ticked the blog box on the contact form, 2024-05-01",
        }),
    )
    .await;
    assert_eq!(status["id"], "blog-updates");
    assert_eq!(status["status"], "SUBSCRIBED");
    assert_eq!(status["sourceOfStatus"], "SUBSCRIPTION_STATUS");
    assert_eq!(status["legalBasis"], "CONSENT_WITH_NOTICE");
    assert_eq!(status["name"], "Blog updates");

    // The normalized address is the one recorded.
    let stored = v3_status(&app, "jane.doe@example.com", "blog-updates").await;
    assert_eq!(stored["status"], "SUBSCRIBED");
    assert_eq!(
        v3_status(&app, email, "marketing").await["status"],
        "NOT_SUBSCRIBED"
    );
    assert_eq!(
        app.status("jane.doe@example.com", "blog-updates").await,
        "opted_in"
    );
    assert!(
        app.eligibility("jane.doe@example.com", "blog-updates")
            .await["eligible"]
            == true
    );

    let events = events(&app, "jane.doe@example.com").await;
    let opt_in = events.last().unwrap();
    assert_eq!(opt_in["source"], "admin_api");
    assert_eq!(opt_in["lawful_basis"], "consent");
    assert_eq!(
        opt_in["consent_evidence"],
        "Ticked the blog box on the contact form, 2024-05-01"
    );
    assert_eq!(opt_in["actor"], "admin-test");
    assert_eq!(opt_in["to"], "opted_in");
    assert!(app.mails_to("jane.doe@example.com").is_empty());
    app.drain_outbox().await;
    assert!(
        app.mails_to("jane.doe@example.com").is_empty(),
        "no mail for a manual opt-in"
    );
}

async fn v3_subscribe_without_evidence_or_basis_starts_a_double_opt_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (email, basis) in [
        ("asked@example.com", Some("CONSENT_WITH_NOTICE")),
        ("nobasis@example.com", None),
    ] {
        let mut body = json!({ "emailAddress": email, "subscriptionId": "marketing" });
        if let Some(basis) = basis {
            body["legalBasis"] = json!(basis);
        }
        let status = v3_subscribe(&app, body).await;
        assert_eq!(status["status"], "NOT_SUBSCRIBED", "{email}: only asked");
        app.drain_outbox().await;
        assert_eq!(
            app.mails_to(email).len(),
            1,
            "{email}: one confirmation mail"
        );
        assert_eq!(
            app.contact_json(email).await["pending_confirmations"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        app.confirm_mailed_link(email).await;
        assert_eq!(
            v3_status(&app, email, "marketing").await["status"],
            "SUBSCRIBED"
        );
        let events = events(&app, email).await;
        assert_eq!(events.last().unwrap()["source"], "confirm_link");
    }
}

async fn v3_every_legal_basis_maps_and_non_gdpr_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        (
            "LEGITIMATE_INTEREST_CLIENT",
            "legitimate_interests",
            "LEGITIMATE_INTEREST_OTHER",
        ),
        (
            "LEGITIMATE_INTEREST_OTHER",
            "legitimate_interests",
            "LEGITIMATE_INTEREST_OTHER",
        ),
        (
            "LEGITIMATE_INTEREST_PQL",
            "legitimate_interests",
            "LEGITIMATE_INTEREST_OTHER",
        ),
        (
            "PERFORMANCE_OF_CONTRACT",
            "contract",
            "PERFORMANCE_OF_CONTRACT",
        ),
        ("PROCESS_AND_STORE", "consent", "CONSENT_WITH_NOTICE"),
        ("CONSENT_WITH_NOTICE", "consent", "CONSENT_WITH_NOTICE"),
    ];
    for (n, (hubspot, optin, answered)) in cases.into_iter().enumerate() {
        let email = format!("basis{n}@example.com");
        let status = v3_subscribe(
            &app,
            json!({
                "emailAddress": email,
                "subscriptionId": "event-info",
                "legalBasis": hubspot,
                "legalBasisExplanation": "Customer since 2019",
            }),
        )
        .await;
        assert_eq!(status["status"], "SUBSCRIBED", "{hubspot}");
        assert_eq!(status["legalBasis"], answered, "{hubspot}");
        assert_eq!(
            app.subscription(&email, "event-info").await["lawful_basis"],
            optin
        );
        let event = events(&app, &email).await.last().cloned().unwrap();
        assert_eq!(event["lawful_basis"], optin, "{hubspot}");
        if optin == "consent" {
            assert_eq!(event["consent_evidence"], "Customer since 2019");
        } else {
            assert_eq!(event["explanation"], "Customer since 2019");
        }
    }
    // A basis HubSpot has no name for is named in the explanation instead.
    app.admin(
        Method::PUT,
        &format!(
            "/v1/contacts/{}/subscriptions/event-info",
            urlencode("legal@example.com")
        ),
    )
    .await
    .json(&json!({ "status": "opted_in", "lawful_basis": "legal_obligation" }))
    .send()
    .await
    .unwrap();
    let status = v3_status(&app, "legal@example.com", "event-info").await;
    assert_eq!(status["legalBasis"], Value::Null);
    assert_eq!(
        status["legalBasisExplanation"],
        "optin lawful basis: legal_obligation"
    );

    for basis in ["NON_GDPR", "consent", ""] {
        let response = send(
            &app,
            Method::POST,
            &format!("{V3}/subscribe"),
            ADMIN_KEY,
            Some(json!({
                "emailAddress": "refused@example.com",
                "subscriptionId": "event-info",
                "legalBasis": basis,
                "legalBasisExplanation": "x",
            })),
        )
        .await;
        assert_eq!(response.status(), 400, "{basis}");
        let body: Value = response.json().await.unwrap();
        assert_hubspot_error(&body, "VALIDATION_ERROR");
        assert!(
            body["message"].as_str().unwrap().contains("legalBasis"),
            "{body}"
        );
    }
    assert_eq!(
        app.contact("refused@example.com").await.status(),
        404,
        "nothing stored"
    );
}

async fn v3_unsubscribe_holds_and_an_unsubscribed_person_needs_new_consent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "leaving@example.com";
    app.subscribe_confirmed(email, &["blog-updates"]).await;
    let body = json!({ "emailAddress": email, "subscriptionId": "blog-updates" });
    for _ in 0..2 {
        let status = expect(
            &app,
            Method::POST,
            &format!("{V3}/unsubscribe"),
            ADMIN_KEY,
            Some(body.clone()),
            200,
        )
        .await;
        assert_eq!(status["status"], "NOT_SUBSCRIBED");
    }
    assert_eq!(app.status(email, "blog-updates").await, "unsubscribed");
    let unsubscribes: Vec<Value> = events(&app, email)
        .await
        .into_iter()
        .filter(|e| e["to"] == "unsubscribed")
        .collect();
    assert_eq!(
        unsubscribes.len(),
        1,
        "a second unsubscribe records nothing"
    );
    assert_eq!(unsubscribes[0]["source"], "admin_api");

    // Legitimate interest does not override a no; consent with evidence of it does.
    let response = send(
        &app,
        Method::POST,
        &format!("{V3}/subscribe"),
        ADMIN_KEY,
        Some(json!({ "emailAddress": email, "subscriptionId": "blog-updates", "legalBasis": "LEGITIMATE_INTEREST_CLIENT" })),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_hubspot_error(&response.json().await.unwrap(), "VALIDATION_ERROR");
    assert_eq!(app.status(email, "blog-updates").await, "unsubscribed");
    let status = v3_subscribe(
        &app,
        json!({
            "emailAddress": email,
            "subscriptionId": "blog-updates",
            "legalBasis": "CONSENT_WITH_NOTICE",
            "legalBasisExplanation": "Asked us by phone to resubscribe, call 2024-06-01",
        }),
    )
    .await;
    assert_eq!(status["status"], "SUBSCRIBED");
}

async fn v4_single_statuses_read_and_write_in_the_envelope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "v4@example.com";
    let path = format!("{V4}/statuses/{}", urlencode(email));
    let answer = expect(
        &app,
        Method::POST,
        &path,
        ADMIN_KEY,
        Some(json!({
            "channel": "EMAIL",
            "statusState": "SUBSCRIBED",
            "subscriptionId": "blog-updates",
            "legalBasis": "LEGITIMATE_INTEREST_CLIENT",
            "legalBasisExplanation": "Existing customer",
        })),
        200,
    )
    .await;
    assert_eq!(answer["status"], "COMPLETE");
    let result = &answer["results"][0];
    assert_eq!(result["subscriberIdString"], email);
    assert_eq!(result["subscriptionId"], "blog-updates");
    assert_eq!(result["channel"], "EMAIL");
    assert_eq!(result["status"], "SUBSCRIBED");
    assert_eq!(result["source"], "admin_api");
    assert_eq!(result["legalBasis"], "LEGITIMATE_INTEREST_OTHER");
    assert!(result["timestamp"].is_string());

    let read = expect(
        &app,
        Method::GET,
        &format!("{path}?channel=EMAIL"),
        SEND_KEY,
        None,
        200,
    )
    .await;
    let statuses: Vec<(String, String)> = read["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["subscriptionId"].as_str().unwrap().into(),
                r["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("job-alerts".into(), "NOT_SPECIFIED".into()),
            ("blog-updates".into(), "SUBSCRIBED".into()),
            ("marketing".into(), "NOT_SPECIFIED".into()),
            ("event-info".into(), "NOT_SPECIFIED".into()),
        ]
    );

    for (state, optin) in [
        ("UNSUBSCRIBED", "unsubscribed"),
        ("NOT_SPECIFIED", "not_subscribed"),
    ] {
        let answer = expect(
            &app,
            Method::POST,
            &path,
            ADMIN_KEY,
            Some(json!({ "channel": "EMAIL", "statusState": state, "subscriptionId": "blog-updates" })),
            200,
        )
        .await;
        assert_eq!(answer["results"][0]["status"], state);
        assert_eq!(app.status(email, "blog-updates").await, optin);
    }

    // Numeric ids (HubSpot's own) are read as text and refused when unknown.
    refused(
        &app,
        Method::POST,
        &path,
        ADMIN_KEY,
        Some(json!({ "channel": "EMAIL", "statusState": "UNSUBSCRIBED", "subscriptionId": 12345 })),
    )
    .await;
    refused(
        &app,
        Method::GET,
        &format!("{path}?channel=SMS"),
        SEND_KEY,
        None,
    )
    .await;
    // A write names its channel in the query too (as schemathesis found): not only EMAIL.
    refused(
        &app,
        Method::POST,
        &format!("{path}?channel=SMS"),
        ADMIN_KEY,
        Some(json!({ "statusState": "UNSUBSCRIBED", "subscriptionId": "blog-updates" })),
    )
    .await;
    let answer = expect(
        &app,
        Method::POST,
        &path,
        ADMIN_KEY,
        Some(
            json!({ "channel": "EMAIL", "statusState": "MAYBE", "subscriptionId": "blog-updates" }),
        ),
        400,
    )
    .await;
    assert!(answer["message"].as_str().unwrap().contains("statusState"));
}

async fn v4_batches_answer_per_input_and_are_capped(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let write = |email: &str, state: &str| {
        json!({ "subscriberIdString": email, "channel": "EMAIL", "statusState": state,
                "subscriptionId": "event-info", "legalBasis": "PERFORMANCE_OF_CONTRACT" })
    };
    let answer = expect(
        &app,
        Method::POST,
        &format!("{V4}/statuses/batch/write"),
        ADMIN_KEY,
        Some(json!({ "inputs": [
            write("b1@example.com", "SUBSCRIBED"),
            write("not-an-address", "SUBSCRIBED"),
            write("b2@example.com", "UNSUBSCRIBED"),
        ]})),
        207,
    )
    .await;
    assert_eq!(answer["status"], "COMPLETE");
    assert_eq!(answer["numErrors"], 1);
    assert_eq!(
        answer["errors"][0]["context"]["subscriberIdString"][0],
        "not-an-address"
    );
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["status"], "SUBSCRIBED");
    assert_eq!(results[1]["status"], "UNSUBSCRIBED");
    assert_eq!(app.status("b1@example.com", "event-info").await, "opted_in");
    assert_eq!(
        app.status("b2@example.com", "event-info").await,
        "unsubscribed"
    );

    let read = expect(
        &app,
        Method::POST,
        &format!("{V4}/statuses/batch/read?channel=EMAIL"),
        SEND_KEY,
        Some(json!({ "inputs": ["b1@example.com", "never@example.com", "bad"] })),
        207,
    )
    .await;
    let results = read["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        8,
        "four types for each of two valid addresses"
    );
    let b1 = results
        .iter()
        .find(|r| {
            r["subscriberIdString"] == "b1@example.com" && r["subscriptionId"] == "event-info"
        })
        .unwrap();
    assert_eq!(b1["status"], "SUBSCRIBED");
    assert_eq!(b1["legalBasis"], "PERFORMANCE_OF_CONTRACT");
    assert!(results
        .iter()
        .filter(|r| r["subscriberIdString"] == "never@example.com")
        .all(|r| r["status"] == "NOT_SPECIFIED"));
    assert_eq!(read["numErrors"], 1);

    let addresses: Vec<String> = (0..1001).map(|n| format!("p{n}@example.com")).collect();
    let writes: Vec<Value> = addresses.iter().map(|a| write(a, "UNSUBSCRIBED")).collect();
    for (path, inputs) in [
        ("batch/read", json!(addresses)),
        ("batch/write", json!(writes)),
    ] {
        let answer = refused(
            &app,
            Method::POST,
            &format!("{V4}/statuses/{path}"),
            ADMIN_KEY,
            Some(json!({ "inputs": inputs })),
        )
        .await;
        assert!(
            answer["message"].as_str().unwrap().contains("1000"),
            "{answer}"
        );
    }
    let answer = expect(
        &app,
        Method::POST,
        &format!("{V4}/statuses/batch/read"),
        SEND_KEY,
        Some(json!({})),
        400,
    )
    .await;
    assert!(answer["message"].as_str().unwrap().contains("inputs"));
    // An input that is not an object refuses the whole batch: nothing is written.
    refused(
        &app,
        Method::POST,
        &format!("{V4}/statuses/batch/write"),
        ADMIN_KEY,
        Some(json!({ "inputs": [write("p0@example.com", "UNSUBSCRIBED"), "p1@example.com"] })),
    )
    .await;
    assert_eq!(app.contact("p0@example.com").await.status(), 404);
}

async fn v4_unsubscribe_all_leaves_every_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "all@example.com";
    app.subscribe_confirmed(email, &["blog-updates", "marketing"])
        .await;
    let path = format!("{V4}/statuses/{}/unsubscribe-all", urlencode(email));
    let before = expect(
        &app,
        Method::GET,
        &format!("{path}?channel=EMAIL"),
        SEND_KEY,
        None,
        200,
    )
    .await;
    assert_eq!(before["results"][0]["status"], "SUBSCRIBED");
    assert_eq!(before["results"][0]["wideStatusType"], "PORTAL_WIDE");

    let answer = expect(
        &app,
        Method::POST,
        &format!("{path}?channel=EMAIL"),
        ADMIN_KEY,
        None,
        200,
    )
    .await;
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert!(
        results.iter().all(|r| r["status"] == "UNSUBSCRIBED"),
        "{answer}"
    );
    for type_id in ["job-alerts", "blog-updates", "marketing", "event-info"] {
        assert_eq!(app.status(email, type_id).await, "unsubscribed");
    }
    let after = expect(&app, Method::GET, &path, SEND_KEY, None, 200).await;
    assert_eq!(after["results"][0]["status"], "UNSUBSCRIBED");
    let never = expect(
        &app,
        Method::GET,
        &format!(
            "{V4}/statuses/{}/unsubscribe-all",
            urlencode("never@example.com")
        ),
        SEND_KEY,
        None,
        200,
    )
    .await;
    assert_eq!(never["results"][0]["status"], "NOT_SPECIFIED");
    // Writing needs the admin scope.
    let refused = expect(&app, Method::POST, &path, SEND_KEY, None, 403).await;
    assert_hubspot_error(&refused, "MISSING_SCOPES");
}

async fn v4_generated_links_are_manage_and_unsubscribe_links_never_preferences(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "links@example.com";
    app.subscribe_confirmed(email, &["blog-updates"]).await;
    let answer = expect(
        &app,
        Method::POST,
        &format!("{V4}/links/generate"),
        SEND_KEY,
        Some(json!({ "subscriberIdString": email, "channel": "EMAIL", "subscriptionId": "blog-updates" })),
        200,
    )
    .await;
    let manage = answer["managePreferencesUrl"].as_str().unwrap();
    let unsubscribe = answer["unsubscribeSingleUrl"].as_str().unwrap();
    assert!(manage.starts_with(&app.url("/manage/")), "{manage}");
    assert!(
        unsubscribe.starts_with(&app.url("/unsubscribe/")),
        "{unsubscribe}"
    );
    assert!(!answer.to_string().contains("/preferences/"), "{answer}");
    // The links are optin's own: the same the eligibility answer gives, and they work.
    assert_eq!(
        unsubscribe,
        app.unsubscribe_link(email, "blog-updates").await
    );
    assert_eq!(app.post_one_click(unsubscribe).await.status(), 200);
    assert_eq!(app.status(email, "blog-updates").await, "unsubscribed");

    let without_type = expect(
        &app,
        Method::POST,
        &format!("{V4}/links/generate"),
        SEND_KEY,
        Some(json!({ "subscriberIdString": email, "channel": "EMAIL" })),
        200,
    )
    .await;
    assert!(without_type.get("unsubscribeSingleUrl").is_none());
    let unknown = expect(
        &app,
        Method::POST,
        &format!("{V4}/links/generate"),
        SEND_KEY,
        Some(json!({ "subscriberIdString": email, "subscriptionId": "nope" })),
        400,
    )
    .await;
    assert_hubspot_error(&unknown, "VALIDATION_ERROR");
}

async fn keys_and_scopes_are_enforced_in_hubspots_error_shape(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = urlencode("k@example.com");
    let reads = [
        (Method::GET, format!("{V3}/definitions")),
        (Method::GET, format!("{V3}/status/email/{email}")),
        (Method::GET, format!("{V4}/definitions")),
        (Method::GET, format!("{V4}/statuses/{email}")),
        (
            Method::GET,
            format!("{V4}/statuses/{email}/unsubscribe-all"),
        ),
    ];
    let writes = [
        (Method::POST, format!("{V3}/subscribe")),
        (Method::POST, format!("{V3}/unsubscribe")),
        (Method::POST, format!("{V4}/statuses/{email}")),
        (Method::POST, format!("{V4}/statuses/batch/write")),
        (
            Method::POST,
            format!("{V4}/statuses/{email}/unsubscribe-all"),
        ),
    ];
    for (method, path) in reads.iter().chain(&writes) {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path} without a key");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_hubspot_error(&response.json().await.unwrap(), "INVALID_AUTHENTICATION");
        let response = send(&app, method.clone(), path, "wrong-key", None).await;
        assert_eq!(response.status(), 401, "{method} {path} with a wrong key");
        // Basic is Mailchimp's way, not HubSpot's.
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .basic_auth("user", Some(ADMIN_KEY))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path} with Basic");
    }
    for (method, path) in &reads {
        let response = send(&app, method.clone(), path, SEND_KEY, None).await;
        assert_eq!(response.status(), 200, "{method} {path} with a send key");
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    for (method, path) in &writes {
        let response = send(&app, method.clone(), path, SEND_KEY, Some(json!({}))).await;
        assert_eq!(response.status(), 403, "{method} {path} with a send key");
        assert_hubspot_error(&response.json().await.unwrap(), "MISSING_SCOPES");
    }
}

async fn bad_input_is_a_hubspot_400_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let unknown = expect(
        &app,
        Method::GET,
        "/communication-preferences/v3/no-such-route",
        SEND_KEY,
        None,
        404,
    )
    .await;
    assert_hubspot_error(&unknown, "OBJECT_NOT_FOUND");
    let subscribe = format!("{V3}/subscribe");
    let bodies = [
        json!({ "emailAddress": "not an address", "subscriptionId": "marketing" }),
        json!({ "subscriptionId": "marketing" }),
        json!({ "emailAddress": "x@example.com", "subscriptionId": "no-such-type" }),
        json!({ "emailAddress": "x@example.com" }),
        json!({ "emailAddress": 17, "subscriptionId": "marketing" }),
        json!(["x@example.com", "marketing"]),
        json!({ "emailAddress": "x@example.com", "subscriptionId": "event-info",
                "legalBasis": "LEGITIMATE_INTEREST_CLIENT", "legalBasisExplanation": "x".repeat(3000) }),
    ];
    for body in bodies {
        refused(
            &app,
            Method::POST,
            &subscribe,
            ADMIN_KEY,
            Some(body.clone()),
        )
        .await;
    }
    let response = app
        .client
        .post(app.url(&subscribe))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_hubspot_error(&response.json().await.unwrap(), "VALIDATION_ERROR");
    let response = app
        .client
        .post(app.url(&subscribe))
        .bearer_auth(ADMIN_KEY)
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        app.contact("x@example.com").await.status(),
        404,
        "nothing stored"
    );

    refused(
        &app,
        Method::GET,
        &format!("{V3}/status/email/not-an-address"),
        SEND_KEY,
        None,
    )
    .await;
    refused(
        &app,
        Method::GET,
        &format!("{V4}/statuses/nope"),
        SEND_KEY,
        None,
    )
    .await;
}
