//! Confirmation in one step and the hosted form where it is put, in real headless
//! Chromium: the browser that signed up confirms by opening the link; a fresh browser
//! with JavaScript on, standing in for a mail scanner, opens it and changes nothing until
//! its button is pressed; the code confirms from "check your inbox"; five wrong codes
//! kill it; the funnel counts what happened. Then the form framed by a page of another
//! origin (`localhost` against the app's `127.0.0.1`, so another site too): a post in the
//! frame lands on "check your inbox" in the frame, the frame reports its height, and with
//! a thank-you URL the top window lands there.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use serde_json::Value;
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

/// Serves a site's pages by path from a thread that lives as long as the test; any other
/// path answers 404. Returns the port.
fn serve_site(listener: TcpListener, pages: HashMap<&'static str, String>) -> u16 {
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let read = stream.read(&mut request).unwrap_or(0);
            let head = String::from_utf8_lossy(&request[..read]);
            let path = head.split_whitespace().nth(1).unwrap_or("/");
            let path = path.split('?').next().unwrap_or(path);
            let (status, body) = match pages.get(path) {
                Some(html) => ("200 OK", html.clone()),
                None => ("404 Not Found", String::new()),
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    port
}

/// A page of the site that frames `form_url` with the three lines the docs give: it
/// listens for `optin:resize` from optin's origin and sets the frame's height. It also
/// keeps every message it got, for the test to read.
fn embedding_page(form_url: &str, optin_origin: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><title>Shop</title>
<h1>Our newsletter</h1>
<iframe id="optin" src="{form_url}" title="Subscribe" style="width:100%;border:0;height:200px"></iframe>
<script>
window.resizes = [];
window.addEventListener("message", function (e) {{
  if (e.origin === "{optin_origin}" && e.data && e.data.type === "optin:resize") {{
    document.getElementById("optin").style.height = e.data.height + "px";
    window.resizes.push({{ origin: e.origin, height: e.data.height }});
  }}
}});
</script>"#
    )
}

/// The resize messages the embedding page got so far.
async fn resizes(browser: &Browser) -> Vec<Value> {
    browser
        .eval("return window.resizes || [];")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn wait_for_resizes(browser: &Browser, more_than: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let seen = resizes(browser).await;
        if seen.len() > more_than || std::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_framed_by_another_site_lands_in_the_frame_reports_its_height_and_reaches_the_thank_you_page(
) {
    let site = TcpListener::bind("127.0.0.1:0").unwrap();
    let site_port = site.local_addr().unwrap().port();
    let site_origin = format!("http://localhost:{site_port}");
    let thanks = format!("{site_origin}/thanks");
    let app = TestApp::spawn_with(Backend::Embedded, {
        let site_origin = site_origin.clone();
        move |settings| {
            settings.server.embed_allowed_origins = optin::config::StringList(vec![site_origin]);
        }
    })
    .await;
    let thanking_app = TestApp::spawn_with(Backend::Embedded, {
        let (site_origin, thanks) = (site_origin.clone(), thanks.clone());
        move |settings| {
            settings.server.embed_allowed_origins = optin::config::StringList(vec![site_origin]);
            settings.server.thank_you_url = Some(thanks);
        }
    })
    .await;
    let pages = HashMap::from([
        (
            "/",
            embedding_page(&app.url("/signup?types=blog-updates"), &app.address),
        ),
        (
            "/thanking",
            embedding_page(
                &thanking_app.url("/signup?types=blog-updates"),
                &thanking_app.address,
            ),
        ),
        (
            "/thanks",
            "<!doctype html><title>Thanks</title><h1 id=\"thanks\">Thank you</h1>".to_string(),
        ),
    ]);
    serve_site(site, pages);
    let browser = Browser::start().await;

    // Without a thank-you URL: the frame shows "check your inbox", and tells its height.
    browser.open(&format!("{site_origin}/")).await;
    let first = wait_for_resizes(&browser, 0).await;
    assert!(!first.is_empty(), "the form told the page its height");
    assert_eq!(first[0]["origin"], app.address.as_str());
    assert!(first[0]["height"].as_u64().unwrap() > 200, "{first:?}");
    browser.enter_frame(0).await;
    browser.type_into("#email", "framed@example.com").await;
    browser.submit("#subscribe").await;
    let in_frame = browser.eval("return location.href;").await;
    let in_frame = in_frame.as_str().unwrap();
    assert!(
        in_frame.contains("/signup/received?") && in_frame.contains("ref="),
        "{in_frame}"
    );
    assert_eq!(
        browser.count("#code").await,
        1,
        "the code field, in the frame"
    );
    browser.leave_frame().await;
    assert_eq!(browser.current_url().await, format!("{site_origin}/"));
    let after = wait_for_resizes(&browser, first.len()).await;
    assert!(
        after.len() > first.len(),
        "the received page told its height too"
    );
    let sized = browser
        .eval(
            "return [document.getElementById('optin').style.height, \
             window.resizes[window.resizes.length - 1].height + 'px'];",
        )
        .await;
    assert_eq!(sized[0], sized[1], "the snippet sized the frame: {sized}");

    // The code, entered in the frame.
    app.drain_outbox().await;
    let code = app.mails_to("framed@example.com")[0].confirmation_code();
    browser.enter_frame(0).await;
    browser.type_into("#code", &code).await;
    browser.submit("#confirm-code").await;
    assert!(browser
        .page_text()
        .await
        .contains("Thank you for confirming"));
    browser.leave_frame().await;
    assert_eq!(
        app.status("framed@example.com", "blog-updates").await,
        "opted_in"
    );

    // A frame of another site gets no binding (SameSite=Lax): its link shows the button.
    browser.open(&format!("{site_origin}/")).await;
    assert!(!wait_for_resizes(&browser, 0).await.is_empty());
    browser.enter_frame(0).await;
    browser.type_into("#email", "framed.link@example.com").await;
    browser.submit("#subscribe").await;
    browser.leave_frame().await;
    app.drain_outbox().await;
    browser
        .open(&app.confirmation_link("framed.link@example.com"))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bound_in_frame = browser.count("ul.types").await > 0;
    println!("a signup made in a cross-site frame binds the browser: {bound_in_frame}");
    assert!(
        !bound_in_frame,
        "Chromium keeps a Lax cookie out of a cross-site frame"
    );
    assert_eq!(browser.count("#confirm").await, 1);

    // With a thank-you URL, the form posts to the top window, which lands there; that
    // post is the browser's own, so its binding is kept and the link confirms at once.
    browser.open(&format!("{site_origin}/thanking")).await;
    assert!(!wait_for_resizes(&browser, 0).await.is_empty());
    browser.enter_frame(0).await;
    browser.type_into("#email", "thanked@example.com").await;
    browser.click("#subscribe").await;
    browser.to_top().await;
    let deadline = std::time::Instant::now() + WAIT;
    while browser.current_url().await != thanks {
        assert!(
            std::time::Instant::now() < deadline,
            "the top window did not reach {thanks}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(browser.wait_for("#thanks", WAIT).await);
    thanking_app.drain_outbox().await;
    browser
        .open(&thanking_app.confirmation_link("thanked@example.com"))
        .await;
    assert!(
        browser.wait_for("ul.types", WAIT).await,
        "confirmed by opening the link"
    );
    assert_eq!(
        confirm_methods(&thanking_app, "thanked@example.com").await,
        ["same_browser"]
    );
    browser.quit().await;
}
