//! The double opt-in spine, end to end: signup → mail through the outbox to a real SMTP
//! server → link from the text part → GET (changes nothing) → POST → eligible. Every test
//! runs on the embedded store and on a real redis-server.

mod support;

use chrono::Duration;
use serde_json::{json, Value};
use support::app::{Backend, TestApp};

on_every_backend!(
    signup_mail_link_and_click_make_the_address_eligible,
    signup_answers_the_same_whatever_the_address_state,
    a_signup_never_lowers_an_opt_in,
    state_survives_a_restart,
    forged_and_expired_links_get_friendly_pages,
    expired_pending_confirmations_are_purged_with_the_address,
    bad_input_gets_a_clear_problem_and_stores_nothing,
    an_address_gets_at_most_three_confirmation_mails_a_day,
    the_html_form_redirects_and_the_honeypot_sends_nothing,
    the_confirmation_mail_carries_one_click_unsubscribe_headers,
    an_unknown_notice_version_is_refused,
    a_type_without_double_opt_in_is_opted_in_at_signup,
);

async fn signup_mail_link_and_click_make_the_address_eligible(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .signup("Jane.Doe@Example.com", &["blog-updates", "job-alerts"])
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "status": "pending_confirmation" })
    );

    assert_eq!(
        app.drain_outbox().await,
        1,
        "one confirmation mail for both types"
    );
    let mails = app.mails_to("jane.doe@example.com");
    assert_eq!(mails.len(), 1);
    let text = mails[0].text_body();
    assert!(
        text.contains("Blog updates") && text.contains("Job alerts"),
        "the mail names the requested types: {text}"
    );
    assert!(
        text.contains('7'),
        "the mail says how long the link is valid: {text}"
    );
    assert!(mails[0].header("Message-ID").is_some());

    let link = app.confirmation_link("jane.doe@example.com");
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<form") && html.contains("method=\"post\""),
        "the GET page has a button form"
    );
    let before = app
        .eligibility("jane.doe@example.com", "blog-updates")
        .await;
    assert_eq!(
        before["eligible"], false,
        "a GET of the link changes nothing"
    );
    assert_eq!(before["status"], "not_subscribed");

    let confirmed = app.client.post(&link).send().await.unwrap();
    assert_eq!(confirmed.status(), 200);
    assert!(confirmed.headers().get("location").is_none());
    for subscription_type in ["blog-updates", "job-alerts"] {
        let answer = app
            .eligibility("JANE.DOE@example.com", subscription_type)
            .await;
        assert_eq!(answer["eligible"], true, "{subscription_type}");
        assert_eq!(answer["status"], "opted_in");
        assert_eq!(answer["lawful_basis"], "consent");
        assert!(answer["since"].is_string());
    }
    assert_eq!(
        app.eligibility("jane.doe@example.com", "marketing").await["eligible"],
        false
    );

    let again = app.client.post(&link).send().await.unwrap();
    assert_eq!(again.status(), 200, "a second POST is harmless");
    let contact: Value = app.contact_json("jane.doe@example.com").await;
    assert_eq!(
        contact["subscriptions"]["blog-updates"]["status"],
        "opted_in"
    );
    assert_eq!(
        contact["subscriptions"]["blog-updates"]["source"],
        "confirm_link"
    );
    assert_eq!(contact["pending_confirmations"], json!([]));
}

async fn signup_answers_the_same_whatever_the_address_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("opted@example.com", &["blog-updates"])
        .await;
    assert_eq!(
        app.signup("pending@example.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    let mut answers = Vec::new();
    for email in [
        "new@example.com",
        "pending@example.com",
        "opted@example.com",
    ] {
        let response = app.signup(email, &["blog-updates"]).await;
        let status = response.status();
        let content_type = response.headers().get("content-type").cloned();
        answers.push((status, content_type, response.text().await.unwrap()));
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "identical answers: {answers:?}"
    );
    assert_eq!(answers[0].0, 202);
}

async fn a_signup_never_lowers_an_opt_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("kept@example.com", &["blog-updates"])
        .await;
    let mails_before = app.mails_to("kept@example.com").len();
    assert_eq!(
        app.signup("kept@example.com", &["blog-updates"])
            .await
            .status(),
        202
    );
    app.drain_outbox().await;
    assert_eq!(
        app.eligibility("kept@example.com", "blog-updates").await["status"],
        "opted_in"
    );
    assert_eq!(
        app.mails_to("kept@example.com").len(),
        mails_before,
        "no new confirmation mail for a confirmed type"
    );
}

async fn state_survives_a_restart(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("durable@example.com", &["job-alerts"])
        .await;
    assert_eq!(
        app.signup("later@example.com", &["marketing"])
            .await
            .status(),
        202
    );
    app.restart().await;
    assert_eq!(
        app.eligibility("durable@example.com", "job-alerts").await["eligible"],
        true
    );
    // The mail queued before the restart is still sent after it.
    assert_eq!(app.drain_outbox().await, 1);
    app.confirm_mailed_link("later@example.com").await;
    assert_eq!(
        app.eligibility("later@example.com", "marketing").await["eligible"],
        true
    );
}

async fn forged_and_expired_links_get_friendly_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("late@example.com", &["blog-updates"]).await;
    app.drain_outbox().await;
    let link = app.confirmation_link("late@example.com");

    let forged = format!(
        "{}x",
        link.trim_end_matches(|c: char| c.is_ascii_alphanumeric())
    );
    for method in ["GET", "POST"] {
        let response = app
            .client
            .request(method.parse().unwrap(), &forged)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{method} of a forged link");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let body = response.text().await.unwrap();
        assert!(
            body.to_lowercase().contains("sign up"),
            "offers to sign up again"
        );
    }

    app.advance_clock(Duration::days(8));
    let response = app.client.post(&link).send().await.unwrap();
    assert_eq!(response.status(), 410, "an expired link");
    let response = app
        .client
        .get(&link)
        .header("Accept-Language", "nl")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    assert!(
        response.text().await.unwrap().contains("lang=\"nl\""),
        "localized"
    );
    assert_eq!(
        app.eligibility("late@example.com", "blog-updates").await["eligible"],
        false
    );
}

async fn expired_pending_confirmations_are_purged_with_the_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("stays@example.com", &["blog-updates"])
        .await;
    app.signup("stays@example.com", &["marketing"]).await;
    app.signup("goes@example.com", &["marketing"]).await;
    app.drain_outbox().await;
    let stats: Value = app.admin_get_json("/v1/stats").await;
    assert_eq!(stats["pending_confirmations"], 2);

    app.advance_clock(Duration::days(6));
    assert_eq!(
        app.purge_expired().await.pending_removed,
        0,
        "nothing expires early"
    );
    app.advance_clock(Duration::days(2));
    let report = app.purge_expired().await;
    assert_eq!(report.pending_removed, 2);
    assert_eq!(
        report.contacts_removed, 1,
        "the never-confirmed address is gone entirely"
    );

    assert_eq!(
        app.contact("goes@example.com").await.status(),
        404,
        "no personal data left for it"
    );
    let kept: Value = app.contact_json("stays@example.com").await;
    assert_eq!(kept["pending_confirmations"], json!([]));
    assert_eq!(kept["subscriptions"]["blog-updates"]["status"], "opted_in");
    let stats: Value = app.admin_get_json("/v1/stats").await;
    assert_eq!(stats["pending_confirmations"], 0);
}

async fn bad_input_gets_a_clear_problem_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({ "email": "not-an-address", "subscription_types": ["blog-updates"] }),
            422,
            "email",
        ),
        (
            json!({ "email": "a@example.com", "subscription_types": ["no-such-type"] }),
            422,
            "subscription_types",
        ),
        (
            json!({ "email": "a@example.com", "subscription_types": [] }),
            422,
            "subscription_types",
        ),
        (
            json!({ "subscription_types": ["blog-updates"] }),
            422,
            "email",
        ),
        (
            json!({ "email": "a@example.com" }),
            422,
            "subscription_types",
        ),
    ];
    for (body, status, field) in cases {
        let response = app.post_json("/v1/signups", &body).await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["field"], field, "{body}");
        assert!(problem["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:optin:problem:"));
    }
    let malformed = app
        .client
        .post(app.url("/v1/signups"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        malformed.headers()["content-type"],
        "application/problem+json"
    );

    let huge = json!({ "email": "a@example.com", "subscription_types": ["blog-updates"], "pad": "x".repeat(2 * 1024 * 1024) });
    let response = app.post_json("/v1/signups", &huge).await;
    assert_eq!(response.status(), 413);

    assert_eq!(
        app.contact("a@example.com").await.status(),
        404,
        "nothing was stored"
    );
    assert_eq!(app.drain_outbox().await, 0, "no mail was queued");
    let stats: Value = app.admin_get_json("/v1/stats").await;
    assert_eq!(stats["pending_confirmations"], 0);
}

async fn an_address_gets_at_most_three_confirmation_mails_a_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for _ in 0..5 {
        assert_eq!(
            app.signup("bombed@example.com", &["blog-updates"])
                .await
                .status(),
            202
        );
    }
    app.drain_outbox().await;
    assert_eq!(app.mails_to("bombed@example.com").len(), 3);
    app.advance_clock(Duration::hours(25));
    app.signup("bombed@example.com", &["blog-updates"]).await;
    app.drain_outbox().await;
    assert_eq!(
        app.mails_to("bombed@example.com").len(),
        4,
        "the window slides"
    );
}

async fn the_html_form_redirects_and_the_honeypot_sends_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let form = "email=form%40example.com&subscription_types=blog-updates&subscription_types=event-info&website=";
    let response = app
        .client
        .post(app.url("/signup"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("/signup/received?ref="),
        "{location}: the page that asks for the code, with the signup's reference"
    );
    let received = app.client.get(app.url(&location)).send().await.unwrap();
    assert_eq!(received.status(), 200);

    let bot =
        "email=bot%40example.com&subscription_types=blog-updates&website=http%3A%2F%2Fspam.example";
    let response = app
        .client
        .post(app.url("/signup"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(bot)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "a bot sees the same answer");
    let bot_location = response.headers()["location"].to_str().unwrap();
    assert_eq!(
        bot_location.len(),
        location.len(),
        "the same answer, to the byte count"
    );
    app.drain_outbox().await;
    assert_eq!(app.mails_to("form@example.com").len(), 1);
    assert!(app.mails_to("bot@example.com").is_empty());
    assert_eq!(app.contact("bot@example.com").await.status(), 404);
}

async fn the_confirmation_mail_carries_one_click_unsubscribe_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("headers@example.com", &["marketing"]).await;
    app.drain_outbox().await;
    let mail = &app.mails_to("headers@example.com")[0];
    let list_unsubscribe = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
    assert!(
        list_unsubscribe.starts_with(&format!("<{}/unsubscribe/", app.address)),
        "{list_unsubscribe}"
    );
    assert!(list_unsubscribe.ends_with('>'));
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let url = list_unsubscribe.trim_matches(['<', '>']);
    assert!(
        mail.text_body().contains(url),
        "a visible unsubscribe link in the text part"
    );
    assert!(mail.html_body().contains(url), "and in the HTML part");
}

async fn an_unknown_notice_version_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({ "email": "v@example.com", "subscription_types": ["blog-updates"], "notice_version": "1999-old" });
    let response = app.post_json("/v1/signups", &body).await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.json::<Value>().await.unwrap()["field"],
        "notice_version"
    );
    let ok = json!({ "email": "v@example.com", "subscription_types": ["blog-updates"], "notice_version": "2024-05-v3", "locale": "en" });
    assert_eq!(app.post_json("/v1/signups", &ok).await.status(), 202);
}

async fn a_type_without_double_opt_in_is_opted_in_at_signup(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        for subscription_type in &mut settings.subscription_types {
            if subscription_type.id.as_str() == "event-info" {
                subscription_type.double_opt_in = false;
            }
        }
    })
    .await;
    assert_eq!(
        app.signup("single@example.com", &["event-info", "blog-updates"])
            .await
            .status(),
        202
    );
    assert_eq!(
        app.status("single@example.com", "event-info").await,
        "opted_in",
        "no confirmation needed"
    );
    assert_eq!(
        app.status("single@example.com", "blog-updates").await,
        "not_subscribed",
        "the double opt-in type waits"
    );
    let event_info = app.subscription("single@example.com", "event-info").await;
    assert_eq!(event_info["source"], "signup_api");
    assert_eq!(event_info["lawful_basis"], "consent");
    app.drain_outbox().await;
    let mails = app.mails_to("single@example.com");
    assert_eq!(
        mails.len(),
        1,
        "one confirmation mail, for the double opt-in type only"
    );
    assert!(!mails[0].text_body().contains("Event information"));
}
