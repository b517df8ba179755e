//! The hosted form where it is put, in real headless Chromium: the form framed by a page
//! of another origin (`localhost` against the app's `127.0.0.1`, so another site too).
//! A post in the frame lands on "check your inbox" in the frame, the frame reports its
//! height and the page's three lines size it, the code confirms in the frame, a
//! cross-site frame binds no browser, and with a thank-you URL the top window lands
//! there and its link confirms at once.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use serde_json::Value;
use support::app::{urlencode, Backend, TestApp};
use support::browser::Browser;

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
