//! The admin console and the hosted signup form over HTTP: sign-in and its refusals,
//! sessions that expire, CSRF, every action changing the store exactly as the admin API
//! does (with the key's name as `actor`), and no address in any console URL.

mod support;

use chrono::Duration;
use optin::config::{Config, Settings};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::app::{urlencode, Backend, TestApp, ADMIN_KEY, SEND_KEY};
use support::smtp_sink::Rejection;
use support::webhook_receiver::{Answer, WebhookReceiver};

on_embedded_and_redis!(
    console_actions_change_the_store_as_the_api_does,
    dead_letters_are_retried_and_unreachable_cleared_from_the_console,
);

const ANN: &str = "ann@example.com";
const BOB: &str = "bob@example.com";

/// A signed-in browser, reduced to its session cookie and the page's CSRF token.
struct Console<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
    /// Every Location header and every link and form target seen, to check for addresses.
    urls: std::cell::RefCell<Vec<String>>,
}

impl<'a> Console<'a> {
    async fn sign_in(app: &'a TestApp) -> Console<'a> {
        let response = sign_in_with(app, ADMIN_KEY).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/admin");
        let cookie = session_cookie(&response).expect("a session cookie");
        let mut console = Console {
            app,
            cookie,
            csrf: String::new(),
            urls: std::cell::RefCell::default(),
        };
        let home = console.get("/admin").await;
        assert_eq!(home.0, StatusCode::OK);
        console.csrf = csrf_of(&home.1);
        console
    }

    fn note(&self, response: &Response) {
        if let Some(location) = response.headers().get("location") {
            self.urls
                .borrow_mut()
                .push(location.to_str().unwrap().to_string());
        }
    }

    fn note_page(&self, html: &str) {
        self.urls.borrow_mut().extend(targets_of(html));
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .app
            .client
            .get(self.app.url(path))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        self.note(&response);
        let status = response.status();
        let html = response.text().await.unwrap();
        self.note_page(&html);
        (status, html)
    }

    /// Posts a form with the session's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let response = self
            .app
            .client
            .post(self.app.url(path))
            .header("cookie", &self.cookie)
            .form(fields)
            .send()
            .await
            .unwrap();
        self.note(&response);
        response
    }

    /// Searches the address and returns the contact page's path it redirects to.
    async fn find(&self, email: &str) -> String {
        let response = self.post("/admin/search", &[("email", email)]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} is found");
        location(&response)
    }

    /// Every console URL seen: none may hold an address.
    fn assert_no_address_in_urls(&self) {
        let urls = self.urls.borrow();
        assert!(!urls.is_empty());
        for url in urls.iter() {
            let decoded = url.replace("%40", "@").replace("%2540", "@");
            assert!(
                !decoded.contains('@'),
                "a console URL holds an address: {url}"
            );
        }
    }
}

async fn sign_in_with(app: &TestApp, key: &str) -> Response {
    app.client
        .post(app.url("/admin/login"))
        .form(&[("key", key)])
        .send()
        .await
        .unwrap()
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string())
}

fn session_cookie(response: &Response) -> Option<String> {
    set_cookie(response).map(|c| c.split(';').next().unwrap().to_string())
}

/// The value of the first `name="csrf"` field of a page.
fn csrf_of(html: &str) -> String {
    attribute_after(html, "name=\"csrf\" value=\"").expect("a CSRF field")
}

fn attribute_after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// Every `href` and `action` of a page.
fn targets_of(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for marker in ["href=\"", "action=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(marker) {
            let after = &rest[start + marker.len()..];
            let end = after.find('"').unwrap_or(after.len());
            found.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    found
}

/// The admin API's events of a contact, without what differs between two contacts
/// changed the same way (ids, times, hashes, request ids).
async fn comparable_events(app: &TestApp, email: &str) -> Vec<Value> {
    let events = app
        .admin_get_json(&format!("/v1/contacts/{}/events", urlencode(email)))
        .await;
    assert_eq!(events["chain_valid"], true);
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            let mut event = event.clone();
            let object = event.as_object_mut().unwrap();
            for volatile in ["id", "at", "prev_hash", "request_id", "signup", "seq"] {
                object.remove(volatile);
            }
            event
        })
        .collect()
}

async fn admin_api(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> StatusCode {
    let mut request = app.admin(method, path).await;
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_without_a_session_redirects_to_sign_in() {
    let app = TestApp::spawn(Backend::Embedded).await;
    app.subscribe_confirmed(ANN, &["blog-updates"]).await;
    let id = contact_id(&app, ANN);
    let gets = [
        "/admin".to_string(),
        "/admin/stats".into(),
        "/admin/deliveries".into(),
        "/admin/processing-record".into(),
        "/admin/quarantine".into(),
        format!("/admin/contacts/{id}"),
        format!("/admin/contacts/{id}/erase"),
    ];
    let posts = [
        "/admin/logout".to_string(),
        "/admin/search".into(),
        format!("/admin/contacts/{id}/export"),
        format!("/admin/contacts/{id}/erase"),
        format!("/admin/contacts/{id}/restriction"),
        format!("/admin/contacts/{id}/subscriptions"),
        format!("/admin/contacts/{id}/unreachable"),
        "/admin/deliveries/dead/00000000-0000-0000-0000-000000000000/retry".into(),
        "/admin/deliveries/webhooks/crm/enable".into(),
        format!("/admin/quarantine/{id}.00000000000000000000000000000000/release"),
        format!("/admin/quarantine/{id}.00000000000000000000000000000000/drop"),
    ];
    // No cookie, a forged one, and a link token passed off as a session.
    let link = app.preferences_link(ANN);
    let link_token = link.rsplit('/').next().unwrap();
    for cookie in [
        None,
        Some("optin_admin=bm9wZQ.bm9wZQ".to_string()),
        Some(format!("optin_admin={link_token}")),
    ] {
        for path in &gets {
            let mut request = app.client.get(app.url(path));
            if let Some(cookie) = &cookie {
                request = request.header("cookie", cookie);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "GET {path}");
            assert_eq!(location(&response), "/admin/login", "GET {path}");
        }
        for path in &posts {
            let mut request = app
                .client
                .post(app.url(path))
                .form(&[("restricted", "1"), ("email", ANN)]);
            if let Some(cookie) = &cookie {
                request = request.header("cookie", cookie);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "POST {path}");
            assert_eq!(location(&response), "/admin/login", "POST {path}");
        }
    }
    assert_eq!(app.contact_json(ANN).await["restricted"], false);
    let login = app
        .client
        .get(app.url("/admin/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert!(login.text().await.unwrap().contains("name=\"key\""));
}

fn contact_id(app: &TestApp, email: &str) -> String {
    let state = app.state();
    let email = optin::domain::EmailAddress::parse(email).unwrap();
    state.subscriptions.contact_id(&email).as_str().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_and_a_send_key_are_refused_and_an_admin_key_gets_a_strict_cookie() {
    let app = TestApp::spawn(Backend::Embedded).await;
    for key in ["not-a-key", SEND_KEY, ""] {
        let response = sign_in_with(&app, key).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "key {key:?}");
        assert!(set_cookie(&response).is_none(), "no session for {key:?}");
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("does not open the console"));
    }
    let response = sign_in_with(&app, ADMIN_KEY).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&response).unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=3600"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert!(!cookie.contains(ADMIN_KEY), "the key is not in the cookie");

    let https = TestApp::spawn_with(Backend::Embedded, |settings: &mut Settings| {
        settings.server.public_url = Some("https://optin.example".into());
        settings.admin.session_minutes = 15;
    })
    .await;
    let cookie = set_cookie(&sign_in_with(&https, ADMIN_KEY).await).unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("Max-Age=900"), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_posted_from_another_site_is_refused_even_with_the_right_key() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let from = |site: &'static str| {
        app.client
            .post(app.url("/admin/login"))
            .header("Sec-Fetch-Site", site)
            .form(&[("key", ADMIN_KEY)])
            .send()
    };
    for site in ["cross-site", "same-site"] {
        let response = from(site).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{site}");
        assert!(set_cookie(&response).is_none(), "no session from {site}");
    }
    // The console's own form (same-origin), a typed-in request (none) and clients that
    // send no such header sign in.
    for site in ["same-origin", "none"] {
        let response = from(site).await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{site}");
        assert!(set_cookie(&response).is_some(), "a session from {site}");
    }
    assert_eq!(
        sign_in_with(&app, ADMIN_KEY).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_are_limited_per_network_even_for_the_right_key() {
    let app = TestApp::spawn(Backend::Embedded).await;
    for _ in 0..optin::service::MAX_SIGN_INS_PER_WINDOW {
        assert_eq!(
            sign_in_with(&app, "guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let response = sign_in_with(&app, ADMIN_KEY).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert!(set_cookie(&response).is_none());
    app.advance_clock(Duration::seconds(
        optin::service::SIGN_IN_WINDOW_SECS as i64,
    ));
    assert_eq!(
        sign_in_with(&app, ADMIN_KEY).await.status(),
        StatusCode::SEE_OTHER,
        "a new window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_expires_and_signing_out_clears_it() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let console = Console::sign_in(&app).await;
    app.advance_clock(Duration::minutes(59));
    assert_eq!(console.get("/admin/stats").await.0, StatusCode::OK);
    app.advance_clock(Duration::minutes(2));
    let response = app
        .client
        .get(app.url("/admin/stats"))
        .header("cookie", &console.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "expired after 60 minutes"
    );
    assert_eq!(location(&response), "/admin/login");

    let console = Console::sign_in(&app).await;
    let response = console.post_raw("/admin/logout", &[]).await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "logout needs the token too"
    );
    let response = console.post("/admin/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/admin/login");
    let cleared = set_cookie(&response).unwrap();
    assert!(
        cleared.starts_with("optin_admin=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_csrf_token_is_forbidden_and_changes_nothing() {
    let app = TestApp::spawn(Backend::Embedded).await;
    app.subscribe_confirmed(ANN, &["blog-updates"]).await;
    let console = Console::sign_in(&app).await;
    let contact = console.find(ANN).await;
    let before = app.contact_json(ANN).await;
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/admin/search".into(), vec![("email", ANN)]),
        (format!("{contact}/export"), vec![]),
        (format!("{contact}/erase"), vec![]),
        (format!("{contact}/restriction"), vec![("restricted", "1")]),
        (
            format!("{contact}/subscriptions"),
            vec![
                ("subscription_type", "blog-updates"),
                ("status", "unsubscribed"),
            ],
        ),
        (format!("{contact}/unreachable"), vec![]),
        (
            "/admin/deliveries/dead/00000000-0000-0000-0000-000000000000/retry".into(),
            vec![],
        ),
        ("/admin/deliveries/webhooks/crm/enable".into(), vec![]),
        ("/admin/logout".into(), vec![]),
    ];
    for (path, fields) in &posts {
        let response = console.post_raw(path, fields).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "POST {path} without a token"
        );
        let mut wrong = vec![("csrf", "forged")];
        wrong.extend_from_slice(fields);
        let response = console.post_raw(path, &wrong).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "POST {path} with a wrong token"
        );
    }
    assert_eq!(app.contact_json(ANN).await, before, "nothing changed");
    assert_eq!(
        console.get("/admin").await.0,
        StatusCode::OK,
        "still signed in"
    );
}

/// Each console action on Ann, and the same admin API call on Bob: their events must be
/// the same, actor included (the console signs in with the API's admin key).
async fn console_actions_change_the_store_as_the_api_does(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for email in [ANN, BOB] {
        app.subscribe_confirmed(email, &["blog-updates", "marketing"])
            .await;
    }
    let console = Console::sign_in(&app).await;
    let contact = console.find(ANN).await;
    assert_eq!(
        contact,
        format!("/admin/contacts/{}", contact_id(&app, ANN))
    );
    let (status, page) = console.get(&contact).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(ANN));
    assert!(page.contains("The hash chain verifies"));
    let bob = |rest: &str| format!("/v1/contacts/{}{rest}", urlencode(BOB));

    // Restrict, then lift.
    let response = console
        .post(&format!("{contact}/restriction"), &[("restricted", "1")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("{contact}?done=restricted"));
    assert_eq!(app.contact_json(ANN).await["restricted"], true);
    assert_eq!(
        admin_api(&app, Method::POST, &bob("/restriction"), None).await,
        200
    );
    let (_, page) = console.get(&location(&response)).await;
    assert!(page.contains("Processing is restricted"));
    console
        .post(&format!("{contact}/restriction"), &[("restricted", "0")])
        .await;
    admin_api(&app, Method::DELETE, &bob("/restriction"), None).await;
    assert_eq!(app.contact_json(ANN).await["restricted"], false);

    // A manual change with its basis and explanation.
    let response = console
        .post(
            &format!("{contact}/subscriptions"),
            &[
                ("subscription_type", "marketing"),
                ("status", "unsubscribed"),
                ("lawful_basis", "legitimate_interests"),
                ("explanation", "asked by phone"),
                ("consent_evidence", ""),
            ],
        )
        .await;
    assert_eq!(location(&response), format!("{contact}?done=changed"));
    admin_api(
        &app,
        Method::PUT,
        &bob("/subscriptions/marketing"),
        Some(json!({"status": "unsubscribed", "lawful_basis": "legitimate_interests", "explanation": "asked by phone"})),
    )
    .await;
    assert_eq!(app.status(ANN, "marketing").await, "unsubscribed");

    // A refused change: consent without evidence. The page says why; nothing changes.
    let response = console
        .post(
            &format!("{contact}/subscriptions"),
            &[
                ("subscription_type", "marketing"),
                ("status", "opted_in"),
                ("lawful_basis", "consent"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("needs consent evidence"));
    assert_eq!(
        admin_api(
            &app,
            Method::PUT,
            &bob("/subscriptions/marketing"),
            Some(json!({"status": "opted_in", "lawful_basis": "consent"})),
        )
        .await,
        422
    );
    assert_eq!(app.status(ANN, "marketing").await, "unsubscribed");

    // An opt-in with evidence.
    console
        .post(
            &format!("{contact}/subscriptions"),
            &[
                ("subscription_type", "marketing"),
                ("status", "opted_in"),
                ("lawful_basis", "consent"),
                ("consent_evidence", "signed form 2026-11-30"),
            ],
        )
        .await;
    admin_api(
        &app,
        Method::PUT,
        &bob("/subscriptions/marketing"),
        Some(json!({"status": "opted_in", "lawful_basis": "consent", "consent_evidence": "signed form 2026-11-30"})),
    )
    .await;
    assert_eq!(app.status(ANN, "marketing").await, "opted_in");

    let ann_events = comparable_events(&app, ANN).await;
    let bob_events = comparable_events(&app, BOB).await;
    assert_eq!(ann_events, bob_events);
    let console_made: Vec<&Value> = ann_events
        .iter()
        .filter(|e| e["source"] != "confirm_link")
        .collect();
    assert_eq!(console_made.len(), 4, "{console_made:?}");
    for event in &console_made {
        assert_eq!(event["actor"], "admin-test", "{event}");
    }

    // The export is the API's export.
    let response = console.post(&format!("{contact}/export"), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let mut exported: Value = response.json().await.unwrap();
    let mut from_api = app
        .admin_get_json(&format!("/v1/contacts/{}/export", urlencode(ANN)))
        .await;
    exported.as_object_mut().unwrap().remove("exported_at");
    from_api.as_object_mut().unwrap().remove("exported_at");
    assert_eq!(exported, from_api);

    // The timeline shows the events with the actor and the chain verdict.
    let (_, page) = console.get(&contact).await;
    assert!(page.contains("admin-test"));
    assert!(page.contains("signed form 2026-11-30"));
    assert!(page.contains("legitimate_interests"));

    // Erasure asks first, then erases as DELETE does.
    let (status, page) = console.get(&format!("{contact}/erase")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Erase this contact?"));
    assert_eq!(
        app.contact(ANN).await.status(),
        200,
        "asking changes nothing"
    );
    let response = console.post(&format!("{contact}/erase"), &[]).await;
    assert_eq!(location(&response), "/admin?done=erased");
    assert_eq!(
        admin_api(&app, Method::DELETE, &bob(""), None).await,
        StatusCode::NO_CONTENT
    );
    for email in [ANN, BOB] {
        assert_eq!(app.contact(email).await.status(), 404, "{email} is gone");
    }
    let (_, page) = console.get("/admin?done=erased").await;
    assert!(page.contains("The contact has been erased"));
    assert_eq!(console.get(&contact).await.0, StatusCode::NOT_FOUND);
    let response = console.post("/admin/search", &[("email", ANN)]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("We hold nothing"));

    // Both imports are refused alike now: the tombstones stand.
    for email in [ANN, BOB] {
        let response = app
            .admin(
                Method::PUT,
                &format!("/v1/contacts/{}/subscriptions/marketing", urlencode(email)),
            )
            .await
            .json(&json!({"status": "opted_in", "lawful_basis": "contract"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{email}: the tombstone stands");
    }
    console.assert_no_address_in_urls();
}

async fn dead_letters_are_retried_and_unreachable_cleared_from_the_console(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.smtp.set_rejecting(Rejection::Permanent);
    assert_eq!(app.signup(ANN, &["blog-updates"]).await.status(), 202);
    app.drain_outbox().await;
    let dead = app.admin_get_json("/v1/outbox/dead").await;
    let id = dead["dead_letters"][0]["id"].as_str().unwrap().to_string();
    assert!(app.contact_json(ANN).await["unreachable"].is_object());

    let console = Console::sign_in(&app).await;
    let (status, page) = console.get("/admin/deliveries").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("a***@example.com"), "the masked recipient");
    assert!(!page.contains(ANN), "never the address");
    assert!(page.contains(&format!("/admin/deliveries/dead/{id}/retry")));

    let contact = console.find(ANN).await;
    let (_, page) = console.get(&contact).await;
    assert!(page.contains("Unreachable since"));
    let response = console.post(&format!("{contact}/unreachable"), &[]).await;
    assert_eq!(
        location(&response),
        format!("{contact}?done=unreachable_cleared")
    );
    assert!(app.contact_json(ANN).await["unreachable"].is_null());
    let events = app
        .admin_get_json(&format!("/v1/contacts/{}/events", urlencode(ANN)))
        .await;
    let last = events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "unreachable_cleared");
    assert_eq!(last["source"], "admin_api");
    assert_eq!(last["actor"], "admin-test");

    app.smtp.set_accepting();
    let response = console
        .post(&format!("/admin/deliveries/dead/{id}/retry"), &[])
        .await;
    assert_eq!(location(&response), "/admin/deliveries?done=retried");
    assert!(app.admin_get_json("/v1/outbox/dead").await["dead_letters"]
        .as_array()
        .unwrap()
        .is_empty());
    app.drain_outbox().await;
    assert_eq!(app.mails_to(ANN).len(), 1, "the retried mail arrived");
    let response = console
        .post(&format!("/admin/deliveries/dead/{id}/retry"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "already retried");
    console.assert_no_address_in_urls();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_signups_are_listed_released_and_dropped_from_the_console_in_english_and_dutch() {
    let app = TestApp::spawn(Backend::Embedded).await;
    for email in ["jane@mailinator.com", "kim@yopmail.com"] {
        assert_eq!(app.signup(email, &["blog-updates"]).await.status(), 202);
    }
    let held = app.admin_get_json("/v1/quarantine").await;
    let id_of = |email: &str| {
        held["quarantined"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["email"] == email)
            .map(|h| h["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let (jane, kim) = (id_of("jane@mailinator.com"), id_of("kim@yopmail.com"));

    let console = Console::sign_in(&app).await;
    let (status, page) = console.get("/admin/quarantine").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("jane@mailinator.com") && page.contains("kim@yopmail.com"));
    assert!(page.contains("Throw-away domain") && page.contains("Signup API"));
    assert!(page.contains(&format!("/admin/quarantine/{jane}/release")));
    let dutch = app
        .client
        .get(app.url("/admin/quarantine"))
        .header("cookie", &console.cookie)
        .header("accept-language", "nl")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dutch.contains("Vastgehouden aanmeldingen") && dutch.contains("Wegwerpdomein"));

    let response = console
        .post(&format!("/admin/quarantine/{jane}/release"), &[])
        .await;
    assert_eq!(location(&response), "/admin/quarantine?done=released");
    let (_, page) = console.get("/admin/quarantine?done=released").await;
    assert!(page.contains("the confirmation mail is on its way"));
    assert!(!page.contains("jane@mailinator.com"));
    app.drain_outbox().await;
    assert_eq!(app.mails_to("jane@mailinator.com").len(), 1);

    let response = console
        .post(&format!("/admin/quarantine/{kim}/drop"), &[])
        .await;
    assert_eq!(location(&response), "/admin/quarantine?done=dropped");
    let (_, page) = console.get("/admin/quarantine").await;
    assert!(page.contains("No signup is held."));
    // What was released or dropped meanwhile says so; a malformed id is not found.
    let again = console
        .post(&format!("/admin/quarantine/{kim}/release"), &[])
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.text().await.unwrap().contains("no longer held"));
    let malformed = console.post("/admin/quarantine/nope/drop", &[]).await;
    assert_eq!(malformed.status(), StatusCode::NOT_FOUND);
    assert!(app.mails_to("kim@yopmail.com").is_empty());
    console.assert_no_address_in_urls();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_webhook_endpoint_is_shown_and_enabled_from_the_console() {
    let receiver = WebhookReceiver::start().await;
    receiver.answer(Answer::Status(410));
    let url = receiver.url("/hook");
    let app = TestApp::spawn_with(Backend::Embedded, move |settings: &mut Settings| {
        settings.webhooks.endpoints = vec![optin::webhooks::EndpointSettings {
            id: "crm".into(),
            url,
            secret: secrecy::SecretString::from(
                optin::webhooks::signature::SigningKey::generate().unwrap(),
            ),
            events: None,
            subscription_types: None,
        }];
    })
    .await;
    app.subscribe_confirmed(ANN, &["blog-updates"]).await;
    app.drain_outbox().await;
    let console = Console::sign_in(&app).await;
    let (_, page) = console.get("/admin/deliveries").await;
    assert!(page.contains("Disabled (the endpoint answered 410)"));
    assert!(page.contains("/admin/deliveries/webhooks/crm/enable"));
    let response = console
        .post("/admin/deliveries/webhooks/crm/enable", &[])
        .await;
    assert_eq!(location(&response), "/admin/deliveries?done=enabled");
    let webhooks = app.admin_get_json("/v1/webhooks").await;
    assert_eq!(webhooks["webhooks"][0]["enabled"], true);
    let (_, page) = console.get("/admin/deliveries?done=enabled").await;
    assert!(page.contains("The endpoint is enabled again"));
    assert_eq!(
        console
            .post("/admin/deliveries/webhooks/nope/enable", &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_page_draws_the_counts_the_api_gives_in_english_and_dutch() {
    let app = TestApp::spawn(Backend::Embedded).await;
    app.subscribe_confirmed(ANN, &["marketing"]).await;
    app.subscribe_confirmed(BOB, &["blog-updates"]).await;
    app.one_click_unsubscribe(BOB, "blog-updates").await;
    let stats = app.admin_get_json("/v1/stats").await;
    assert_eq!(stats["marketing_contacts"], 1);
    let console = Console::sign_in(&app).await;
    let (status, page) = console.get("/admin/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<svg class=\"chart\" id=\"contacts-chart\""));
    assert_eq!(page.matches("class=\"bar-marketing\"").count(), 1);
    assert_eq!(page.matches("class=\"bar-non-marketing\"").count(), 1);
    assert!(
        page.contains("class=\"bar-unsubscribed\""),
        "Bob's unsubscribe"
    );
    assert!(!page.contains("<script"), "no script");
    let row = |label: &str| {
        let start = page.find(label).unwrap();
        let cell = "<td class=\"num\">";
        let from = page[start..].find(cell).unwrap() + start + cell.len();
        page[from..from + page[from..].find('<').unwrap()].to_string()
    };
    assert_eq!(
        row("<th scope=\"row\">Marketing contacts</th>"),
        stats["marketing_contacts"].to_string()
    );
    assert_eq!(
        row("<th scope=\"row\">Non-marketing contacts</th>"),
        stats["non_marketing_contacts"].to_string()
    );

    for (path, dutch) in [
        ("/admin", "Contact zoeken"),
        ("/admin/stats", "Statistieken"),
        ("/admin/deliveries", "Onbestelbare berichten"),
    ] {
        let response = app
            .client
            .get(app.url(path))
            .header("cookie", &console.cookie)
            .header("accept-language", "nl")
            .send()
            .await
            .unwrap();
        assert!(
            response.text().await.unwrap().contains(dutch),
            "{path} in Dutch"
        );
    }
    let login = app
        .client
        .get(app.url("/admin/login"))
        .header("accept-language", "nl")
        .send()
        .await
        .unwrap();
    assert!(login
        .text()
        .await
        .unwrap()
        .contains("Inloggen bij het beheer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_page_leads_to_the_form_and_the_icon_and_admin_slash_answer() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let page = |path: &'static str, language: &'static str| {
        app.client
            .get(app.url(path))
            .header("accept-language", language)
            .send()
    };
    let english = page("/", "en").await.unwrap();
    assert_eq!(english.status(), StatusCode::OK);
    for (header, value) in [
        ("content-type", "text/html; charset=utf-8"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(english.headers()[header], value, "{header}");
    }
    assert!(english.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let html = english.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(html.contains("Sign up for our mail"), "{html}");
    // Relative: behind a path prefix it still leads to the form.
    assert!(html.contains("<a href=\"signup\" id=\"signup\""), "{html}");

    let dutch = page("/", "nl-NL,nl;q=0.9")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dutch.contains("<html lang=\"nl\">"), "{dutch}");
    assert!(dutch.contains("Meld je aan voor onze mail"), "{dutch}");
    let asked = page("/?locale=nl", "en")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(asked.contains("Meld je aan voor onze mail"), "{asked}");
    // handlebars writes `=` as `&#x3D;` in attributes; browsers read it back as `=`.
    assert!(
        asked.contains("<a href=\"signup?locale&#x3D;nl\""),
        "{asked}"
    );
    let unknown = page("/?locale=xx", "en")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(unknown.contains("<a href=\"signup\""), "{unknown}");
    // The link leads to the form.
    assert_eq!(
        page("/signup", "en").await.unwrap().status(),
        StatusCode::OK
    );

    let icon = page("/favicon.ico", "en").await.unwrap();
    assert_eq!(icon.status(), StatusCode::NO_CONTENT);
    assert_eq!(icon.headers()["cache-control"], "public, max-age=604800");
    assert!(icon.bytes().await.unwrap().is_empty());

    let console = page("/admin/", "en").await.unwrap();
    assert_eq!(console.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&console), "../admin");
    let resolved = url::Url::parse(&app.url("/admin/"))
        .unwrap()
        .join(&location(&console))
        .unwrap();
    assert_eq!(resolved.path(), "/admin");
    let console = page("/admin/?done=erased", "en").await.unwrap();
    assert_eq!(location(&console), "../admin?done=erased");
    let posted = app.client.post(app.url("/")).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(posted.headers()["allow"], "GET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosted_signup_form_shows_each_types_notice_and_records_its_hash() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let response = app.client.get(app.url("/signup")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let page = response.text().await.unwrap();
    let settings_types = Settings::example_subscription_types();
    for t in &settings_types {
        let notice = &t.consent_notice["en"];
        assert!(page.contains(&format!("value=\"{}\"", t.id.as_str())));
        assert!(page.contains(&format!(
            "name=\"notice_version.{}\" value=\"{}\"",
            t.id.as_str(),
            notice.version
        )));
    }
    assert!(page.contains("name=\"website\""), "the honeypot");
    assert!(page.contains("action=\"signup\""));

    let response = app
        .client
        .get(app.url("/signup?types=blog-updates,marketing&locale=nl"))
        .send()
        .await
        .unwrap();
    let page = response.text().await.unwrap();
    assert!(page.contains("lang=\"nl\""));
    assert!(page.contains("value=\"blog-updates\"") && page.contains("value=\"marketing\""));
    assert_eq!(page.matches("name=\"subscription_types\"").count(), 2);
    assert!(page.contains("name=\"locale\" value=\"nl\""));
    let blog_nl = settings_types
        .iter()
        .find(|t| t.id.as_str() == "blog-updates")
        .unwrap()
        .consent_notice["nl"]
        .clone();
    let shown = attribute_between(&page, "id=\"notice-blog-updates\"", ">", "</p>");
    assert_eq!(html_unescape(&shown), blog_nl.text);

    let unknown = app
        .client
        .get(app.url("/signup?types=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);

    // Post it as the browser would, confirm, and compare the recorded notice.
    let form = [
        ("locale", "nl"),
        ("email", ANN),
        ("subscription_types", "blog-updates"),
        ("notice_version.blog-updates", blog_nl.version.as_str()),
        ("website", ""),
    ];
    let response = app
        .client
        .post(app.url("/signup"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.drain_outbox().await;
    app.confirm_mailed_link(ANN).await;
    let events = app
        .admin_get_json(&format!("/v1/contacts/{}/events", urlencode(ANN)))
        .await;
    let opted_in = &events["events"][0];
    assert_eq!(opted_in["to"], "opted_in");
    assert_eq!(opted_in["consent_notice"]["version"], blog_nl.version);
    assert_eq!(opted_in["consent_notice"]["locale"], "nl");
    assert_eq!(
        opted_in["consent_notice"]["sha256"],
        hex::encode(Sha256::digest(blog_nl.text.as_bytes()))
    );
    assert_eq!(opted_in["signup"]["source"], "signup_form");

    // A version that was never published is refused, not recorded: the form again,
    // with the text of today.
    let response = app
        .client
        .post(app.url("/signup"))
        .form(&[
            ("email", BOB),
            ("subscription_types", "blog-updates"),
            ("notice_version.blog-updates", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = response.text().await.unwrap();
    assert!(
        again.contains("The text beside a choice has changed"),
        "{again}"
    );
    assert!(again.contains(&format!(
        "name=\"notice_version.blog-updates\" value=\"{}\"",
        settings_types
            .iter()
            .find(|t| t.id.as_str() == "blog-updates")
            .unwrap()
            .consent_notice["en"]
            .version
    )));
    assert_eq!(app.contact(BOB).await.status(), StatusCode::NOT_FOUND);
}

fn attribute_between(html: &str, marker: &str, open: &str, close: &str) -> String {
    let start = html.find(marker).unwrap();
    let from = html[start..].find(open).unwrap() + start + open.len();
    let to = html[from..].find(close).unwrap() + from;
    html[from..to].to_string()
}

fn html_unescape(text: &str) -> String {
    text.replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x3D;", "=")
        .replace("&#x60;", "`")
        .replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_signup_form_and_its_follow_up_pages_may_be_framed_by_the_allowed_origins() {
    let app = TestApp::spawn_with(Backend::Embedded, |settings: &mut Settings| {
        settings.server.embed_allowed_origins = optin::config::StringList(vec![
            "https://shop.example".into(),
            "https://blog.example:8443".into(),
        ]);
    })
    .await;
    let policy = |response: &Response| {
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string()
    };
    for path in ["/signup", "/signup/received"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert!(
            policy(&response)
                .contains("frame-ancestors https://shop.example https://blog.example:8443;"),
            "{path}: {}",
            policy(&response)
        );
        assert!(response.headers().get("x-frame-options").is_none());
    }
    for path in ["/admin/login", "/confirm/nope", "/unsubscribe/nope", "/"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert!(
            policy(&response).contains("frame-ancestors 'none'"),
            "{path} stays unframeable"
        );
        assert_eq!(response.headers()["x-frame-options"], "DENY");
    }
}

#[test]
fn check_config_names_the_new_settings() {
    let base = || support::app::test_settings("/tmp/unused.redb", "smtp://127.0.0.1:25", 8080);
    let mut settings = base();
    settings.server.embed_allowed_origins =
        optin::config::StringList(vec!["https://shop.example/path".into()]);
    let error = Config::from_settings(settings).err().unwrap().to_string();
    assert!(error.contains("server.embed_allowed_origins"), "{error}");
    let mut settings = base();
    settings.server.embed_allowed_origins =
        optin::config::StringList(vec!["ftp://x.example".into()]);
    assert!(Config::from_settings(settings).is_err());
    let mut settings = base();
    settings.admin.session_minutes = 0;
    let error = Config::from_settings(settings).err().unwrap().to_string();
    assert!(error.contains("admin.session_minutes"), "{error}");
}
