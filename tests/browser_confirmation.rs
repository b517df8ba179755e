//! Confirmation in one step in real headless Chromium: the browser that signed up
//! confirms by opening the link; a fresh browser with JavaScript on, standing in for a
//! mail scanner, opens it and changes nothing until its button is pressed; the code
//! confirms from "check your inbox"; five wrong codes kill it; the funnel counts what
//! happened. One test in this binary, since it reads the process's metrics. The form
//! framed by another site is in `tests/browser_embedding.rs`.

mod support;

use std::time::Duration;

use support::app::{urlencode, Backend, TestApp, ADMIN_KEY};
use support::browser::{AxeReport, Browser};

const WAIT: Duration = Duration::from_secs(10);

/// The opt-in events' `confirm_method`s of a contact.
async fn confirm_methods(app: &TestApp, email: &str) -> Vec<String> {
    app.admin_get_json(&format!("/v1/contacts/{}/events", urlencode(email)))
        .await["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["to"] == "opted_in")
        .map(|e| e["confirm_method"].as_str().unwrap_or("none").to_string())
        .collect()
}

/// `optin_confirm_page_views_total{bound="…"}` as `/metrics` shows it now.
async fn page_views(app: &TestApp, bound: &str) -> u64 {
    let metrics = app.get_text(app.url("/metrics")).await;
    let series = format!("optin_confirm_page_views_total{{bound=\"{bound}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Signs up on the hosted form of one type (ticked from the start) and answers the URL
/// the browser landed on.
async fn sign_up_in(browser: &Browser, app: &TestApp, email: &str) -> String {
    browser.open(&app.url("/signup?types=blog-updates")).await;
    assert!(
        browser.is_checked("#type-blog-updates").await,
        "one type, ticked"
    );
    browser.type_into("#email", email).await;
    browser.submit("#subscribe").await;
    let landed = browser.current_url().await;
    assert!(landed.contains("/signup/received?"), "{landed}");
    landed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signup_browser_confirms_by_opening_the_link_and_a_scanner_changes_nothing() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let person = Browser::start().await;
    let mut axe = AxeReport::default();
    let (bound_before, unbound_before) = (
        page_views(&app, "true").await,
        page_views(&app, "false").await,
    );

    // The browser that signed up opens the link: that is all.
    sign_up_in(&person, &app, "same@example.com").await;
    app.drain_outbox().await;
    person
        .open(&app.confirmation_link("same@example.com"))
        .await;
    assert!(
        person.wait_for("ul.types", WAIT).await,
        "confirmed without a click"
    );
    assert!(person.page_text().await.contains("Blog updates"));
    axe.check(&person, "confirmed (same browser)").await;
    assert_eq!(
        app.status("same@example.com", "blog-updates").await,
        "opted_in"
    );
    assert_eq!(
        confirm_methods(&app, "same@example.com").await,
        ["same_browser"]
    );

    // A scanner: another browser, JavaScript on, opens the link and waits.
    sign_up_in(&person, &app, "scanned@example.com").await;
    app.drain_outbox().await;
    let scanner = Browser::start().await;
    scanner
        .open(&app.confirmation_link("scanned@example.com"))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(scanner.count("#confirm").await, 1, "still the button page");
    assert_eq!(scanner.count("ul.types").await, 0);
    assert!(scanner.current_url().await.contains("/confirm/"));
    assert_eq!(
        app.status("scanned@example.com", "blog-updates").await,
        "not_subscribed",
        "the scanner changed nothing"
    );
    axe.check(&scanner, "confirm (button)").await;
    scanner.submit("#confirm").await;
    assert_eq!(
        app.status("scanned@example.com", "blog-updates").await,
        "opted_in"
    );
    assert_eq!(
        confirm_methods(&app, "scanned@example.com").await,
        ["button"]
    );

    // The code from the mail, on "check your inbox".
    sign_up_in(&person, &app, "code@example.com").await;
    axe.check(&person, "signup_received (code field)").await;
    app.drain_outbox().await;
    let code = app.mails_to("code@example.com")[0].confirmation_code();
    person.type_into("#code", &code).await;
    person.submit("#confirm-code").await;
    assert!(person
        .page_text()
        .await
        .contains("Thank you for confirming"));
    assert_eq!(
        app.status("code@example.com", "blog-updates").await,
        "opted_in"
    );
    assert_eq!(confirm_methods(&app, "code@example.com").await, ["code"]);

    // Five wrong codes, and the right one no longer works.
    sign_up_in(&person, &app, "guessed@example.com").await;
    app.drain_outbox().await;
    let code = app.mails_to("guessed@example.com")[0].confirmation_code();
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    for attempt in 1..=5 {
        person.type_into("#code", &wrong).await;
        person.submit("#confirm-code").await;
        assert!(
            person
                .text_of("#code-error")
                .await
                .contains("That code did not work"),
            "wrong code {attempt}"
        );
    }
    axe.check(&person, "signup_received (code refused)").await;
    person.type_into("#code", &code).await;
    person.submit("#confirm-code").await;
    assert!(person
        .text_of("#code-error")
        .await
        .contains("That code did not work"));
    assert_eq!(
        app.status("guessed@example.com", "blog-updates").await,
        "not_subscribed"
    );

    assert_eq!(
        page_views(&app, "true").await - bound_before,
        1,
        "the signup browser's view"
    );
    assert_eq!(
        page_views(&app, "false").await - unbound_before,
        1,
        "the scanner's view"
    );

    // The funnel: four signups from the hosted form, three confirmed, one way each.
    let funnel = app.admin_get_json("/v1/stats/confirmations").await;
    let hosted = &funnel["by_source"]["hosted"];
    assert_eq!(hosted["requested"], 4, "{funnel}");
    assert_eq!(hosted["mailed"], 4);
    assert_eq!(hosted["reminded"], 0);
    assert_eq!(
        hosted["confirmed"],
        serde_json::json!({ "same_browser": 1, "button": 1, "code": 1 })
    );
    assert_eq!(hosted["expired"], 0);
    assert_eq!(hosted["cancelled"], 0);
    println!("funnel of the browser test: {funnel}");

    // The console draws the same numbers.
    scanner.open(&app.url("/admin/login")).await;
    scanner.type_into("#key", ADMIN_KEY).await;
    scanner.submit("#sign-in").await;
    scanner.open(&app.url("/admin/funnel")).await;
    assert_eq!(scanner.text_of("#funnel-hosted td.requested").await, "4");
    assert_eq!(scanner.text_of("#funnel-hosted td.confirmed").await, "3");
    assert_eq!(
        scanner.text_of("#funnel-hosted td.conversion").await,
        "75 %"
    );
    assert_eq!(
        scanner.count("#funnel-hosted svg rect").await,
        5,
        "requested, mailed, and confirmed in three colours; nothing reminded"
    );
    axe.check(&scanner, "admin_funnel").await;

    person.quit().await;
    scanner.quit().await;
    axe.assert_no_serious_violations();
}
