//! The hosted form where it is put: errors that are the form again (422) with what was
//! typed and ticked, a single type ticked from the start, the form and the pages after it
//! frameable by the allowed origins only (with the script that tells the parent their
//! height), the thank-you URL reached from a frame, and a cancel link with nothing left
//! to cancel. The same in a real browser, framed by another origin, is in
//! `tests/browser_confirmation.rs`.

mod support;

use reqwest::Response;
use support::app::{urlencode, Backend, TestApp};

const SHOP: &str = "https://shop.example";

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// A frameable page: no `X-Frame-Options`, the allowed origin as its only ancestor, and
/// the resize script allowed by the very nonce the page carries.
async fn assert_framed_by_shop(response: Response, what: &str) -> String {
    assert_eq!(header(&response, "x-frame-options"), None, "{what}");
    let policy = header(&response, "content-security-policy").unwrap();
    assert!(
        policy.contains(&format!("frame-ancestors {SHOP};")),
        "{what}: {policy}"
    );
    let html = response.text().await.unwrap();
    let nonce = html
        .split("<script nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("{what}: no script"));
    assert!(
        policy.contains(&format!("'nonce-{nonce}'")),
        "{what}: {policy}"
    );
    assert!(
        html.contains(&format!("data-origins=\"{SHOP}\"")),
        "{what}: the script posts to the allowed origin"
    );
    assert!(html.contains("optin:resize"), "{what}");
    html
}

async fn assert_unframeable(response: Response, what: &str) {
    assert_eq!(
        header(&response, "x-frame-options").as_deref(),
        Some("DENY"),
        "{what}"
    );
    let policy = header(&response, "content-security-policy").unwrap();
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{what}: {policy}"
    );
    assert!(
        !response.text().await.unwrap().contains("optin:resize"),
        "{what}"
    );
}

fn checked(html: &str, type_id: &str) -> bool {
    let marker = format!("id=\"type-{type_id}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no box for {type_id}"));
    let end = html[start..].find('>').unwrap() + start;
    html[start..end].contains(" checked")
}

on_embedded_and_redis!(
    form_errors_are_the_form_again_with_what_was_typed_and_ticked,
    a_cancel_link_with_nothing_pending_says_so_and_has_no_button,
);

async fn form_errors_are_the_form_again_with_what_was_typed_and_ticked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let no_tick =
        "hosted_form=1&locale=en&types=blog-updates%2Cmarketing&email=ann%40example.com&website=";
    let response = app.post_form("/signup", no_tick).await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("id=\"types-error\">Choose at least one."),
        "{html}"
    );
    assert!(
        html.contains("value=\"ann@example.com\""),
        "the address is kept"
    );
    assert_eq!(
        html.matches("name=\"subscription_types\"").count(),
        2,
        "the same boxes"
    );
    assert!(html.contains("name=\"types\" value=\"blog-updates,marketing\""));

    let bad_address = "hosted_form=1&locale=nl&types=blog-updates%2Cmarketing&email=ann%40&subscription_types=marketing&website=";
    let response = app.post_form("/signup", bad_address).await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("lang=\"nl\""), "in the form's language");
    assert!(
        html.contains("aria-invalid=\"true\" aria-describedby=\"email-error\""),
        "{html}"
    );
    assert!(html.contains("id=\"email-error\">Dit is geen geldig e-mailadres."));
    assert!(html.contains("value=\"ann@\""));
    assert!(checked(&html, "marketing"), "the tick is kept");
    assert!(!checked(&html, "blog-updates"));
    assert!(!html.contains("types-error"));

    let nothing = app
        .post_form("/signup", "hosted_form=1&email=&website=")
        .await;
    assert_eq!(nothing.status(), 422);
    let html = nothing.text().await.unwrap();
    assert!(html.contains("Enter your email address."));
    assert!(html.contains("Choose at least one."));
    assert!(
        !html.contains("Something went wrong"),
        "never a bare error page"
    );

    // An operator's own form gets optin's form again, keeping its evidence fields.
    let own = "email=bob&subscription_types=blog-updates&form_id=footer&page_url=https%3A%2F%2Fshop.example%2F&website=";
    let response = app.post_form("/signup", own).await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("name=\"form_id\" value=\"footer\""));
    assert!(html.contains("name=\"page_url\" value=\"https://shop.example/\""));
    assert!(checked(&html, "blog-updates"));

    // A field the form sends once, sent twice: the form again, with what could be read.
    let twice = "hosted_form=1&email=cy%40example.com&email=dee%40example.com&subscription_types=blog-updates";
    let response = app.post_form("/signup", twice).await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("Something in the form was not right"));
    assert!(html.contains("value=\"cy@example.com\""));

    app.drain_outbox().await;
    assert!(app.smtp.messages().is_empty());
    for email in ["ann@example.com", "cy@example.com"] {
        assert_eq!(app.contact(email).await.status(), 404, "{email}");
    }
    let json = app
        .client
        .post(app.url("/signup"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 415, "not a form");
}

async fn a_cancel_link_with_nothing_pending_says_so_and_has_no_button(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.signup("ann@example.com", &["blog-updates"]).await;
    app.drain_outbox().await;
    let cancel = app.mails_to("ann@example.com")[0]
        .header("List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_string();
    let waiting = app.get_text(&cancel).await;
    assert!(waiting.contains("Cancel this signup?"), "{waiting}");
    assert!(waiting.contains("id=\"unsubscribe\""));

    app.confirm_mailed_link("ann@example.com").await;
    let page = app.client.get(&cancel).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Nothing is waiting to be cancelled"),
        "{html}"
    );
    assert!(
        !html.contains("<form") && !html.contains("<button"),
        "{html}"
    );
    let posted = app
        .client
        .post(&cancel)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("block=0")
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let html = posted.text().await.unwrap();
    assert!(
        html.contains("Nothing is waiting to be cancelled"),
        "{html}"
    );
    assert!(!html.contains("<button"));
    assert_eq!(
        app.status("ann@example.com", "blog-updates").await,
        "opted_in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_type_is_ticked_from_the_start() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let one = app.get_text(app.url("/signup?types=blog-updates")).await;
    assert!(checked(&one, "blog-updates"), "{one}");
    let two = app
        .get_text(app.url("/signup?types=blog-updates,marketing"))
        .await;
    assert!(!checked(&two, "blog-updates") && !checked(&two, "marketing"));
    let all = app.get_text(app.url("/signup")).await;
    assert!(!checked(&all, "blog-updates"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_and_the_pages_after_it_may_be_framed_by_the_allowed_origins_only() {
    let app = TestApp::spawn_with(Backend::Embedded, |settings| {
        settings.server.embed_allowed_origins = optin::config::StringList(vec![SHOP.into()]);
    })
    .await;
    assert_framed_by_shop(
        app.client.get(app.url("/signup")).send().await.unwrap(),
        "the form",
    )
    .await;
    let html = assert_framed_by_shop(
        app.post_form("/signup", "hosted_form=1&email=ann%40example.com&website=")
            .await,
        "the form again",
    )
    .await;
    assert!(html.contains("Choose at least one."));
    assert_framed_by_shop(
        app.post_form(
            "/signup",
            "hosted_form=1&email=ann%40gnail.com&subscription_types=blog-updates",
        )
        .await,
        "the typo question",
    )
    .await;
    let signup = app
        .post_form(
            "/signup",
            "hosted_form=1&email=ann%40example.com&subscription_types=blog-updates",
        )
        .await;
    assert_eq!(signup.status(), 303);
    assert_eq!(
        header(&signup, "x-frame-options"),
        None,
        "a redirect the frame follows"
    );
    let received = header(&signup, "location").unwrap();
    let html = assert_framed_by_shop(
        app.client.get(app.url(&received)).send().await.unwrap(),
        "check your inbox",
    )
    .await;
    let reference = html
        .split("name=\"ref\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let wrong = format!("ref={}&code=000000", urlencode(&reference));
    assert_framed_by_shop(
        app.post_form("/signup/received", &wrong).await,
        "a refused code",
    )
    .await;
    app.drain_outbox().await;
    let code = app.mails_to("ann@example.com")[0].confirmation_code();
    let right = format!("ref={}&code={code}", urlencode(&reference));
    let response = app.post_form("/signup/received", &right).await;
    assert_eq!(response.status(), 200);
    let html = assert_framed_by_shop(response, "the confirmed code").await;
    assert!(
        html.contains("target=\"_top\">Manage all subscriptions"),
        "the preferences open outside the frame"
    );

    // Every other page stays unframeable.
    let link = app.mails_to("ann@example.com")[0].confirmation_link();
    for (what, path) in [
        ("a confirmation link", link),
        ("the console", app.url("/admin/login")),
        ("an unknown page", app.url("/nope")),
    ] {
        assert_unframeable(app.client.get(&path).send().await.unwrap(), what).await;
    }

    let unlisted = TestApp::spawn(Backend::Embedded).await;
    for path in ["/signup", "/signup/received"] {
        let response = unlisted
            .client
            .get(unlisted.url(path))
            .send()
            .await
            .unwrap();
        assert_unframeable(response, path).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_thank_you_url_the_form_posts_to_the_top_window_which_lands_there() {
    let thanks = format!("{SHOP}/thanks");
    let app = TestApp::spawn_with(Backend::Embedded, {
        let thanks = thanks.clone();
        move |settings| {
            settings.server.embed_allowed_origins = optin::config::StringList(vec![SHOP.into()]);
            settings.server.thank_you_url = Some(thanks);
        }
    })
    .await;
    let form = app.client.get(app.url("/signup")).send().await.unwrap();
    let policy = header(&form, "content-security-policy").unwrap();
    assert!(
        policy.contains(&format!("form-action 'self' {SHOP};")),
        "{policy}"
    );
    let html = form.text().await.unwrap();
    assert!(html.contains("action=\"signup\" target=\"_top\""), "{html}");
    let response = app
        .post_form(
            "/signup",
            "hosted_form=1&email=ann%40example.com&subscription_types=blog-updates",
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        header(&response, "location").as_deref(),
        Some(thanks.as_str())
    );
    assert!(header(&response, "set-cookie")
        .unwrap()
        .starts_with("optin_bind="));
}
