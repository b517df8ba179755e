//! One-click unsubscribe (RFC 8058), the unsubscribe page and the preference center, over
//! HTTP against the real app on both stores.

mod support;

use serde_json::Value;
use support::app::{Backend, TestApp};

on_every_backend!(
    one_click_post_unsubscribes_without_redirect,
    one_click_works_as_multipart_too,
    one_click_multipart_with_a_quoted_boundary_and_other_fields,
    a_get_of_the_unsubscribe_link_changes_nothing,
    the_confirmation_mail_link_cancels_the_pending_signup,
    a_plain_signup_does_not_reopen_an_unsubscribed_type_until_confirmed,
    the_preference_center_changes_several_types_in_one_save,
    unsubscribe_from_all_leaves_every_type,
    eligibility_gives_the_exact_headers_for_the_mail,
    pages_carry_security_headers,
    the_unsubscribe_page_offers_to_resubscribe_once_unsubscribed,
);

async fn one_click_post_unsubscribes_without_redirect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("leaver@example.com", &["blog-updates", "marketing"])
        .await;
    let url = app
        .unsubscribe_link("leaver@example.com", "blog-updates")
        .await;
    let response = app.post_one_click(&url).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("location").is_none(),
        "never a redirect"
    );
    assert_eq!(
        app.status("leaver@example.com", "blog-updates").await,
        "unsubscribed"
    );
    assert_eq!(
        app.eligibility("leaver@example.com", "blog-updates").await["eligible"],
        false
    );
    assert_eq!(
        app.status("leaver@example.com", "marketing").await,
        "opted_in",
        "other types untouched"
    );
    let blog_updates = app.subscription("leaver@example.com", "blog-updates").await;
    assert_eq!(blog_updates["source"], "one_click");

    let again = app
        .client
        .post(&url)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "repeating is harmless");
}

async fn one_click_works_as_multipart_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("multi@example.com", &["job-alerts"])
        .await;
    let url = app
        .unsubscribe_link("multi@example.com", "job-alerts")
        .await;
    let form = reqwest::multipart::Form::new().text("List-Unsubscribe", "One-Click");
    let response = app.client.post(&url).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("location").is_none());
    let job_alerts = app.subscription("multi@example.com", "job-alerts").await;
    assert_eq!(job_alerts["status"], "unsubscribed");
    assert_eq!(job_alerts["source"], "one_click");
}

/// A multipart body written out by hand, as some mail clients send it: the boundary is
/// quoted in the header (it holds characters that must be), and another field comes first.
async fn one_click_multipart_with_a_quoted_boundary_and_other_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("quoted@example.com", &["job-alerts"])
        .await;
    let url = app
        .unsubscribe_link("quoted@example.com", "job-alerts")
        .await;
    let body = "--=_Part 7:x\r\n\
                Content-Disposition: form-data; name=\"client\"\r\n\r\n\
                webmail\r\n\
                --=_Part 7:x\r\n\
                Content-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\
                Content-Type: text/plain; charset=utf-8\r\n\r\n\
                One-Click\r\n\
                --=_Part 7:x--\r\n";
    let response = app
        .client
        .post(&url)
        .header(
            "content-type",
            "multipart/form-data; boundary=\"=_Part 7:x\"",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let job_alerts = app.subscription("quoted@example.com", "job-alerts").await;
    assert_eq!(job_alerts["status"], "unsubscribed");
    assert_eq!(
        job_alerts["source"], "one_click",
        "recognized as one-click, not as the page's button"
    );
}

async fn a_get_of_the_unsubscribe_link_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("scanned@example.com", &["blog-updates"])
        .await;
    let url = app
        .unsubscribe_link("scanned@example.com", "blog-updates")
        .await;
    for _ in 0..3 {
        let page = app.client.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("id=\"unsubscribe\""),
            "the page has the button"
        );
        assert!(
            html.contains("action=\"../manage/"),
            "and a form that mails a link to manage all subscriptions"
        );
        assert!(!html.contains("/preferences/"), "never the preferences");
    }
    assert_eq!(
        app.status("scanned@example.com", "blog-updates").await,
        "opted_in"
    );
    // The page's own button posts an empty form: recorded as the unsubscribe page.
    let response = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let blog_updates = app
        .subscription("scanned@example.com", "blog-updates")
        .await;
    assert_eq!(blog_updates["source"], "unsubscribe_page");
}

async fn the_confirmation_mail_link_cancels_the_pending_signup(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("changed-mind@example.com", &["marketing"]).await;
    app.drain_outbox().await;
    let mail = &app.mails_to("changed-mind@example.com")[0];
    let url = mail
        .header("List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_string();
    let response = app
        .client
        .post(&url)
        .body("List-Unsubscribe=One-Click")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Nothing was ever subscribed, so nothing is recorded as unsubscribed, and the
    // address held only for that signup is gone.
    assert_eq!(app.contact("changed-mind@example.com").await.status(), 404);
    assert_eq!(
        app.status("changed-mind@example.com", "marketing").await,
        "not_subscribed"
    );
    let confirm = app
        .client
        .post(app.confirmation_link("changed-mind@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        confirm.status(),
        410,
        "the cancelled signup's link no longer confirms"
    );
    assert_eq!(
        app.status("changed-mind@example.com", "marketing").await,
        "not_subscribed"
    );
}

async fn a_plain_signup_does_not_reopen_an_unsubscribed_type_until_confirmed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("back@example.com", &["marketing"])
        .await;
    app.one_click_unsubscribe("back@example.com", "marketing")
        .await;
    assert_eq!(
        app.signup("back@example.com", &["marketing"])
            .await
            .status(),
        202
    );
    assert_eq!(
        app.status("back@example.com", "marketing").await,
        "unsubscribed",
        "a signup alone changes nothing"
    );
    app.drain_outbox().await;
    app.confirm_mailed_link("back@example.com").await;
    assert_eq!(
        app.status("back@example.com", "marketing").await,
        "opted_in",
        "a new confirmation does"
    );
}

async fn the_preference_center_changes_several_types_in_one_save(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("prefs@example.com", &["blog-updates"])
        .await;
    let url = app.preferences_link("prefs@example.com");
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for id in ["job-alerts", "blog-updates", "marketing", "event-info"] {
        assert!(
            html.contains(&format!("id=\"type-{id}\"")),
            "every type is listed: {id}"
        );
    }
    assert_eq!(
        app.status("prefs@example.com", "marketing").await,
        "not_subscribed",
        "GET changes nothing"
    );

    let form = "shown=job-alerts&shown=blog-updates&shown=marketing&shown=event-info\
                &subscription_types=marketing&subscription_types=event-info&notice_version.marketing=2024-05-v1\
                &notice_version.event-info=2024-05-v1";
    let saved = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    assert_eq!(
        app.status("prefs@example.com", "blog-updates").await,
        "unsubscribed"
    );
    assert_eq!(
        app.status("prefs@example.com", "marketing").await,
        "opted_in"
    );
    assert_eq!(
        app.status("prefs@example.com", "event-info").await,
        "opted_in"
    );
    assert_eq!(
        app.status("prefs@example.com", "job-alerts").await,
        "not_subscribed"
    );
    let marketing = app.subscription("prefs@example.com", "marketing").await;
    assert_eq!(marketing["source"], "preference_center");
    assert_eq!(marketing["lawful_basis"], "consent");
}

async fn unsubscribe_from_all_leaves_every_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed(
        "all@example.com",
        &["blog-updates", "marketing", "event-info"],
    )
    .await;
    let url = app.preferences_link("all@example.com");
    let response = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("unsubscribe_all=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for id in ["blog-updates", "marketing", "event-info"] {
        assert_eq!(
            app.status("all@example.com", id).await,
            "unsubscribed",
            "{id}"
        );
    }
    // "All" holds for every type, those never joined too, as through HubSpot's
    // unsubscribe-all: an import cannot later opt the person in without new consent.
    assert_eq!(
        app.status("all@example.com", "job-alerts").await,
        "unsubscribed",
        "a type never joined is left too"
    );
    let stats: Value = app.admin_get_json("/v1/stats").await;
    assert_eq!(stats["marketing_contacts"], 0);
    assert_eq!(stats["non_marketing_contacts"], 1);
}

async fn eligibility_gives_the_exact_headers_for_the_mail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let answer = app.eligibility("nobody@example.com", "marketing").await;
    assert_eq!(answer["status"], "not_subscribed");
    assert_eq!(answer["eligible"], false);
    assert_eq!(
        answer["list_unsubscribe_post"],
        "List-Unsubscribe=One-Click"
    );
    let header = answer["list_unsubscribe"].as_str().unwrap();
    assert!(
        header.starts_with(&format!("<{}/unsubscribe/", app.address)) && header.ends_with('>'),
        "{header}"
    );
}

async fn pages_carry_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("headers@example.com", &["blog-updates"])
        .await;
    let url = app.preferences_link("headers@example.com");
    let response = app.client.get(&url).send().await.unwrap();
    let headers = response.headers();
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script"), "no JavaScript needed");
}

async fn the_unsubscribe_page_offers_to_resubscribe_once_unsubscribed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("again@example.com", &["blog-updates"])
        .await;
    let url = app
        .unsubscribe_link("again@example.com", "blog-updates")
        .await;
    let before = app.get_text(&url).await;
    assert!(
        !before.contains("id=\"resubscribe\""),
        "no resubscribe offer while subscribed"
    );
    app.one_click_unsubscribe("again@example.com", "blog-updates")
        .await;

    let page = app.get_text(&url).await;
    assert!(
        page.contains("id=\"resubscribe\""),
        "the GET page now offers to resubscribe"
    );
    let action = page
        .split("action=\"")
        .find_map(|rest| {
            rest.split('"')
                .next()
                .filter(|a| a.ends_with("/resubscribe"))
        })
        .expect("the resubscribe form's action")
        .to_string();
    let target = reqwest::Url::parse(&url).unwrap().join(&action).unwrap();
    assert!(target.path().starts_with("/unsubscribe/"), "{target}");
    let response = app.client.post(target).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.status("again@example.com", "blog-updates").await,
        "unsubscribed",
        "rejoining waits for the new confirmation"
    );
    assert_eq!(app.drain_outbox().await, 1);
    let confirm = app.confirmation_link("again@example.com");
    assert_eq!(
        app.client.post(&confirm).send().await.unwrap().status(),
        200
    );
    let blog_updates = app.subscription("again@example.com", "blog-updates").await;
    assert_eq!(blog_updates["status"], "opted_in");
    assert_eq!(blog_updates["source"], "confirm_link");
}
