//! Mailchimp's Marketing API (lists and list members) on optin: members by MD5 hash or
//! address through the keyed member index, `status_if_new` and `status`, the evidence of
//! a direct `subscribed`, the status mapping, problem+json errors and the key checks.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::app::{urlencode, Backend, TestApp, ADMIN_KEY, SEND_KEY};

// The member index on a Redis Cluster too, where a lookup by hash asks every shard.
on_backends!(
    [redis_cluster => Backend::RedisCluster],
    a_member_is_found_by_md5_or_address_and_the_index_follows_rectification_and_erasure,
);

on_embedded_and_redis!(
    a_member_is_found_by_md5_or_address_and_the_index_follows_rectification_and_erasure,
    lists_are_the_subscription_types_with_their_counts,
    put_pending_starts_a_double_opt_in_recorded_as_signup_api,
    subscribed_needs_evidence_or_becomes_a_double_opt_in,
    post_adds_a_new_member_and_refuses_an_existing_one,
    patch_changes_only_existing_members,
    unreachable_is_cleaned_and_an_erased_address_is_not_quietly_re_added,
    keys_come_as_basic_password_or_bearer_with_scopes,
    bad_input_is_a_mailchimp_400_and_changes_nothing,
);

fn md5(email: &str) -> String {
    optin::service::subscriber_hash(&optin::domain::EmailAddress::parse(email).unwrap())
}

fn member_path(list: &str, hash: &str) -> String {
    format!("/3.0/lists/{list}/members/{hash}")
}

/// A Mailchimp client's request: the key as the Basic password, user name "anystring".
async fn call(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .basic_auth("anystring", Some(ADMIN_KEY));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request sent")
}

async fn expect(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let response = call(app, method.clone(), path, body).await;
    assert_eq!(response.status(), status, "{method} {path}");
    if status >= 400 {
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    response.json().await.expect("a JSON body")
}

/// Mailchimp's problem+json with the title expected.
fn assert_problem(body: &Value, status: u16, title: &str) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["title"], title, "{body}");
    assert!(
        body["type"].is_string() && body["instance"].is_string(),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

async fn events(app: &TestApp, email: &str) -> Vec<Value> {
    let answer = app
        .admin_get_json(&format!("/v1/contacts/{}/events", urlencode(email)))
        .await;
    assert_eq!(answer["chain_valid"], true);
    answer["events"].as_array().expect("events").clone()
}

async fn a_member_is_found_by_md5_or_address_and_the_index_follows_rectification_and_erasure(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let email = "Member@Example.com";
    app.subscribe_confirmed(email, &["blog-updates"]).await;
    let hash = md5("member@example.com");
    for key in [hash.clone(), hash.to_uppercase(), urlencode(email)] {
        let member = expect(
            &app,
            Method::GET,
            &member_path("blog-updates", &key),
            None,
            200,
        )
        .await;
        assert_eq!(member["id"], hash);
        assert_eq!(member["email_address"], "member@example.com");
        assert_eq!(member["status"], "subscribed");
        assert_eq!(member["list_id"], "blog-updates");
        assert!(member["timestamp_opt"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
    }
    // Not a member of another list; unknown hashes and lists are 404.
    let other = expect(
        &app,
        Method::GET,
        &member_path("marketing", &hash),
        None,
        404,
    )
    .await;
    assert_problem(&other, 404, "Resource Not Found");
    let unknown = expect(
        &app,
        Method::GET,
        &member_path("blog-updates", &md5("nobody@example.com")),
        None,
        404,
    )
    .await;
    assert_problem(&unknown, 404, "Resource Not Found");
    expect(
        &app,
        Method::GET,
        &member_path("blog-updates", "not-a-hash"),
        None,
        404,
    )
    .await;
    expect(
        &app,
        Method::GET,
        &member_path("no-such-list", &hash),
        None,
        404,
    )
    .await;

    // Rectification moves the index entry to the new address.
    let response = app
        .admin(
            Method::POST,
            &format!(
                "/v1/contacts/{}/rectification",
                urlencode("member@example.com")
            ),
        )
        .await
        .json(&json!({ "new_email": "renamed@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    expect(
        &app,
        Method::GET,
        &member_path("blog-updates", &hash),
        None,
        404,
    )
    .await;
    let moved = expect(
        &app,
        Method::GET,
        &member_path("blog-updates", &md5("renamed@example.com")),
        None,
        200,
    )
    .await;
    assert_eq!(moved["email_address"], "renamed@example.com");
    assert_eq!(moved["status"], "subscribed");

    // Erasure removes it.
    let response = app
        .admin_send(
            Method::DELETE,
            &format!("/v1/contacts/{}", urlencode("renamed@example.com")),
        )
        .await;
    assert!(response.status().is_success());
    expect(
        &app,
        Method::GET,
        &member_path("blog-updates", &md5("renamed@example.com")),
        None,
        404,
    )
    .await;
}

async fn lists_are_the_subscription_types_with_their_counts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("a@example.com", &["marketing"])
        .await;
    app.subscribe_confirmed("b@example.com", &["marketing"])
        .await;
    app.one_click_unsubscribe("b@example.com", "marketing")
        .await;
    let answer = expect(&app, Method::GET, "/3.0/lists", None, 200).await;
    assert_eq!(answer["total_items"], 4);
    let lists = answer["lists"].as_array().unwrap();
    let marketing = lists.iter().find(|l| l["id"] == "marketing").unwrap();
    assert_eq!(marketing["stats"]["member_count"], 1);
    assert_eq!(marketing["stats"]["unsubscribe_count"], 1);
    assert_eq!(marketing["double_optin"], true);
    assert!(marketing["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(marketing["permission_reminder"]
        .as_str()
        .is_some_and(|n| !n.is_empty()));
    let one = expect(&app, Method::GET, "/3.0/lists/marketing", None, 200).await;
    assert_eq!(&one, marketing);
    let missing = expect(&app, Method::GET, "/3.0/lists/nope", None, 404).await;
    assert_problem(&missing, 404, "Resource Not Found");
}

async fn put_pending_starts_a_double_opt_in_recorded_as_signup_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "wp@example.com";
    let path = member_path("blog-updates", &md5(email));
    // What WordPress form plugins send.
    let body = json!({ "email_address": email, "status_if_new": "pending", "status": "subscribed",
                       "merge_fields": { "FNAME": "Jo" }, "ip_signup": "203.0.113.9", "language": "nl" });
    let member = expect(&app, Method::PUT, &path, Some(body.clone()), 200).await;
    assert_eq!(member["status"], "pending");
    assert_eq!(app.status(email, "blog-updates").await, "not_subscribed");
    app.drain_outbox().await;
    let mails = app.mails_to(email);
    assert_eq!(mails.len(), 1, "one confirmation mail");
    assert_eq!(
        app.contact_json(email).await["pending_confirmations"][0]["subscription_types"],
        json!(["blog-updates"])
    );

    // The same PUT again: an existing member takes `status` ("subscribed"), which without
    // evidence is again only a request to confirm; the per-address mail cap applies.
    let again = expect(&app, Method::PUT, &path, Some(body), 200).await;
    assert_eq!(again["status"], "pending");

    app.confirm_mailed_link(email).await;
    let member = expect(&app, Method::GET, &path, None, 200).await;
    assert_eq!(member["status"], "subscribed");
    let opt_in = events(&app, email)
        .await
        .into_iter()
        .find(|e| e["to"] == "opted_in")
        .unwrap();
    assert_eq!(opt_in["source"], "confirm_link");
    assert_eq!(opt_in["signup"]["source"], "signup_api");
    assert_eq!(
        opt_in["signup"]["ip"], "203.0.113.9",
        "the person's address at signup"
    );
    assert_eq!(
        app.contact_json(email).await["locale"],
        "nl",
        "the mail was in Dutch"
    );

    let member = expect(
        &app,
        Method::PUT,
        &path,
        Some(json!({ "email_address": email, "status": "unsubscribed" })),
        200,
    )
    .await;
    assert_eq!(member["status"], "unsubscribed");
    assert_eq!(app.status(email, "blog-updates").await, "unsubscribed");
    let last = events(&app, email).await.last().cloned().unwrap();
    assert_eq!(last["source"], "admin_api");
    assert_eq!(last["actor"], "admin-test");
    // A member with neither status stays as it is.
    let member = expect(
        &app,
        Method::PUT,
        &path,
        Some(json!({ "email_address": email })),
        200,
    )
    .await;
    assert_eq!(member["status"], "unsubscribed");
}

async fn subscribed_needs_evidence_or_becomes_a_double_opt_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "direct@example.com";
    let evidence = json!({
        "email_address": email,
        "status": "subscribed",
        "marketing_permissions": [{ "marketing_permission_id": "perm-email", "enabled": true }],
        "ip_opt": "198.51.100.7",
        "timestamp_opt": "2024-05-01 10:00:00",
    });
    let member = expect(
        &app,
        Method::POST,
        "/3.0/lists/marketing/members",
        Some(evidence),
        200,
    )
    .await;
    assert_eq!(member["status"], "subscribed");
    assert_eq!(app.status(email, "marketing").await, "opted_in");
    let opt_in = events(&app, email).await.last().cloned().unwrap();
    assert_eq!(opt_in["source"], "admin_api");
    assert_eq!(opt_in["lawful_basis"], "consent");
    let recorded = opt_in["consent_evidence"].as_str().unwrap();
    assert!(
        recorded.contains("perm-email")
            && recorded.contains("198.51.100.7")
            && recorded.contains("2024-05-01T10:00:00"),
        "{recorded}"
    );
    app.drain_outbox().await;
    assert!(app.mails_to(email).is_empty());

    // Missing any part of the evidence, or a permission not enabled: a double opt-in.
    let partial = [
        json!({ "status": "subscribed" }),
        json!({ "status": "subscribed", "ip_opt": "198.51.100.7", "timestamp_opt": "2024-05-01T10:00:00Z" }),
        json!({ "status": "subscribed", "marketing_permissions": [{ "marketing_permission_id": "p", "enabled": false }],
                "ip_opt": "198.51.100.7", "timestamp_opt": "2024-05-01T10:00:00Z" }),
    ];
    for (n, mut body) in partial.into_iter().enumerate() {
        let email = format!("asked{n}@example.com");
        body["email_address"] = json!(email);
        let member = expect(
            &app,
            Method::POST,
            "/3.0/lists/marketing/members",
            Some(body),
            200,
        )
        .await;
        assert_eq!(member["status"], "pending", "{email}");
        assert_eq!(app.status(&email, "marketing").await, "not_subscribed");
        app.drain_outbox().await;
        assert_eq!(app.mails_to(&email).len(), 1, "{email}");
    }
}

async fn post_adds_a_new_member_and_refuses_an_existing_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({ "email_address": "new@example.com", "status": "unsubscribed" });
    let member = expect(
        &app,
        Method::POST,
        "/3.0/lists/event-info/members",
        Some(body.clone()),
        200,
    )
    .await;
    assert_eq!(member["status"], "unsubscribed");
    assert_eq!(member["id"], md5("new@example.com"));
    let exists = expect(
        &app,
        Method::POST,
        "/3.0/lists/event-info/members",
        Some(body),
        400,
    )
    .await;
    assert_problem(&exists, 400, "Member Exists");
    let no_status = expect(
        &app,
        Method::POST,
        "/3.0/lists/event-info/members",
        Some(json!({ "email_address": "other@example.com" })),
        400,
    )
    .await;
    assert_problem(&no_status, 400, "Invalid Resource");
    assert_eq!(no_status["errors"][0]["field"], "status");
    assert_eq!(app.contact("other@example.com").await.status(), 404);
}

async fn patch_changes_only_existing_members(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "patch@example.com";
    let path = member_path("job-alerts", &md5(email));
    let missing = expect(
        &app,
        Method::PATCH,
        &path,
        Some(json!({ "status": "unsubscribed" })),
        404,
    )
    .await;
    assert_problem(&missing, 404, "Resource Not Found");
    assert_eq!(app.contact(email).await.status(), 404, "nothing stored");

    app.subscribe_confirmed(email, &["job-alerts"]).await;
    let member = expect(
        &app,
        Method::PATCH,
        &path,
        Some(json!({ "status": "unsubscribed" })),
        200,
    )
    .await;
    assert_eq!(member["status"], "unsubscribed");
    assert_eq!(app.status(email, "job-alerts").await, "unsubscribed");
    let renamed = expect(
        &app,
        Method::PATCH,
        &path,
        Some(json!({ "email_address": "elsewhere@example.com" })),
        400,
    )
    .await;
    assert!(renamed["detail"]
        .as_str()
        .unwrap()
        .contains("rectification"));
    // Patching by address works too.
    let member = expect(
        &app,
        Method::PATCH,
        &member_path("job-alerts", &urlencode(email)),
        Some(json!({})),
        200,
    )
    .await;
    assert_eq!(member["status"], "unsubscribed");
}

async fn unreachable_is_cleaned_and_an_erased_address_is_not_quietly_re_added(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "bouncy@example.com";
    app.subscribe_confirmed(email, &["marketing"]).await;
    let response = app
        .admin(Method::POST, "/v1/feedback")
        .await
        .json(&json!({ "email": email, "kind": "hard_bounce", "reason": "550 5.1.1 no such user" }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let member = expect(
        &app,
        Method::GET,
        &member_path("marketing", &md5(email)),
        None,
        200,
    )
    .await;
    assert_eq!(member["status"], "cleaned");
    let refused = expect(
        &app,
        Method::PATCH,
        &member_path("marketing", &md5(email)),
        Some(json!({ "status": "cleaned" })),
        400,
    )
    .await;
    assert_problem(&refused, 400, "Invalid Resource");

    let erased = "erased@example.com";
    app.subscribe_confirmed(erased, &["marketing"]).await;
    app.admin_send(
        Method::DELETE,
        &format!("/v1/contacts/{}", urlencode(erased)),
    )
    .await;
    let forgotten = expect(
        &app,
        Method::PUT,
        &member_path("marketing", &md5(erased)),
        Some(json!({ "email_address": erased, "status_if_new": "unsubscribed" })),
        400,
    )
    .await;
    assert_problem(&forgotten, 400, "Forgotten Email Not Subscribed");
    assert_eq!(app.contact(erased).await.status(), 404);
    // Their own confirmation may bring them back.
    let member = expect(
        &app,
        Method::PUT,
        &member_path("marketing", &md5(erased)),
        Some(json!({ "email_address": erased, "status_if_new": "pending" })),
        200,
    )
    .await;
    assert_eq!(member["status"], "pending");
}

async fn keys_come_as_basic_password_or_bearer_with_scopes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("k@example.com", &["marketing"])
        .await;
    let read = member_path("marketing", &md5("k@example.com"));
    let write = "/3.0/lists/marketing/members";
    let basic = |key: &str| app.client.get(app.url(&read)).basic_auth("user", Some(key));
    assert_eq!(basic(SEND_KEY).send().await.unwrap().status(), 200);
    assert_eq!(basic(ADMIN_KEY).send().await.unwrap().status(), 200);
    let bearer = app
        .client
        .get(app.url(&read))
        .bearer_auth(SEND_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    assert_eq!(bearer.headers()["cache-control"], "no-store");

    let missing = app.client.get(app.url("/3.0/lists")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_problem(&missing.json().await.unwrap(), 401, "API Key Missing");
    let wrong = basic("wrong").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_problem(&wrong.json().await.unwrap(), 401, "API Key Invalid");
    let as_user = app
        .client
        .get(app.url(&read))
        .basic_auth(ADMIN_KEY, None::<&str>)
        .send()
        .await
        .unwrap();
    assert_eq!(
        as_user.status(),
        401,
        "the key as user name is not the password"
    );

    let body = json!({ "email_address": "w@example.com", "status": "unsubscribed" });
    let refused = app
        .client
        .post(app.url(write))
        .basic_auth("user", Some(SEND_KEY))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_problem(&refused.json().await.unwrap(), 403, "Forbidden");
    for method in [Method::PUT, Method::PATCH] {
        let refused = app
            .client
            .request(method, app.url(&read))
            .bearer_auth(SEND_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403);
    }
    assert_eq!(app.contact("w@example.com").await.status(), 404);
}

async fn bad_input_is_a_mailchimp_400_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let unknown = expect(&app, Method::GET, "/3.0/no-such-route", None, 404).await;
    assert_problem(&unknown, 404, "Resource Not Found");
    let email = "bad@example.com";
    let path = member_path("marketing", &md5(email));
    let cases = [
        (
            json!({ "email_address": "other@example.com", "status_if_new": "pending" }),
            "email_address",
        ),
        (json!({ "status_if_new": "pending" }), "email_address"),
        (
            json!({ "email_address": "not an address", "status_if_new": "pending" }),
            "email_address",
        ),
        (json!({ "email_address": email }), "status_if_new"),
        (
            json!({ "email_address": email, "status_if_new": "archived" }),
            "status_if_new",
        ),
        (
            json!({ "email_address": email, "status_if_new": "cleaned" }),
            "status_if_new",
        ),
        (
            json!({ "email_address": email, "status_if_new": "pending", "ip_signup": "nowhere" }),
            "ip_signup",
        ),
        (
            json!({ "email_address": email, "status_if_new": "subscribed", "ip_opt": "1.2.3.4", "timestamp_opt": "yesterday" }),
            "timestamp_opt",
        ),
        (
            json!({ "email_address": email, "status_if_new": 3 }),
            "body",
        ),
        // Refused even where this write would read the other field.
        (
            json!({ "email_address": email, "status_if_new": "/", "status": "unsubscribed" }),
            "status_if_new",
        ),
        (
            json!({ "email_address": email, "status_if_new": "pending", "status": "gone" }),
            "status",
        ),
    ];
    for (body, field) in cases {
        let answer = expect(&app, Method::PUT, &path, Some(body.clone()), 400).await;
        assert_problem(&answer, 400, "Invalid Resource");
        assert_eq!(answer["errors"][0]["field"], field, "{body}");
    }
    // POST reads only `status`, and still refuses a `status_if_new` that is no status
    // (found by schemathesis).
    let answer = expect(
        &app,
        Method::POST,
        "/3.0/lists/marketing/members",
        Some(json!({ "email_address": email, "status": "subscribed", "status_if_new": "/" })),
        400,
    )
    .await;
    assert_eq!(answer["errors"][0]["field"], "status_if_new");
    // A PATCH to a hash no member has names nobody, whatever address its body names
    // (found by schemathesis: the body's address was taken for the path's).
    let answer = expect(
        &app,
        Method::PATCH,
        &member_path("marketing", &"0".repeat(32)),
        Some(json!({ "email_address": "nobody@example.com", "status": "subscribed" })),
        404,
    )
    .await;
    assert_problem(&answer, 404, "Resource Not Found");
    assert_eq!(
        app.status("nobody@example.com", "marketing").await,
        "not_subscribed"
    );
    let response = app
        .client
        .put(app.url(&path))
        .basic_auth("user", Some(ADMIN_KEY))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_problem(&response.json().await.unwrap(), 400, "JSON Parse Error");
    let answer = expect(
        &app,
        Method::PUT,
        &member_path("marketing", "not%20an%40address"),
        Some(json!({ "email_address": email, "status_if_new": "pending" })),
        400,
    )
    .await;
    assert_problem(&answer, 400, "Invalid Resource");
    let answer = expect(
        &app,
        Method::PUT,
        &member_path("nope", &md5(email)),
        Some(json!({ "email_address": email, "status_if_new": "pending" })),
        404,
    )
    .await;
    assert_problem(&answer, 404, "Resource Not Found");
    assert_eq!(app.contact(email).await.status(), 404, "nothing stored");
    app.drain_outbox().await;
    assert!(app.mails_to(email).is_empty());
}

/// A store written before the member index existed: its members are found by hash only
/// after `optin reindex-members`, run by the real binary while the service runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_members_gives_the_contacts_of_an_earlier_release_their_index_entries() {
    use support::process::{run_configured, OptinProcess, ProcessSettings};
    use support::redis_server::RedisServer;
    use support::smtp_sink::SmtpSink;

    let redis = RedisServer::start();
    let smtp = SmtpSink::start();
    let settings = ProcessSettings::new(&redis.url, &smtp.url());
    let optin = OptinProcess::start(&settings).await;
    let client = reqwest::Client::new();
    let member = |email: &str| {
        client
            .request(
                Method::GET,
                optin.url(&member_path("event-info", &md5(email))),
            )
            .basic_auth("anystring", Some(ADMIN_KEY))
            .send()
    };
    let emails = ["early@example.com", "earlier@example.com"];
    for email in emails {
        let response = client
            .post(optin.url("/3.0/lists/event-info/members"))
            .basic_auth("anystring", Some(ADMIN_KEY))
            .json(&json!({ "email_address": email, "status": "unsubscribed" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{email}");
        assert_eq!(member(email).await.unwrap().status(), 200);
    }
    // What an earlier release left behind: the same contacts without index entries.
    let mut connection = redis.connection();
    let index_keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("optin:*:mi:*")
        .query(&mut connection)
        .unwrap();
    assert!(!index_keys.is_empty(), "the writes made index entries");
    let _: () = ::redis::cmd("DEL")
        .arg(&index_keys)
        .query(&mut connection)
        .unwrap();
    for email in emails {
        assert_eq!(member(email).await.unwrap().status(), 404, "{email}");
    }

    let output = run_configured(&settings, optin.port, &["reindex-members"]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("2 contacts indexed"), "{printed}");
    for email in emails {
        let found = member(email).await.unwrap();
        assert_eq!(found.status(), 200, "{email}");
        let found: Value = found.json().await.unwrap();
        assert_eq!(found["email_address"], email);
    }
}
