//! Real headless Chromium, driven over WebDriver by Debian's `chromedriver`. A tiny
//! client over reqwest is all the tests need: open, find, click, read, screenshot.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session. Panics with a clear message
    /// when either is missing: the README's test command installs them.
    pub async fn start() -> Browser {
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
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("a profile folder");
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--window-size=1000,1400",
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }}
        });
        let response: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session request")
            .json()
            .await
            .expect("new session answer");
        let session = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromium did not start: {response}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let mut request = self.http.request(method.clone(), &url);
        if method == reqwest::Method::POST {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("webdriver request")
            .json()
            .await
            .expect("webdriver answer");
        if answer["value"].get("error").is_some() {
            panic!("webdriver {path} failed: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    pub async fn open(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let element = self
            .command(
                reqwest::Method::POST,
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        element[ELEMENT_KEY]
            .as_str()
            .expect("an element id")
            .to_string()
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            json!({}),
        )
        .await;
    }

    /// Clicks a submit button and waits until the page it posts to has loaded: the
    /// document element changes and the new document is complete. Bounded to 10 s.
    pub async fn submit(&self, css: &str) {
        let old_document = self.find("html").await;
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let state = self
                .command(
                    reqwest::Method::POST,
                    "/execute/sync",
                    json!({ "script": "return document.readyState", "args": [] }),
                )
                .await;
            if self.find("html").await != old_document && state == json!("complete") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page after clicking {css} did not load within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn is_checked(&self, css: &str) -> bool {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::GET,
            &format!("/element/{element}/selected"),
            Value::Null,
        )
        .await
            == json!(true)
    }

    pub async fn page_text(&self) -> String {
        let body = self.find("body").await;
        self.command(
            reqwest::Method::GET,
            &format!("/element/{body}/text"),
            Value::Null,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self
            .command(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let bytes = STANDARD
            .decode(png.as_str().expect("base64 PNG"))
            .expect("valid base64");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("screenshot folder");
        }
        std::fs::write(path, bytes).expect("screenshot written");
    }

    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
