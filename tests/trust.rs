//! What each link may do (DESIGN.md, "What each link may do"): an unsubscribe or manage
//! link, which travels in every newsletter, reaches no further than its one type and a
//! preferences link mailed to the address; subscription bombing is capped and can be
//! blocked; token routes are rate limited; pages speak the language of the mail.

mod support;

use chrono::Duration;
use serde_json::Value;
use support::app::{Backend, TestApp};

on_every_backend!(
    an_unsubscribe_link_reaches_no_further_than_its_type,
    sender_answers_carry_a_manage_link_and_never_a_preferences_link,
    the_manage_flow_mails_a_working_preferences_link,
    the_manage_page_is_the_same_for_unknown_and_known_addresses,
    resubscribing_from_the_unsubscribe_page_needs_the_new_confirmation,
    six_cancel_and_resignup_rounds_send_at_most_three_mails,
    a_signup_block_holds_until_a_preferences_link_lifts_it,
    a_token_post_flood_gets_429_and_adds_a_bounded_number_of_events,
    export_and_erasure_need_a_fresh_preferences_link,
    a_public_signup_asks_an_unsubscribed_person_to_confirm_even_without_double_opt_in,
    pages_speak_the_language_of_the_mail_and_signups_keep_the_contacts_language,
);

/// Every `href` and form `action` of a page, resolved against the page's URL.
fn reachable_urls(page_url: &str, html: &str) -> Vec<String> {
    let base = url::Url::parse(page_url).unwrap();
    ["href=\"", "action=\""]
        .iter()
        .flat_map(|attribute| html.split(attribute).skip(1))
        .filter_map(|rest| rest.split('"').next())
        .map(|target| base.join(target).unwrap().to_string())
        .collect()
}

async fn page(app: &TestApp, url: &str) -> String {
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.text().await.unwrap()
}

async fn post_form(app: &TestApp, url: &str, body: &str) -> reqwest::Response {
    app.client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn event_count(app: &TestApp, email: &str) -> usize {
    let events = app
        .admin_get_json(&format!("/v1/contacts/{email}/events"))
        .await;
    events["events"].as_array().map_or(0, Vec::len)
}

/// The preferences link from the newest mail to `email` that carries one.
fn mailed_preferences_link(app: &TestApp, email: &str) -> String {
    app.mails_to(email)
        .iter()
        .rev()
        .flat_map(support::smtp_sink::ReceivedMail::links)
        .find(|link| link.contains("/preferences/"))
        .unwrap_or_else(|| panic!("no mail to {email} holds a preferences link"))
}

async fn an_unsubscribe_link_reaches_no_further_than_its_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "holder@example.com";
    app.subscribe_confirmed(email, &["blog-updates"]).await;
    let unsubscribe = app.unsubscribe_link(email, "blog-updates").await;

    // Nothing on the page, nor on the page after unsubscribing, leads to the preferences.
    let before = page(&app, &unsubscribe).await;
    let after = post_form(&app, &unsubscribe, "")
        .await
        .text()
        .await
        .unwrap();
    for html in [&before, &after] {
        assert!(!html.contains("/preferences/"), "{html}");
        for url in reachable_urls(&unsubscribe, html) {
            assert!(!url.contains("/preferences/"), "{url}");
        }
    }
    let events_before = event_count(&app, email).await;
    // A preference-center form post, an export and an erasure aimed at the link.
    let forged = post_form(
        &app,
        &unsubscribe,
        "subscription_types=marketing&shown=marketing&notice_version.marketing=x",
    )
    .await;
    assert_eq!(forged.status(), 200);
    for path in ["export", "erase"] {
        let response = post_form(&app, &format!("{unsubscribe}/{path}"), "").await;
        assert!(
            response.status() == 404 || response.status() == 405,
            "{path}: {}",
            response.status()
        );
    }
    // Every form the pages offer, posted as a stranger would.
    for url in reachable_urls(&unsubscribe, &after) {
        let response = post_form(&app, &url, "").await;
        assert!(response.status().is_success(), "{url}");
    }
    assert_eq!(app.status(email, "marketing").await, "not_subscribed");
    assert_eq!(app.status(email, "blog-updates").await, "unsubscribed");
    let eligibility = app.eligibility(email, "marketing").await;
    assert_eq!(eligibility["eligible"], false);
    assert_eq!(eligibility["reason"], "not_opted_in");
    assert_eq!(
        event_count(&app, email).await,
        events_before,
        "a POST that changes nothing records nothing"
    );
    assert_eq!(
        app.contact(email).await.status(),
        200,
        "the contact was not erased"
    );
}

async fn sender_answers_carry_a_manage_link_and_never_a_preferences_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("reader@example.com", &["blog-updates"])
        .await;
    let single = app.eligibility("reader@example.com", "blog-updates").await;
    let manage = single["manage_preferences_url"].as_str().unwrap();
    assert!(manage.contains("/manage/"), "{manage}");
    let batch: Value = app
        .client
        .post(app.url("/v1/eligibility"))
        .bearer_auth(support::app::SEND_KEY)
        .json(&serde_json::json!({
            "subscription_type": "blog-updates",
            "emails": ["reader@example.com", "stranger@example.com"]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for answer in batch["results"].as_array().unwrap() {
        assert!(answer["manage_preferences_url"]
            .as_str()
            .unwrap()
            .contains("/manage/"));
    }
    for text in [single.to_string(), batch.to_string()] {
        assert!(!text.contains("/preferences/"), "{text}");
    }
    let contact = app
        .contact("reader@example.com")
        .await
        .text()
        .await
        .unwrap();
    let export = app
        .admin_get_json("/v1/contacts/reader@example.com/export")
        .await;
    for text in [contact, export.to_string()] {
        assert!(!text.contains("/preferences/"), "{text}");
    }
}

async fn the_manage_flow_mails_a_working_preferences_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "footer@example.com";
    app.subscribe_confirmed(email, &["blog-updates"]).await;
    let manage = app.eligibility(email, "blog-updates").await["manage_preferences_url"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = page(&app, &manage).await;
    assert!(shown.contains("id=\"mail-preferences-link\""), "{shown}");
    assert!(!shown.contains("/preferences/"));
    let mails_before = app.mails_to(email).len();
    let sent = post_form(&app, &manage, "").await;
    assert_eq!(sent.status(), 200);
    assert_eq!(app.drain_outbox().await, 1);
    let mails = app.mails_to(email);
    assert_eq!(mails.len(), mails_before + 1);
    let mail = mails.last().unwrap();
    assert!(mail.header("List-Unsubscribe").is_some());
    let preferences = mailed_preferences_link(&app, email);

    let saved = post_form(
        &app,
        &preferences,
        "shown=marketing&subscription_types=marketing&notice_version.marketing=2024-05-v1&shown=blog-updates&subscription_types=blog-updates",
    )
    .await;
    assert_eq!(saved.status(), 200);
    assert_eq!(app.status(email, "marketing").await, "opted_in");
    let events = app
        .admin_get_json(&format!("/v1/contacts/{email}/events"))
        .await;
    let last = events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["source"], "preference_center");
    assert_eq!(last["lawful_basis"], "consent");
    assert_eq!(last["type"], "marketing");
}

async fn the_manage_page_is_the_same_for_unknown_and_known_addresses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("known@example.com", &["blog-updates"])
        .await;
    let mut pages = Vec::new();
    for email in ["known@example.com", "unknown@example.com"] {
        let manage = app.eligibility(email, "blog-updates").await["manage_preferences_url"]
            .as_str()
            .unwrap()
            .to_string();
        let token = manage.rsplit('/').next().unwrap().to_string();
        let get = page(&app, &manage).await.replace(&token, "TOKEN");
        let response = post_form(&app, &manage, "").await;
        assert_eq!(response.status(), 200);
        pages.push((get, response.text().await.unwrap()));
    }
    assert_eq!(pages[0], pages[1]);
    app.drain_outbox().await;
    assert!(app.mails_to("unknown@example.com").is_empty());
    assert_eq!(
        app.contact("unknown@example.com").await.status(),
        404,
        "nothing stored for an unknown address"
    );
}

async fn resubscribing_from_the_unsubscribe_page_needs_the_new_confirmation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "again@example.com";
    app.subscribe_confirmed(email, &["blog-updates"]).await;
    app.one_click_unsubscribe(email, "blog-updates").await;
    let unsubscribe = app.unsubscribe_link(email, "blog-updates").await;
    let shown = page(&app, &unsubscribe).await;
    assert!(shown.contains("id=\"resubscribe\""), "{shown}");

    let response = post_form(&app, &format!("{unsubscribe}/resubscribe"), "").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.status(email, "blog-updates").await,
        "unsubscribed",
        "no opt-in without the new confirmation"
    );
    assert_eq!(app.drain_outbox().await, 1);
    let confirm = app.confirmation_link(email);
    assert_eq!(
        app.client.post(&confirm).send().await.unwrap().status(),
        200
    );
    assert_eq!(app.status(email, "blog-updates").await, "opted_in");
}

async fn six_cancel_and_resignup_rounds_send_at_most_three_mails(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "bombed@example.com";
    for _ in 0..6 {
        assert_eq!(app.signup(email, &["blog-updates"]).await.status(), 202);
        app.drain_outbox().await;
        let cancel = app
            .mails_to(email)
            .last()
            .and_then(|m| m.links().into_iter().find(|l| l.contains("/unsubscribe/")));
        if let Some(cancel) = cancel {
            assert_eq!(post_form(&app, &cancel, "").await.status(), 200);
        }
    }
    assert_eq!(app.mails_to(email).len(), 3);
    // Erasure does not reset the count either.
    let erased = app
        .admin_send(reqwest::Method::DELETE, &format!("/v1/contacts/{email}"))
        .await;
    assert!(erased.status().is_success() || erased.status() == 404);
    app.signup(email, &["blog-updates"]).await;
    app.drain_outbox().await;
    assert_eq!(app.mails_to(email).len(), 3);
    // A rolling day later the address can be asked again.
    app.advance_clock(Duration::hours(25));
    app.signup(email, &["blog-updates"]).await;
    app.drain_outbox().await;
    assert_eq!(app.mails_to(email).len(), 4);
}

async fn a_signup_block_holds_until_a_preferences_link_lifts_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "blocker@example.com";
    app.signup(email, &["blog-updates"]).await;
    app.drain_outbox().await;
    let cancel = app.mails_to(email)[0]
        .links()
        .into_iter()
        .find(|l| l.contains("/unsubscribe/"))
        .unwrap();
    let cancelled = post_form(&app, &cancel, "block=1").await;
    assert_eq!(cancelled.status(), 200);
    let contact: Value = app.contact_json(email).await;
    assert!(contact["signup_blocked_since"].is_string(), "{contact}");

    let again = app.signup(email, &["blog-updates", "marketing"]).await;
    assert_eq!(again.status(), 202, "the same answer as for anyone");
    assert_eq!(app.drain_outbox().await, 0, "no mail");
    let contact: Value = app.contact_json(email).await;
    assert_eq!(contact["pending_confirmations"], serde_json::json!([]));

    let preferences = app.preferences_link(email);
    let shown = page(&app, &preferences).await;
    assert!(shown.contains("id=\"allow-signups\""), "{shown}");
    assert_eq!(
        post_form(&app, &preferences, "allow_signups=1")
            .await
            .status(),
        200
    );
    app.signup(email, &["blog-updates"]).await;
    assert_eq!(
        app.drain_outbox().await,
        1,
        "signups reach the person again"
    );
    let kinds: Vec<String> = app
        .admin_get_json(&format!("/v1/contacts/{email}/events"))
        .await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["signup_blocked", "signup_block_lifted"]);
}

async fn a_token_post_flood_gets_429_and_adds_a_bounded_number_of_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "flooded@example.com";
    app.subscribe_confirmed(email, &["blog-updates"]).await;
    let preferences = app.preferences_link(email);
    let events_before = event_count(&app, email).await;
    let mut refused = 0;
    for round in 0..30 {
        let body = if round % 2 == 0 {
            "shown=marketing&subscription_types=marketing&notice_version.marketing=2024-05-v1"
        } else {
            "shown=marketing"
        };
        let response = post_form(&app, &preferences, body).await;
        match response.status().as_u16() {
            200 => {}
            429 => {
                refused += 1;
                let text = response.text().await.unwrap();
                assert!(text.contains("<html"), "a page, not a bare error");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused >= 10, "refused {refused}");
    let added = event_count(&app, email).await - events_before;
    // The confirm click spent one POST of the hour's budget of 20.
    assert!(added <= 20, "{added} events added");
    // One-click unsubscribe is never refused.
    app.one_click_unsubscribe(email, "blog-updates").await;
    assert_eq!(app.status(email, "blog-updates").await, "unsubscribed");
}

async fn export_and_erasure_need_a_fresh_preferences_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "rights@example.com";
    app.subscribe_confirmed(email, &["blog-updates"]).await;
    let aged = mailed_preferences_link(&app, email);
    app.advance_clock(Duration::minutes(61));
    let shown = page(&app, &aged).await;
    assert!(!shown.contains("id=\"export\""), "{shown}");
    assert!(shown.contains("id=\"mail-fresh-link\""), "{shown}");
    let export = post_form(&app, &format!("{aged}/export"), "").await;
    assert_eq!(export.status(), 403);
    assert!(export.text().await.unwrap().contains("fresh-link"));
    let erase = post_form(&app, &format!("{aged}/erase"), "").await;
    assert_eq!(erase.status(), 403);
    assert_eq!(app.contact(email).await.status(), 200, "nothing erased");

    assert_eq!(
        post_form(&app, &format!("{aged}/fresh-link"), "")
            .await
            .status(),
        200
    );
    app.drain_outbox().await;
    let fresh = mailed_preferences_link(&app, email);
    assert_ne!(fresh, aged);
    let export = post_form(&app, &format!("{fresh}/export"), "").await;
    assert_eq!(export.status(), 200);
    let data: Value = export.json().await.unwrap();
    assert_eq!(data["contact"]["email"], email);
}

async fn a_public_signup_asks_an_unsubscribed_person_to_confirm_even_without_double_opt_in(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |settings| {
        for subscription_type in &mut settings.subscription_types {
            if subscription_type.id.as_str() == "event-info" {
                subscription_type.double_opt_in = false;
            }
        }
    })
    .await;
    let email = "said-no@example.com";
    app.signup(email, &["event-info"]).await;
    assert_eq!(app.status(email, "event-info").await, "opted_in");
    app.one_click_unsubscribe(email, "event-info").await;
    app.signup(email, &["event-info"]).await;
    assert_eq!(app.status(email, "event-info").await, "unsubscribed");
    assert_eq!(app.drain_outbox().await, 1, "a confirmation mail instead");
    let confirm = app.confirmation_link(email);
    app.client.post(&confirm).send().await.unwrap();
    assert_eq!(app.status(email, "event-info").await, "opted_in");
}

async fn pages_speak_the_language_of_the_mail_and_signups_keep_the_contacts_language(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let email = "taal@example.com";
    app.subscribe_confirmed(email, &["blog-updates"]).await;
    let contact: Value = app.contact_json(email).await;
    assert_eq!(contact["locale"], "en");

    let dutch =
        serde_json::json!({ "email": email, "subscription_types": ["marketing"], "locale": "nl" });
    assert_eq!(app.post_json("/v1/signups", &dutch).await.status(), 202);
    let contact: Value = app.contact_json(email).await;
    assert_eq!(contact["locale"], "en", "a public signup keeps the locale");
    app.drain_outbox().await;
    let confirm = app.confirmation_link(email);
    let shown = app
        .client
        .get(&confirm)
        .header("Accept-Language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        shown.contains("lang=\"nl\""),
        "the Dutch mail opens a Dutch page"
    );
    app.client.post(&confirm).send().await.unwrap();
    let contact: Value = app.contact_json(email).await;
    assert_eq!(contact["locale"], "nl", "the confirm click records it");
}
