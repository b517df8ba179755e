//! The hosted signup form and the admin console in a real headless Chromium, and axe-core
//! on every page optin serves (the existing ones too): no violation of impact serious or
//! critical. Leaves screenshots of the signup form, a contact page and the stats page in
//! `target/screenshots/`.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::app::{urlencode, Backend, TestApp, ADMIN_KEY};
use support::browser::{AxeReport, Browser};
use support::smtp_sink::Rejection;
use support::webhook_receiver::{Answer, WebhookReceiver};

fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/screenshots")
        .join(name)
}

async fn events(app: &TestApp, email: &str) -> serde_json::Value {
    app.admin_get_json(&format!("/v1/contacts/{}/events", urlencode(email)))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_up_on_the_hosted_form_and_the_recorded_notice_is_the_one_shown() {
    const EMAIL: &str = "form@example.com";
    let app = TestApp::spawn(Backend::Embedded).await;
    let browser = Browser::start().await;
    let mut axe = AxeReport::default();

    browser.open(&app.url("/signup")).await;
    axe.check(&browser, "signup (all types)").await;
    browser.type_into("#email", EMAIL).await;
    browser.click("label[for=type-blog-updates]").await;
    browser.click("label[for=type-event-info]").await;
    let shown_blog = browser.text_of("#notice-blog-updates").await;
    let shown_events = browser.text_of("#notice-event-info").await;
    browser.screenshot(&screenshot_path("signup.png")).await;
    browser.submit("#subscribe").await;
    let received = browser.current_url().await;
    assert!(
        received.contains("/signup/received?") && received.contains("ref="),
        "{received}"
    );
    axe.check(&browser, "signup_received").await;

    app.drain_outbox().await;
    // The browser that signed up: the confirmation page submits itself.
    browser.open(&app.confirmation_link(EMAIL)).await;
    assert!(
        browser.wait_for("ul.types", Duration::from_secs(10)).await,
        "the confirmed page"
    );
    axe.check(&browser, "confirmed").await;
    assert_eq!(app.status(EMAIL, "blog-updates").await, "opted_in");
    assert_eq!(app.status(EMAIL, "event-info").await, "opted_in");
    assert_eq!(app.status(EMAIL, "marketing").await, "not_subscribed");

    let events = events(&app, EMAIL).await;
    for (type_id, shown) in [("blog-updates", &shown_blog), ("event-info", &shown_events)] {
        let event = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == type_id && e["to"] == "opted_in")
            .unwrap_or_else(|| panic!("an opt-in event for {type_id}"));
        assert_eq!(
            event["consent_notice"]["sha256"],
            hex::encode(Sha256::digest(shown.as_bytes())),
            "{type_id}: the recorded hash is the SHA-256 of the text the page showed"
        );
        assert_eq!(event["signup"]["source"], "signup_form");
    }

    browser
        .open(&app.url("/signup?types=marketing&locale=nl"))
        .await;
    assert!(browser.page_text().await.contains("Aanmelden"));
    axe.check(&browser, "signup (nl, one type)").await;
    browser.quit().await;
    axe.assert_no_serious_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_finds_exports_and_erases_a_contact_in_the_console() {
    const EMAIL: &str = "subject@example.com";
    let app = TestApp::spawn(Backend::Embedded).await;
    app.subscribe_confirmed(EMAIL, &["blog-updates", "marketing"])
        .await;
    app.subscribe_confirmed("other@example.com", &["job-alerts"])
        .await;
    let browser = Browser::start().await;
    let mut axe = AxeReport::default();

    browser.open(&app.url("/admin")).await;
    assert!(browser.current_url().await.ends_with("/admin/login"));
    axe.check(&browser, "admin_login").await;
    browser.type_into("#key", "wrong").await;
    browser.submit("#sign-in").await;
    axe.check(&browser, "admin_login (refused)").await;
    browser.type_into("#key", ADMIN_KEY).await;
    browser.submit("#sign-in").await;
    assert!(browser.current_url().await.ends_with("/admin"));
    axe.check(&browser, "admin_search").await;

    browser.type_into("#email", EMAIL).await;
    browser.submit("#search").await;
    let contact_url = browser.current_url().await;
    assert!(contact_url.contains("/admin/contacts/"), "{contact_url}");
    assert!(!contact_url.contains('@') && !contact_url.contains("%40"));
    assert_eq!(browser.text_of("#contact-email").await, EMAIL);
    assert!(browser.text_of("#timeline").await.contains("confirm_link"));
    assert!(browser
        .text_of("#chain-verdict")
        .await
        .contains("The hash chain verifies"));
    axe.check(&browser, "admin_contact").await;
    browser
        .screenshot(&screenshot_path("admin-contact.png"))
        .await;

    browser.click("#export").await;
    let export: serde_json::Value =
        serde_json::from_slice(&browser.downloaded("optin-export.json").await).unwrap();
    assert_eq!(export["contact"]["email"], EMAIL);
    assert_eq!(export["chain_valid"], true);

    browser.submit("#restrict").await;
    assert!(browser
        .text_of("#restriction")
        .await
        .contains("Restricted since"));
    axe.check(&browser, "admin_contact (after an action)").await;
    assert_eq!(app.contact_json(EMAIL).await["restricted"], true);

    browser.open(&app.url("/admin/stats")).await;
    axe.check(&browser, "admin_stats").await;
    browser
        .screenshot(&screenshot_path("admin-stats.png"))
        .await;
    browser.open(&app.url("/admin/deliveries")).await;
    axe.check(&browser, "admin_deliveries").await;

    browser.open(&contact_url).await;
    browser.submit("#erase").await;
    axe.check(&browser, "admin_erase").await;
    assert_eq!(
        app.contact(EMAIL).await.status(),
        200,
        "asking changes nothing"
    );
    browser.submit("#erase-confirm").await;
    assert!(browser.current_url().await.ends_with("/admin?done=erased"));
    assert!(browser
        .page_text()
        .await
        .contains("The contact has been erased"));
    assert_eq!(
        app.contact(EMAIL).await.status(),
        404,
        "the contact is gone"
    );
    let gone = events(&app, "other@example.com").await;
    assert_eq!(gone["chain_valid"], true, "the other contact is untouched");

    browser.type_into("#email", EMAIL).await;
    browser.submit("#search").await;
    assert!(browser.page_text().await.contains("We hold nothing"));
    axe.check(&browser, "admin_search (not found)").await;
    browser.submit("#logout").await;
    assert!(browser.current_url().await.ends_with("/admin/login"));
    browser.open(&app.url("/admin/stats")).await;
    assert!(
        browser.current_url().await.ends_with("/admin/login"),
        "signed out"
    );
    browser.quit().await;
    axe.assert_no_serious_violations();
}

/// The pages that existed before the console: each in a real browser, through axe-core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_public_page_passes_axe() {
    const EMAIL: &str = "pages@example.com";
    let app = TestApp::spawn(Backend::Embedded).await;
    app.subscribe_confirmed(EMAIL, &["blog-updates"]).await;
    let browser = Browser::start().await;

    // The checker itself: a page with an image without text must fail it.
    browser
        .open("data:text/html,<!doctype html><html lang=en><title>t</title><img src=x.png>")
        .await;
    let violations = browser.axe().await;
    assert!(
        violations
            .iter()
            .any(|v| v.id == "image-alt" && v.is_serious()),
        "axe-core reports a missing alt text: {violations:?}"
    );

    let mut axe = AxeReport::default();
    browser.open(&app.url("/")).await;
    axe.check(&browser, "home").await;
    // Follows the link and waits for the form to load.
    browser.submit("#signup").await;
    assert!(browser.current_url().await.ends_with("/signup"));
    browser.open(&app.url("/no-such-page")).await;
    axe.check(&browser, "error (404)").await;
    browser.open(&app.url("/confirm/forged.token")).await;
    axe.check(&browser, "link_invalid").await;

    browser
        .open(&app.unsubscribe_link(EMAIL, "blog-updates").await)
        .await;
    axe.check(&browser, "unsubscribe").await;
    browser.submit("#unsubscribe").await;
    axe.check(&browser, "unsubscribed").await;

    let manage = app.eligibility(EMAIL, "blog-updates").await["manage_preferences_url"]
        .as_str()
        .unwrap()
        .to_string();
    browser.open(&manage).await;
    axe.check(&browser, "manage").await;
    browser.submit("#mail-preferences-link").await;
    axe.check(&browser, "link_sent").await;

    browser.open(&app.preferences_link(EMAIL)).await;
    axe.check(&browser, "preferences").await;
    browser.submit("#save").await;
    axe.check(&browser, "preferences (saved)").await;
    browser.submit("#erase").await;
    axe.check(&browser, "erase_confirm").await;
    browser.submit("#erase-confirm").await;
    axe.check(&browser, "erased").await;
    assert_eq!(app.contact(EMAIL).await.status(), 404);
    browser.quit().await;
    axe.assert_no_serious_violations();
}

/// Serves `html` to every request on `listener`, from a thread that lives as long as the
/// test: the page of a site that frames the form. Returns the port.
fn serve_page_on(listener: TcpListener, html: String) -> u16 {
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                html.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    port
}

fn serve_page(html: String) -> u16 {
    serve_page_on(TcpListener::bind("127.0.0.1:0").expect("a free port"), html)
}

/// A site's page that frames the app's signup form and, as a second frame, its console
/// sign-in.
fn framing_page(app: &TestApp) -> String {
    format!(
        "<!doctype html><html lang=en><title>Shop</title>\
         <iframe title=signup src=\"{}\"></iframe><iframe title=console src=\"{}\"></iframe>",
        app.url("/signup"),
        app.url("/admin/login")
    )
}

/// Opens the page of the site on `site_port` (origin `http://localhost:PORT`, not the
/// app's `http://127.0.0.1:PORT`) and answers whether `css` showed up inside its frame
/// `frame` within 3 seconds.
async fn shows_in_frame(browser: &Browser, site_port: u16, frame: u16, css: &str) -> bool {
    browser
        .open(&format!("http://localhost:{site_port}/"))
        .await;
    assert_eq!(browser.count("iframe").await, 2, "the site's page loaded");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        browser.enter_frame(frame).await;
        let found = browser.count(css).await == 1;
        browser.leave_frame().await;
        if found || Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_shows_in_an_iframe_only_on_an_allowed_site() {
    // The allowed site's port is bound first, so that the app can be configured with it.
    let site = TcpListener::bind("127.0.0.1:0").unwrap();
    let site_port = site.local_addr().unwrap().port();
    let app = TestApp::spawn_with(Backend::Embedded, move |settings| {
        settings.server.embed_allowed_origins =
            optin::config::StringList(vec![format!("http://localhost:{site_port}")]);
    })
    .await;
    let other_app = TestApp::spawn(Backend::Embedded).await;
    let browser = Browser::start().await;

    let allowed = serve_page_on(site, framing_page(&app));
    assert!(
        shows_in_frame(&browser, allowed, 0, "#email").await,
        "the allowed origin shows the form"
    );
    assert!(
        !shows_in_frame(&browser, allowed, 1, "#key").await,
        "the allowed origin may frame the form only, not the console"
    );
    let unlisted = serve_page(framing_page(&other_app));
    assert!(
        !shows_in_frame(&browser, unlisted, 0, "#email").await,
        "without embed_allowed_origins the form is not framed"
    );
    browser.quit().await;
}

/// The renewal link's page before and after its button, and the console's record of
/// processing, through axe-core in a real browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_renewal_page_and_the_record_of_processing_pass_axe() {
    const EMAIL: &str = "renew@example.com";
    let app = TestApp::spawn_with(Backend::Embedded, |settings| {
        let blog = settings
            .subscription_types
            .iter_mut()
            .find(|t| t.id.as_str() == "blog-updates")
            .unwrap();
        blog.consent_valid_days = Some(60);
    })
    .await;
    app.subscribe_confirmed(EMAIL, &["blog-updates"]).await;
    app.advance_clock(chrono::Duration::days(31));
    assert_eq!(app.sweep_consent().await.renewals_asked, 1);
    app.drain_outbox().await;
    let renew = app
        .mails_to(EMAIL)
        .last()
        .unwrap()
        .links()
        .into_iter()
        .find(|l| l.contains("/renew/"))
        .expect("a renewal link");
    let browser = Browser::start().await;
    let mut axe = AxeReport::default();
    browser.open(&renew).await;
    axe.check(&browser, "renew").await;
    browser.submit("#renew").await;
    axe.check(&browser, "renew (renewed)").await;
    let events = events(&app, EMAIL).await;
    assert_eq!(
        events["events"].as_array().unwrap().last().unwrap()["kind"],
        "consent_renewed"
    );

    browser.open(&app.url("/admin")).await;
    browser.type_into("#key", ADMIN_KEY).await;
    browser.submit("#sign-in").await;
    browser.open(&app.url("/admin/processing-record")).await;
    assert!(browser
        .text_of("#record")
        .await
        .contains("consent (Art. 6(1)(a)): 1 contacts"));
    axe.check(&browser, "admin_record").await;
    browser.quit().await;
    axe.assert_no_serious_violations();
}

/// Fails naming the page when it is wider than its 375 px viewport.
async fn assert_fits_a_phone(browser: &Browser, page: &str) {
    let (viewport, width, past) = browser.widths().await;
    assert_eq!(viewport, 375, "{page}: the viewport");
    assert!(
        width <= 375,
        "{page} scrolls sideways: {width} px wide; reaching past the viewport: {past:?}"
    );
}

/// Every console page on a phone, in Dutch: nothing scrolls sideways at 375 px (wide
/// tables scroll inside their own box), the timeline's codes never break inside a word,
/// types are named by their Dutch names, and the session is "Inloggen", "Ingelogd als"
/// and "Uitloggen" (never the words for subscribing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_fits_a_375_px_screen_and_its_dutch_signs_in_and_out() {
    const LONG: &str = "a.rather.long.address.for.a.small.screen@subdomain.example.com";
    let receiver = WebhookReceiver::start().await;
    receiver.answer(Answer::Status(410));
    let hook = receiver.url("/hook");
    let app = TestApp::spawn_with(Backend::Embedded, move |settings| {
        settings.webhooks.endpoints = vec![optin::webhooks::EndpointSettings {
            id: "crm".into(),
            url: hook,
            secret: secrecy::SecretString::from(
                optin::webhooks::signature::SigningKey::generate().unwrap(),
            ),
            events: None,
            subscription_types: None,
        }];
    })
    .await;
    app.subscribe_confirmed(LONG, &["blog-updates", "event-info"])
        .await;
    // A long timeline, with an explanation in words and evidence without any space.
    for (status, basis) in [
        ("unsubscribed", None),
        ("opted_in", Some("consent")),
        ("unsubscribed", None),
        ("opted_in", Some("consent")),
    ] {
        let response = app
            .admin(
                reqwest::Method::PUT,
                &format!("/v1/contacts/{}/subscriptions/event-info", urlencode(LONG)),
            )
            .await
            .json(&serde_json::json!({
                "status": status,
                "lawful_basis": basis,
                "explanation": "Asked on the phone to the support desk, who wrote it down in the ticket",
                "consent_evidence": basis.map(|_| format!("https://crm.example.com/tickets/{}/call-recording.mp3", "0".repeat(80))),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{status}");
    }
    // A dead letter: a confirmation mail the server refuses for good.
    app.smtp.set_rejecting(Rejection::Permanent);
    assert_eq!(
        app.signup("refused@example.com", &["marketing"])
            .await
            .status(),
        202
    );
    app.drain_outbox().await;
    app.smtp.set_accepting();
    assert_eq!(
        app.admin_get_json("/v1/outbox/dead").await["dead_letters"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let browser = Browser::start_with_language("nl").await;
    browser.resize(375, 800).await;
    browser.open(&app.url("/admin/")).await;
    assert!(browser.current_url().await.ends_with("/admin/login"));
    assert_fits_a_phone(&browser, "inloggen").await;
    assert_eq!(browser.text_of("h1").await, "Inloggen bij het beheer");
    assert_eq!(browser.text_of("#sign-in").await, "Inloggen");
    browser.type_into("#key", ADMIN_KEY).await;
    browser.submit("#sign-in").await;
    assert!(browser.current_url().await.ends_with("/admin"));
    let nav = browser.text_of("nav.console").await;
    assert!(nav.contains("Ingelogd als admin-test"), "{nav}");
    assert_eq!(browser.text_of("#logout").await, "Uitloggen");
    for subscribing in ["Aanmelden", "Afmelden", "Aangemeld"] {
        assert!(!nav.contains(subscribing), "{nav}");
    }
    assert_fits_a_phone(&browser, "zoeken").await;

    browser.type_into("#email", LONG).await;
    browser.submit("#search").await;
    let contact = browser.current_url().await;
    assert!(contact.contains("/admin/contacts/"), "{contact}");
    assert_fits_a_phone(&browser, "contact").await;
    let timeline = browser.text_of("#timeline").await;
    assert!(
        timeline.contains("status_changed · Evenementinformatie"),
        "{timeline}"
    );
    assert!(!timeline.contains("· event-info"), "{timeline}");
    assert!(browser.count("#timeline tbody tr").await >= 6);
    let broken = browser
        .eval(
            "return [...document.querySelectorAll('#timeline td code:not(.long)')]
               .filter(code => code.getClientRects().length > 1)
               .map(code => code.textContent);",
        )
        .await;
    assert_eq!(broken, serde_json::json!([]), "codes broken inside a word");
    assert!(browser.count("#timeline td code:not(.long)").await >= 12);
    let styles = browser
        .eval(
            "const cell = document.querySelector('#timeline td:nth-child(2)');
             const code = cell.querySelector('code');
             const style = getComputedStyle(code);
             return [getComputedStyle(cell).wordBreak, style.whiteSpace, style.overflowWrap];",
        )
        .await;
    assert_eq!(styles, serde_json::json!(["normal", "nowrap", "normal"]));
    let types = browser.text_of("#subscriptions").await;
    assert!(types.contains("Blogupdates"), "{types}");
    assert!(!types.contains("blog-updates"), "{types}");

    browser.open(&format!("{contact}/erase")).await;
    assert_fits_a_phone(&browser, "wissen").await;
    browser.open(&app.url("/admin/stats")).await;
    assert_fits_a_phone(&browser, "statistieken").await;
    assert!(browser
        .text_of("#types-table")
        .await
        .contains("Evenementinformatie"));
    browser.open(&app.url("/admin/deliveries")).await;
    assert_eq!(browser.count("#dead-letters tbody tr").await, 1);
    assert_eq!(browser.count("#webhooks tbody tr").await, 1);
    assert_fits_a_phone(&browser, "bezorging").await;
    browser.open(&app.url("/")).await;
    assert_fits_a_phone(&browser, "/").await;
    browser.open(&app.url("/admin")).await;
    browser.submit("#logout").await;
    assert!(browser.current_url().await.ends_with("/admin/login"));
    browser.quit().await;
}

/// The pictures in the documentation, 1280 px wide, in English: the signup form, the
/// preference center and a contact in the console. Not part of a test run (it writes
/// into docs/images/); `scripts/screenshots.sh` runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/images/; run scripts/screenshots.sh"]
async fn docs_screenshots() {
    const EMAIL: &str = "ada@example.com";
    const WIDTH: u32 = 1280;
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/images");
    let app = TestApp::spawn(Backend::Embedded).await;
    app.subscribe_confirmed(EMAIL, &["blog-updates", "event-info"])
        .await;
    let response = app
        .admin(
            reqwest::Method::PUT,
            &format!("/v1/contacts/{}/subscriptions/job-alerts", urlencode(EMAIL)),
        )
        .await
        .json(&serde_json::json!({
            "status": "opted_in",
            "lawful_basis": "consent",
            "explanation": "Asked for job alerts at the careers fair",
            "consent_evidence": "Signed paper form, box 12",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let browser = Browser::start().await;

    browser.open(&app.url("/signup")).await;
    browser.click("label[for=type-blog-updates]").await;
    browser
        .screenshot_page(WIDTH, &images.join("signup.png"))
        .await;

    browser.open(&app.preferences_link(EMAIL)).await;
    browser
        .screenshot_page(WIDTH, &images.join("preferences.png"))
        .await;

    browser.open(&app.url("/admin/login")).await;
    browser.type_into("#key", ADMIN_KEY).await;
    browser.submit("#sign-in").await;
    browser.type_into("#email", EMAIL).await;
    browser.submit("#search").await;
    assert_eq!(browser.text_of("#contact-email").await, EMAIL);
    browser
        .screenshot_page(WIDTH, &images.join("console-contact.png"))
        .await;
    browser.quit().await;
    for name in ["signup.png", "preferences.png", "console-contact.png"] {
        let png = std::fs::read(images.join(name)).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{name}");
        // The IHDR chunk holds the width, big-endian, at bytes 16..20.
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert_eq!(width, WIDTH, "{name}");
    }
}
