//! Real headless Chromium, driven over WebDriver by Debian's `chromedriver` through the
//! `fantoccini` client. This file only starts and stops chromedriver and wraps the few
//! steps the tests need (open, click, type, submit, read, screenshot, an axe-core check)
//! so they stay one line each.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::NewSessionError;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub struct Browser {
    driver: Child,
    client: Client,
    _profile: tempfile::TempDir,
    downloads: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session. Panics with a clear message
    /// when either is missing: the README's test command installs them.
    pub async fn start() -> Browser {
        Self::start_with_language("en-US,en").await
    }

    /// As [`Self::start`], with a browser that asks for pages in `languages` (its
    /// `Accept-Language`, such as `nl`).
    pub async fn start_with_language(languages: &str) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromedriver ({e}); run the README's test command, which installs chromium-driver"));
        let profile = tempfile::tempdir().expect("a profile folder");
        let downloads = tempfile::tempdir().expect("a downloads folder");
        let options = json!({
            "prefs": {
                "download.default_directory": downloads.path().display().to_string(),
                "download.prompt_for_download": false,
                "intl.accept_languages": languages,
            },
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1000,1400",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        // chromedriver speaks plain HTTP on loopback, so the connector needs no TLS.
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(15);
        let client = loop {
            match builder.connect(&url).await {
                Ok(client) => break client,
                // Not listening yet: chromedriver takes a moment to bind its port.
                Err(NewSessionError::Failed(_) | NewSessionError::FailedC(_))
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromium did not start under chromedriver: {e}"),
            }
        };
        Browser {
            driver,
            client,
            _profile: profile,
            downloads,
        }
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Clicks a submit button and waits until the page it posts to has loaded: the
    /// document element changes and the new document is complete. Bounded to 10 s.
    pub async fn submit(&self, css: &str) {
        let old_document = self.find("html").await.element_id();
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Mid-navigation, both reads may fail for a moment: that is "not loaded yet".
            let state = self
                .client
                .execute("return document.readyState", vec![])
                .await
                .ok();
            let document = self.client.find(Locator::Css("html")).await.ok();
            if document.is_some_and(|d| d.element_id() != old_document)
                && state == Some(json!("complete"))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page after clicking {css} did not load within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until an element matches `css`, bounded to `within`: for pages that move on
    /// by themselves. Answers whether it showed up.
    pub async fn wait_for(&self, css: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.count(css).await > 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Switches into the page's `index`th frame; [`Self::leave_frame`] switches back.
    pub async fn enter_frame(&self, index: u16) {
        self.client
            .enter_frame(index)
            .await
            .unwrap_or_else(|e| panic!("cannot enter frame {index}: {e}"));
    }

    /// Back to the top of the window, wherever the current frame went.
    pub async fn to_top(&self) {
        let window = self.client.window().await.expect("the current window");
        self.client
            .switch_to_window(window)
            .await
            .expect("the top of the window");
    }

    pub async fn leave_frame(&self) {
        self.client
            .enter_parent_frame()
            .await
            .expect("back to the parent frame");
    }

    /// Runs a script in the page and answers what it returns (`return …;`).
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("the script failed: {e}"))
    }

    /// How many elements match, now.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |found| found.len())
    }

    /// Types into a field, as a person would.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.find(css)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
    }

    /// The rendered text of one element.
    pub async fn text_of(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("cannot read {css}: {e}"))
    }

    /// The file the browser downloaded, once it is complete; bounded to 10 s.
    pub async fn downloaded(&self, name: &str) -> Vec<u8> {
        let path = self.downloads.path().join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(bytes) = std::fs::read(&path) {
                if !bytes.is_empty() {
                    return bytes;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name} was not downloaded within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs axe-core (installed from npm by `tests/axe/install.sh`) on the open page and
    /// returns its violations. The script is injected through WebDriver, so the pages
    /// themselves need no script and keep their CSP.
    pub async fn axe(&self) -> Vec<AxeViolation> {
        let source = axe_source();
        self.client
            .execute(&source, vec![])
            .await
            .expect("axe-core loads into the page");
        let result = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                axe.run(document, { resultTypes: ["violations"] })
                  .then(r => done(r.violations.map(v => ({
                      id: v.id, impact: v.impact, help: v.help,
                      targets: v.nodes.map(n => n.target.join(" ")) }))))
                  .catch(e => done({ error: String(e) }));"#,
                vec![],
            )
            .await
            .expect("axe-core runs");
        serde_json::from_value(result.clone())
            .unwrap_or_else(|e| panic!("axe-core answered {result}: {e}"))
    }

    pub async fn is_checked(&self, css: &str) -> bool {
        self.find(css)
            .await
            .is_selected()
            .await
            .unwrap_or_else(|e| panic!("cannot read the state of {css}: {e}"))
    }

    pub async fn page_text(&self) -> String {
        self.find("body").await.text().await.expect("the page text")
    }

    pub async fn current_url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the current URL")
            .to_string()
    }

    /// Gives the page a viewport `width` by `height` CSS pixels; headless Chromium has no
    /// window decorations, so the window's size is the viewport's.
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("cannot resize the window to {width}x{height}: {e}"));
    }

    /// The viewport's width and the page's: a page wider than its viewport scrolls
    /// sideways. With the elements that reach past the viewport, to name in a failure.
    pub async fn widths(&self) -> (u64, u64, Vec<String>) {
        let answer = self
            .eval(
                "const page = document.documentElement;
                 const past = [...document.body.querySelectorAll('*')]
                   .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                   .slice(0, 5)
                   .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : ''));
                 return [window.innerWidth, page.scrollWidth, past];",
            )
            .await;
        let number = |i: usize| answer[i].as_u64().expect("a width");
        let past = answer[2]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|name| name.as_str().map(str::to_string))
            .collect();
        (number(0), number(1), past)
    }

    /// Saves a PNG of the whole page at `width` CSS pixels: the viewport is made as tall
    /// as the page first (up to 6000 pixels). The window's height holds more than the
    /// viewport's (headless Chromium still counts a toolbar), so that difference is added.
    pub async fn screenshot_page(&self, width: u32, path: &std::path::Path) {
        const FIRST: u32 = 800;
        self.resize(width, FIRST).await;
        let sizes = self
            .eval("return [window.innerHeight, document.documentElement.scrollHeight]")
            .await;
        let size = |i: usize| {
            sizes[i]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .expect("a height")
        };
        let toolbar = FIRST.saturating_sub(size(0));
        self.resize(width, size(1).min(6000) + toolbar).await;
        self.screenshot(path).await;
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.expect("a screenshot");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("screenshot written");
    }

    pub async fn quit(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// One rule that a page breaks, as axe-core reports it.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct AxeViolation {
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    pub help: String,
    pub targets: Vec<String>,
}

impl AxeViolation {
    pub fn is_serious(&self) -> bool {
        matches!(self.impact.as_deref(), Some("serious" | "critical"))
    }
}

/// axe-core's source, installed once per target folder by `tests/axe/install.sh`.
fn axe_source() -> String {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let script =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/axe/install.sh");
            let output = Command::new("bash")
                .arg(&script)
                .stderr(Stdio::inherit())
                .output()
                .expect("run tests/axe/install.sh");
            assert!(
                output.status.success(),
                "tests/axe/install.sh could not install axe-core (is npm installed?)"
            );
            let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
        })
        .clone()
}

/// Collects axe-core results page by page, prints them, and fails at the end when any
/// page has a violation of impact serious or critical.
#[derive(Default)]
pub struct AxeReport {
    pages: Vec<(String, Vec<AxeViolation>)>,
}

impl AxeReport {
    /// Checks the page open in `browser`, recorded under `name`.
    pub async fn check(&mut self, browser: &Browser, name: &str) {
        let violations = browser.axe().await;
        let summary: Vec<String> = violations
            .iter()
            .map(|v| format!("{} ({})", v.id, v.impact.as_deref().unwrap_or("?")))
            .collect();
        println!(
            "axe-core: {name}: {} violation(s), {} serious or critical {summary:?}",
            violations.len(),
            violations.iter().filter(|v| v.is_serious()).count(),
        );
        self.pages.push((name.to_string(), violations));
    }

    pub fn assert_no_serious_violations(&self) {
        let serious: Vec<String> = self
            .pages
            .iter()
            .flat_map(|(page, violations)| {
                violations.iter().filter(|v| v.is_serious()).map(move |v| {
                    format!(
                        "{page}: {} {:?}: {} at {:?}",
                        v.id, v.impact, v.help, v.targets
                    )
                })
            })
            .collect();
        assert!(
            serious.is_empty(),
            "accessibility violations:\n{}",
            serious.join("\n")
        );
        assert!(!self.pages.is_empty(), "no page was checked");
    }
}
