//! Confirmation in one step, over HTTP: the `optin_bind` binding on every answer of
//! `POST /signup`, the confirmation page that submits itself only for the binding's own
//! signup, the code from the mail and its five tries, the one reminder, the typo
//! question, and the funnel's counts. The same flows in a real browser are in
//! `tests/browser_confirmation.rs`.

mod support;

use chrono::Duration;
use optin::clock::Clock;
use serde_json::{json, Value};
use support::app::{urlencode, Backend, TestApp, ADMIN_KEY};

const WEEK_SECS: i64 = 7 * 24 * 3600;

/// The `optin_bind` cookie an answer sets: the whole `Set-Cookie` value.
fn binding_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("optin_bind="))
        .unwrap_or_else(|| panic!("no optin_bind cookie on a {} answer", response.status()))
        .to_string()
}

/// `optin_bind=<value>`, as a browser sends it back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_string()
}

/// The signed signup reference in a `/signup/received?…&ref=…` location.
fn reference_in(location: &str) -> String {
    let query = location.split_once('?').expect("a query").1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "ref")
        .map(|(_, value)| value.into_owned())
        .expect("a ref parameter")
}

fn hosted_form(email: &str, types: &[&str]) -> String {
    let ticks = types
        .iter()
        .map(|t| format!("&subscription_types={t}"))
        .collect::<Vec<_>>()
        .concat();
    format!(
        "hosted_form=1&locale=en&website=&email={}{ticks}",
        urlencode(email)
    )
}

async fn events(app: &TestApp, email: &str) -> Vec<Value> {
    app.admin_get_json(&format!("/v1/contacts/{}/events", urlencode(email)))
        .await["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// The opt-in events of a contact, with how they were confirmed.
async fn confirm_methods(app: &TestApp, email: &str) -> Vec<String> {
    events(app, email)
        .await
        .iter()
        .filter(|e| e["to"] == "opted_in")
        .map(|e| e["confirm_method"].as_str().unwrap_or("none").to_string())
        .collect()
}

async fn post_code(app: &TestApp, reference: &str, code: &str) -> reqwest::Response {
    let body = format!(
        "ref={}&code={}&locale=en",
        urlencode(reference),
        urlencode(code)
    );
    app.post_form("/signup/received", &body).await
}

on_embedded_and_redis!(
    every_form_answer_sets_a_binding_of_one_size_whatever_the_address,
    the_confirmation_page_submits_itself_only_for_the_signup_of_its_binding,
    the_code_from_the_mail_confirms_and_five_wrong_codes_kill_it,
    one_reminder_goes_to_a_waiting_signup_and_none_to_addresses_that_must_not_get_it,
    a_reminder_counts_against_the_mail_cap,
    the_typo_question_stores_and_mails_nothing_until_an_address_is_chosen,
    the_funnel_counts_each_stage_per_source_in_the_window_asked,
);

async fn every_form_answer_sets_a_binding_of_one_size_whatever_the_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("member@example.com", &["blog-updates"])
        .await;
    // Blocked: the cancel link of a confirmation mail, with "don't ask me again".
    app.signup("blocked@example.com", &["blog-updates"]).await;
    app.drain_outbox().await;
    let cancel = app.mails_to("blocked@example.com")[0]
        .header("List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_string();
    let blocked = app
        .client
        .post(&cancel)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("block=1")
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 200);

    let mut answers = Vec::new();
    for email in [
        "new@example.com",
        "new@example.com",
        "member@example.com",
        "blocked@example.com",
    ] {
        let response = app
            .post_form("/signup", &hosted_form(email, &["blog-updates"]))
            .await;
        assert_eq!(response.status(), 303, "{email}");
        answers.push((email, location(&response), binding_cookie(&response)));
    }
    let bot = app
        .post_form(
            "/signup",
            "email=bot%40example.com&subscription_types=blog-updates&website=spam",
        )
        .await;
    assert_eq!(bot.status(), 303);
    answers.push(("a bot", location(&bot), binding_cookie(&bot)));
    let refused = app
        .post_form("/signup", &hosted_form("late@example.com", &[]))
        .await;
    assert_eq!(refused.status(), 422, "no box ticked");
    answers.push(("the form again", String::new(), binding_cookie(&refused)));

    let (_, first_location, first_cookie) = answers[0].clone();
    for (who, location, cookie) in &answers {
        assert_eq!(
            cookie_pair(cookie).len(),
            cookie_pair(&first_cookie).len(),
            "{who}: the binding has one size"
        );
        if !location.is_empty() {
            assert_eq!(
                reference_in(location).len(),
                reference_in(&first_location).len(),
                "{who}: so has the reference the redirect carries"
            );
        }
        for attribute in ["Path=/confirm", "HttpOnly", "SameSite=Lax"] {
            assert!(cookie.contains(attribute), "{who}: {cookie}");
        }
        assert!(
            !cookie.contains("Secure"),
            "the test app's public URL is http"
        );
        let max_age: i64 = cookie
            .split("Max-Age=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .and_then(|n| n.parse().ok())
            .expect("a Max-Age");
        assert!(
            (WEEK_SECS - 2..=WEEK_SECS).contains(&max_age),
            "{who}: {max_age}"
        );
    }
    assert_ne!(answers[0].2, answers[1].2, "each signup its own binding");

    let api = app.signup("api@example.com", &["blog-updates"]).await;
    assert_eq!(api.status(), 202);
    assert!(
        api.headers().get("set-cookie").is_none(),
        "a server's signup binds no browser"
    );
}

async fn the_confirmation_page_submits_itself_only_for_the_signup_of_its_binding(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .post_form(
            "/signup",
            &hosted_form("ann@example.com", &["blog-updates"]),
        )
        .await;
    let ann_cookie = cookie_pair(&binding_cookie(&ann));
    let bob = app
        .post_form(
            "/signup",
            &hosted_form("bob@example.com", &["blog-updates"]),
        )
        .await;
    let bob_cookie = cookie_pair(&binding_cookie(&bob));
    app.drain_outbox().await;
    let ann_link = app.confirmation_link("ann@example.com");

    let open = |cookie: Option<String>| {
        let mut request = app.client.get(&ann_link);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        async move { request.send().await.unwrap() }
    };
    for (who, cookie) in [("no binding", None), ("another signup's", Some(bob_cookie))] {
        let page = open(cookie).await;
        assert_eq!(page.status(), 200);
        let policy = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(!policy.contains("script-src"), "{who}: {policy}");
        let html = page.text().await.unwrap();
        assert!(!html.contains("<script"), "{who}: the button, no script");
        assert!(html.contains("id=\"confirm\""));
        assert!(!html.contains("same_browser"));
    }
    let bound = open(Some(ann_cookie.clone())).await;
    let policy = bound.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let html = bound.text().await.unwrap();
    let nonce = html
        .split("<script nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a script with a nonce");
    assert!(
        policy.ends_with(&format!("; script-src 'nonce-{nonce}'")),
        "{policy}"
    );
    assert!(html.contains("name=\"method\" value=\"same_browser\""));
    assert_eq!(
        app.status("ann@example.com", "blog-updates").await,
        "not_subscribed",
        "no GET changes anything"
    );

    // The self-submitted form with its binding: same_browser.
    let confirmed = app
        .client
        .post(&ann_link)
        .header("cookie", &ann_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("method=same_browser")
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    assert_eq!(
        confirm_methods(&app, "ann@example.com").await,
        ["same_browser"]
    );
    // A copy of that form without the binding is a button press.
    let bob_link = app.confirmation_link("bob@example.com");
    let copied = app
        .client
        .post(&bob_link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("method=same_browser")
        .send()
        .await
        .unwrap();
    assert_eq!(copied.status(), 200);
    assert_eq!(confirm_methods(&app, "bob@example.com").await, ["button"]);

    let export = app
        .admin_get_json(&format!(
            "/v1/contacts/{}/export",
            urlencode("ann@example.com")
        ))
        .await;
    let event = export["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to"] == "opted_in")
        .expect("the opt-in in the export");
    assert_eq!(event["confirm_method"], "same_browser");
    assert!(event["seconds_since_sent"].is_u64(), "{event}");
}

async fn the_code_from_the_mail_confirms_and_five_wrong_codes_kill_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let signup = |email: &'static str| {
        let app = &app;
        async move {
            let response = app
                .post_form("/signup", &hosted_form(email, &["event-info"]))
                .await;
            assert_eq!(response.status(), 303);
            reference_in(&location(&response))
        }
    };
    let ann = signup("ann@example.com").await;
    let bob = signup("bob@example.com").await;
    app.drain_outbox().await;

    let page = app
        .get_text(app.url(&format!("/signup/received?ref={}", urlencode(&ann))))
        .await;
    assert!(
        page.contains(&format!("name=\"ref\" value=\"{ann}\"")),
        "{page}"
    );
    assert!(page.contains("name=\"code\""));

    let code = app.mails_to("ann@example.com")[0].confirmation_code();
    let right = post_code(&app, &ann, &format!("{} {}", &code[..3], &code[3..])).await;
    assert_eq!(right.status(), 200);
    assert!(right
        .text()
        .await
        .unwrap()
        .contains("Thank you for confirming"));
    assert_eq!(
        app.status("ann@example.com", "event-info").await,
        "opted_in"
    );
    assert_eq!(confirm_methods(&app, "ann@example.com").await, ["code"]);

    let code = app.mails_to("bob@example.com")[0].confirmation_code();
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    for _ in 0..3 {
        let typo = post_code(&app, &bob, "12 45").await;
        assert_eq!(typo.status(), 422);
        assert!(typo.text().await.unwrap().contains("Enter the six digits"));
    }
    for attempt in 1..=5 {
        let refused = post_code(&app, &bob, &wrong).await;
        assert_eq!(refused.status(), 422, "wrong code {attempt}");
        let page = refused.text().await.unwrap();
        assert!(page.contains("That code did not work"), "{page}");
        assert!(page.contains(&format!("name=\"ref\" value=\"{bob}\"")));
    }
    let dead = post_code(&app, &bob, &code).await;
    assert_eq!(
        dead.status(),
        422,
        "after five wrong codes the right one is refused"
    );
    assert!(dead
        .text()
        .await
        .unwrap()
        .contains("That code did not work"));
    assert_eq!(
        app.status("bob@example.com", "event-info").await,
        "not_subscribed"
    );
    app.confirm_mailed_link("bob@example.com").await;
    assert_eq!(
        app.status("bob@example.com", "event-info").await,
        "opted_in",
        "the link still works"
    );

    // The reference of a signup that created nothing is refused the same way.
    let member = signup("ann@example.com").await;
    let nothing = post_code(&app, &member, &code).await;
    assert_eq!(nothing.status(), 422);
    assert!(nothing
        .text()
        .await
        .unwrap()
        .contains("That code did not work"));
    let forged = post_code(&app, &format!("{ann}x"), &code).await;
    assert_eq!(forged.status(), 422);
}

/// An app whose confirmations are reminded after five minutes, with a feedback key.
async fn reminding_app(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        settings.signup.reminder_after_minutes = 5;
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"test-feedback-key"));
        settings
            .security
            .api_keys
            .0
            .push(format!("feedback-test:feedback:{hash}").into());
    })
    .await
}

async fn one_reminder_goes_to_a_waiting_signup_and_none_to_addresses_that_must_not_get_it(
    backend: Backend,
) {
    let app = reminding_app(backend).await;
    app.signup("waiting@example.com", &["blog-updates"]).await;
    app.signup("done@example.com", &["blog-updates"]).await;
    // Blocked, with a second signup still pending.
    app.signup("blocked@example.com", &["blog-updates"]).await;
    app.signup("blocked@example.com", &["marketing"]).await;
    app.signup("bounced@example.com", &["blog-updates"]).await;
    // Left every type, then signed up again.
    app.subscribe_confirmed("left@example.com", &["blog-updates"])
        .await;
    for t in ["job-alerts", "blog-updates", "marketing", "event-info"] {
        let status = app
            .admin(
                reqwest::Method::PUT,
                &format!(
                    "/v1/contacts/{}/subscriptions/{t}",
                    urlencode("left@example.com")
                ),
            )
            .await
            .json(&json!({ "status": "unsubscribed" }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{t}");
    }
    app.signup("left@example.com", &["marketing"]).await;
    app.drain_outbox().await;

    app.confirm_mailed_link("done@example.com").await;
    let cancel = app.mails_to("blocked@example.com")[0]
        .header("List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_string();
    let response = app
        .client
        .post(&cancel)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("block=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bounce = app
        .client
        .post(app.url("/v1/feedback"))
        .bearer_auth("test-feedback-key")
        .json(&json!({ "email": "bounced@example.com", "kind": "hard_bounce" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bounce.status(), 200);
    let mails_before = app.smtp.messages().len();

    let early = app.send_reminders().await;
    assert_eq!((early.mailed, early.skipped), (0, 0), "not due yet");
    app.advance_clock(Duration::minutes(6));
    let report = app.send_reminders().await;
    assert_eq!(report.mailed, 1);
    assert_eq!(report.skipped, 3, "blocked, bounced and left");
    app.drain_outbox().await;
    let again = app.send_reminders().await;
    assert_eq!((again.mailed, again.skipped), (0, 0), "once");
    app.advance_clock(Duration::days(1));
    assert_eq!(app.send_reminders().await.mailed, 0);
    app.drain_outbox().await;

    let new_mails = &app.smtp.messages()[mails_before..];
    assert_eq!(new_mails.len(), 1, "only the waiting address got one");
    let reminder = &new_mails[0];
    assert_eq!(reminder.to, ["waiting@example.com"]);
    assert!(
        reminder.subject().starts_with("Reminder: please confirm"),
        "{}",
        reminder.subject()
    );
    let first = &app.mails_to("waiting@example.com")[0];
    assert_eq!(reminder.confirmation_code(), first.confirmation_code());
    // The same confirmation: its link confirms, and the first mail's link then shows
    // that it was already used.
    let confirmed = app
        .client
        .post(reminder.confirmation_link())
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    assert_eq!(
        app.status("waiting@example.com", "blog-updates").await,
        "opted_in"
    );
    let page = app.get_text(first.confirmation_link()).await;
    assert!(page.contains("Already confirmed"), "{page}");

    let funnel = app.admin_get_json("/v1/stats/confirmations").await;
    assert_eq!(funnel["by_source"]["api"]["reminded"], 1);
}

async fn a_reminder_counts_against_the_mail_cap(backend: Backend) {
    let app = reminding_app(backend).await;
    for _ in 0..3 {
        app.signup("capped@example.com", &["blog-updates"]).await;
    }
    app.drain_outbox().await;
    assert_eq!(
        app.mails_to("capped@example.com").len(),
        3,
        "the cap is spent"
    );
    app.advance_clock(Duration::minutes(6));
    let mut skipped = 0;
    loop {
        let report = app.send_reminders().await;
        assert_eq!(report.mailed, 0);
        if report.skipped == 0 {
            break;
        }
        skipped += report.skipped;
    }
    assert_eq!(skipped, 3, "each of the three is done with, unmailed");
    app.drain_outbox().await;
    assert_eq!(app.mails_to("capped@example.com").len(), 3);
}

async fn the_typo_question_stores_and_mails_nothing_until_an_address_is_chosen(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let asked = app
        .post_form("/signup", &hosted_form("ann@gnail.com", &["blog-updates"]))
        .await;
    assert_eq!(asked.status(), 200);
    let page = asked.text().await.unwrap();
    assert!(page.contains("Did you mean:"), "{page}");
    assert!(page.contains(r#"name="email_choice" value="ann@gmail.com""#));
    assert!(page.contains(r#"name="email_choice" value="ann@gnail.com" id="keep-address""#));
    assert!(page
        .contains(r#"value="blog-updates" aria-describedby="type-blog-updates-details" checked"#));
    app.drain_outbox().await;
    assert!(app.smtp.messages().is_empty(), "nothing mailed");
    for email in ["ann@gnail.com", "ann@gmail.com"] {
        assert_eq!(
            app.contact(email).await.status(),
            404,
            "nothing stored for {email}"
        );
    }

    let chosen = format!(
        "{}&email_choice={}",
        hosted_form("ann@gnail.com", &["blog-updates"]),
        urlencode("ann@gmail.com")
    );
    assert_eq!(app.post_form("/signup", &chosen).await.status(), 303);
    let kept = format!(
        "{}&email_choice={}",
        hosted_form("bob@gnail.com", &["blog-updates"]),
        urlencode("bob@gnail.com")
    );
    assert_eq!(app.post_form("/signup", &kept).await.status(), 303);
    // Only the hosted form asks: an operator's form and the API are taken as typed.
    let own_form = "email=cy%40gnail.com&subscription_types=blog-updates&website=";
    assert_eq!(app.post_form("/signup", own_form).await.status(), 303);
    assert_eq!(
        app.signup("dee@gnail.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    app.drain_outbox().await;
    for email in [
        "ann@gmail.com",
        "bob@gnail.com",
        "cy@gnail.com",
        "dee@gnail.com",
    ] {
        assert_eq!(app.mails_to(email).len(), 1, "{email}");
    }
    assert!(app.mails_to("ann@gnail.com").is_empty());
}

async fn the_funnel_counts_each_stage_per_source_in_the_window_asked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = app.clock.now().date_naive();
    app.signup("api@example.com", &["blog-updates"]).await;
    let footer = json!({
        "email": "footer@example.com",
        "subscription_types": ["blog-updates"],
        "source": { "form_id": "footer" },
    });
    assert_eq!(app.post_json("/v1/signups", &footer).await.status(), 202);
    let own_form = "email=form%40example.com&subscription_types=blog-updates&website=";
    assert_eq!(app.post_form("/signup", own_form).await.status(), 303);
    let code_signup = app
        .post_form(
            "/signup",
            &hosted_form("code@example.com", &["blog-updates"]),
        )
        .await;
    let code_reference = reference_in(&location(&code_signup));
    let bound_signup = app
        .post_form(
            "/signup",
            &hosted_form("bound@example.com", &["blog-updates"]),
        )
        .await;
    let bound_cookie = cookie_pair(&binding_cookie(&bound_signup));
    // Asked only: no mail is sent, so nothing is requested either.
    app.post_form("/signup", &hosted_form("typo@gnail.com", &["blog-updates"]))
        .await;
    app.drain_outbox().await;

    app.advance_clock(Duration::seconds(7));
    let code = app.mails_to("code@example.com")[0].confirmation_code();
    assert_eq!(post_code(&app, &code_reference, &code).await.status(), 200);
    let bound = app
        .client
        .post(app.confirmation_link("bound@example.com"))
        .header("cookie", &bound_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("method=same_browser")
        .send()
        .await
        .unwrap();
    assert_eq!(bound.status(), 200);
    app.advance_clock(Duration::seconds(83));
    app.confirm_mailed_link("api@example.com").await;
    let cancel = app.mails_to("form@example.com")[0]
        .header("List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_string();
    let cancelled = app
        .client
        .post(&cancel)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("block=0")
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    app.advance_clock(Duration::days(8));
    assert_eq!(
        app.purge_expired().await.pending_removed,
        1,
        "the footer signup"
    );

    let funnel = app.admin_get_json("/v1/stats/confirmations").await;
    let stage = |requested, confirmed: Value, expired, cancelled, median: Value| {
        json!({
            "requested": requested, "mailed": requested, "reminded": 0,
            "confirmed": confirmed, "expired": expired, "cancelled": cancelled,
            "median_seconds_to_confirm": median,
        })
    };
    let none = json!({ "same_browser": 0, "button": 0, "code": 0 });
    assert_eq!(
        funnel["by_source"],
        json!({
            "api": stage(1, json!({ "same_browser": 0, "button": 1, "code": 0 }), 0, 0, json!(60)),
            "footer": stage(1, none.clone(), 1, 0, Value::Null),
            "form": stage(1, none, 0, 1, Value::Null),
            "hosted": stage(2, json!({ "same_browser": 1, "button": 0, "code": 1 }), 0, 0, json!(7)),
        }),
        "{funnel}"
    );
    assert_eq!(funnel["until"], app.clock.now().date_naive().to_string());

    let later = day + Duration::days(1);
    let empty = app
        .admin_get_json(&format!("/v1/stats/confirmations?since={later}"))
        .await;
    assert_eq!(
        empty["by_source"],
        json!({}),
        "signups are counted on their own day"
    );
    let window = app
        .admin_get_json(&format!(
            "/v1/stats/confirmations?since={day}&until={day}T23:00:00Z"
        ))
        .await;
    assert_eq!(window["by_source"], funnel["by_source"]);
    let backwards = app
        .get_with_key(
            &format!("/v1/stats/confirmations?since={later}&until={day}"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(backwards.status(), 422);
    let problem: Value = backwards.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("since"),
        "{problem}"
    );
    let anonymous = app
        .client
        .get(app.url("/v1/stats/confirmations"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
