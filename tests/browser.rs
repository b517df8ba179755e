//! The pages in a real headless Chromium: confirm by clicking the button, change two types
//! in the preference center, and unsubscribe with the page's button. Leaves a screenshot
//! of the preference center in `target/screenshots/`.

mod support;

use support::app::{Backend, TestApp};
use support::browser::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_confirms_manages_preferences_and_unsubscribes_in_a_real_browser() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let browser = Browser::start().await;

    app.signup("browser@example.com", &["blog-updates"]).await;
    app.drain_outbox().await;
    browser
        .open(&app.confirmation_link("browser@example.com"))
        .await;
    assert_eq!(
        app.status("browser@example.com", "blog-updates").await,
        "not_subscribed",
        "opening the page changes nothing"
    );
    browser.submit("#confirm").await;
    assert_eq!(
        app.status("browser@example.com", "blog-updates").await,
        "opted_in"
    );
    assert!(
        browser.page_text().await.contains("Blog updates"),
        "the confirmed page names the type"
    );

    browser
        .open(&app.preferences_link("browser@example.com"))
        .await;
    assert!(browser.is_checked("#type-blog-updates").await);
    assert!(!browser.is_checked("#type-marketing").await);
    browser.click("label[for=type-marketing]").await;
    browser.click("label[for=type-blog-updates]").await;
    let screenshot =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/preferences.png");
    browser.screenshot(&screenshot).await;
    browser.submit("#save").await;
    assert_eq!(
        app.status("browser@example.com", "marketing").await,
        "opted_in"
    );
    assert_eq!(
        app.status("browser@example.com", "blog-updates").await,
        "unsubscribed"
    );
    assert!(
        browser.is_checked("#type-marketing").await,
        "the saved page shows the new state"
    );
    assert!(
        std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 1000),
        "a screenshot was saved"
    );

    let unsubscribe = app
        .unsubscribe_link("browser@example.com", "marketing")
        .await;
    browser.open(&unsubscribe).await;
    assert_eq!(
        app.status("browser@example.com", "marketing").await,
        "opted_in"
    );
    browser.submit("#unsubscribe").await;
    assert_eq!(
        app.status("browser@example.com", "marketing").await,
        "unsubscribed"
    );
    assert!(
        browser.current_url().await.contains("/unsubscribe/"),
        "no redirect after the POST"
    );
    browser.quit().await;
}
