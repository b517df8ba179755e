//! `TestApp`: the real application on a free port, on a fresh embedded store or a fresh
//! `redis-server`, sending through a real in-process SMTP server, with a clock the test
//! can move. Background tasks are off: tests send queued mail with `drain_outbox` and
//! never sleep.

use std::net::TcpListener;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Duration;
use optin::clock::ManualClock;
use optin::config::{Config, ListSetting, Settings};
use optin::startup::{Application, Background};
use secrecy::SecretString;
use serde_json::{json, Value};

use super::redis_server::{RedisCluster, RedisServer};
use super::smtp_sink::{ReceivedMail, SmtpSink};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Redis,
    RedisCluster,
}

/// Known test keys. The hashes below are the SHA-256 of these strings.
pub const ADMIN_KEY: &str = "test-admin-key";
pub const SEND_KEY: &str = "test-send-key";

enum StoreResources {
    Embedded(tempfile::TempDir),
    Redis(RedisServer),
    Cluster(RedisCluster),
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub smtp: SmtpSink,
    pub clock: Arc<ManualClock>,
    pub backend: Backend,
    store_url: String,
    resources: StoreResources,
    settings: Settings,
    /// Bound on port 0 at spawn and kept until the app serves on it, so that no other
    /// process can take the port in between. A restart binds the same port again.
    listener: Option<TcpListener>,
    app: Option<RunningApp>,
    /// Run the background scheduler (expiry, retention, the consent sweep) from the next
    /// start on, as `optin serve` does.
    scheduler: bool,
}

struct RunningApp {
    handle: actix_web::dev::ServerHandle,
    outbox: optin::outbox::OutboxWorker,
    state: actix_web::web::Data<optin::web::AppState>,
    join: tokio::task::JoinHandle<std::io::Result<()>>,
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Settings as an operator would write them, for the given store and SMTP sink.
pub fn test_settings(store_url: &str, smtp_url: &str, port: u16) -> Settings {
    let mut settings = Settings::default();
    settings.server.bind = format!("127.0.0.1:{port}");
    settings.server.public_url = Some(format!("http://127.0.0.1:{port}"));
    settings.store.url = store_url.to_string();
    settings.mail.url = SecretString::from(smtp_url.to_string());
    settings.mail.from = "Optin Test <no-reply@optin.test>".to_string();
    settings.mail.retry_base_secs = 60;
    settings.security.signing_keys = ListSetting(vec![SecretString::from(format!(
        "k1:{}",
        STANDARD.encode([1u8; 32])
    ))]);
    settings.security.index_key = Some(SecretString::from(STANDARD.encode([2u8; 32])));
    settings.security.api_keys = ListSetting(vec![
        SecretString::from(format!("admin-test:admin:{}", sha256_hex(ADMIN_KEY))),
        SecretString::from(format!("send-test:send:{}", sha256_hex(SEND_KEY))),
    ]);
    settings.subscription_types = Settings::example_subscription_types();
    // Tests sign up many addresses from 127.0.0.1; the IP limit and the quarantine's
    // ip_burst have their own tests.
    settings.signup.max_signups_per_ip = 10_000;
    settings.signup.max_unconfirmed_per_ip = 10_000;
    // Browsers in tests fill the hosted form in milliseconds; too_fast has its own tests.
    settings.signup.min_fill_seconds = 0;
    // Test addresses are at domains no DNS answers for (and tests have no network); the
    // MX check has its own tests against a DNS server of the test's.
    settings.signup.check_mx = Some(false);
    settings
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with settings changed by `adjust` first.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let (resources, store_url) = match backend {
            Backend::Embedded => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = dir.path().join("optin.redb").display().to_string();
                (StoreResources::Embedded(dir), url)
            }
            Backend::Redis => {
                let server = RedisServer::start();
                let url = server.url.clone();
                (StoreResources::Redis(server), url)
            }
            Backend::RedisCluster => {
                let cluster = RedisCluster::start();
                let url = cluster.url.clone();
                (StoreResources::Cluster(cluster), url)
            }
        };
        Self::spawn_on(backend, resources, store_url, adjust).await
    }

    /// Like `spawn(Backend::Redis)`, on a redis-server started with extra arguments, e.g.
    /// `["--appendonly", "yes"]` so that what was written survives `redis().stop()` and
    /// `redis().restart()`.
    pub async fn spawn_with_redis_args(args: &[&str]) -> TestApp {
        let server = RedisServer::start_with_args(args);
        let store_url = server.url.clone();
        Self::spawn_on(
            Backend::Redis,
            StoreResources::Redis(server),
            store_url,
            |_| {},
        )
        .await
    }

    /// Starts the app on a store that is already running.
    async fn spawn_on(
        backend: Backend,
        resources: StoreResources,
        store_url: String,
        adjust: impl FnOnce(&mut Settings),
    ) -> TestApp {
        optin::telemetry::init_logging(&optin::config::LogSettings {
            format: optin::config::LogFormat::Text,
            filter: "warn".into(),
        });
        let smtp = SmtpSink::start();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let port = listener.local_addr().expect("a bound address").port();
        let mut settings = test_settings(&store_url, &smtp.url(), port);
        adjust(&mut settings);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let mut app = TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client,
            smtp,
            clock: ManualClock::starting_now(),
            backend,
            store_url,
            resources,
            settings,
            listener: Some(listener),
            app: None,
            scheduler: false,
        };
        app.start().await;
        app
    }

    /// The configuration the app runs with, for store commands (backup, restore) on its
    /// store while it is stopped.
    pub fn config(&self) -> Config {
        Config::from_settings(self.settings.clone()).expect("test settings are valid")
    }

    /// The running app's shared state, for tests that reach its test hooks.
    pub fn state(&self) -> actix_web::web::Data<optin::web::AppState> {
        self.app.as_ref().expect("the app is running").state.clone()
    }

    /// The outbox as the store counts it: jobs waiting (or being sent) and dead letters.
    pub async fn outbox_depth(&self) -> optin::store::OutboxDepth {
        let app = self.app.as_ref().expect("the app is running");
        app.state
            .subscriptions
            .outbox_depth()
            .await
            .expect("the store answers")
    }

    pub async fn start(&mut self) {
        let config = Config::from_settings(self.settings.clone()).expect("test settings are valid");
        // The first start serves on the listener bound at spawn; a restart binds the
        // same port again, since the links already mailed point at it.
        let listener = match self.listener.take() {
            Some(listener) => listener,
            None => TcpListener::bind(("127.0.0.1", self.port)).expect("the app's port again"),
        };
        let application = Application::build_on(
            config,
            self.clock.clone(),
            Background {
                outbox_worker: false,
                scheduler: self.scheduler,
            },
            listener,
        )
        .await
        .expect("the app builds");
        let handle = application.server_handle();
        let outbox = application.outbox();
        let state = application.state();
        let join = tokio::spawn(application.run_until_stopped());
        self.app = Some(RunningApp {
            handle,
            outbox,
            state,
            join,
        });
    }

    /// From the next start on, run the scheduler as `optin serve` does: its tasks run
    /// once at start, then on their intervals.
    pub fn run_scheduler_from_next_start(&mut self) {
        self.scheduler = true;
    }

    /// Stops the app and starts it again on the same store: what survives is durable.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.handle.stop(true).await;
            let _ = app.join.await;
            // The store (a redb file lock) must be released before it is opened again.
            drop(app.state);
            drop(app.outbox);
            if self.backend == Backend::Embedded {
                wait_for_file_lock_release(&self.store_url).await;
            }
        }
    }

    pub fn redis(&mut self) -> Option<&mut RedisServer> {
        match &mut self.resources {
            StoreResources::Redis(server) => Some(server),
            _ => None,
        }
    }

    pub fn store_url(&self) -> &str {
        &self.store_url
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends every queued mail now; returns how many jobs were handled.
    pub async fn drain_outbox(&self) -> usize {
        let app = self.app.as_ref().expect("the app is running");
        app.outbox.drain().await.expect("the store answers")
    }

    /// Runs the expiry purge now, as the scheduler would.
    pub async fn purge_expired(&self) -> optin::service::PurgeReport {
        let app = self.app.as_ref().expect("the app is running");
        app.state
            .subscriptions
            .purge_expired()
            .await
            .expect("the store answers")
    }

    /// Runs the confirmation reminders now, as the scheduler would.
    pub async fn send_reminders(&self) -> optin::service::ReminderReport {
        let app = self.app.as_ref().expect("the app is running");
        app.state
            .subscriptions
            .send_reminders()
            .await
            .expect("the store answers")
    }

    /// Posts a form body to `POST /signup` as a browser would.
    pub async fn post_form(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .expect("request sent")
    }

    /// The preference center link the service would put in a mail to this address.
    pub fn preferences_link(&self, email: &str) -> String {
        let app = self.app.as_ref().expect("the app is running");
        let subscriptions = &app.state.subscriptions;
        let email = optin::domain::EmailAddress::parse(email).expect("a valid address");
        subscriptions.links().preferences(
            &subscriptions.contact_id(&email),
            "en",
            subscriptions.now(),
        )
    }

    /// The one-click unsubscribe URL a sender gets from the eligibility answer.
    pub async fn unsubscribe_link(&self, email: &str, subscription_type: &str) -> String {
        let answer = self.eligibility(email, subscription_type).await;
        answer["list_unsubscribe"]
            .as_str()
            .expect("list_unsubscribe")
            .trim_matches(['<', '>'])
            .to_string()
    }

    /// Unsubscribes the way a mail client does (RFC 8058 one-click) and checks the answer.
    pub async fn one_click_unsubscribe(&self, email: &str, subscription_type: &str) {
        let url = self.unsubscribe_link(email, subscription_type).await;
        let response = self.post_one_click(&url).await;
        assert_eq!(response.status(), 200, "one-click unsubscribe answers 200");
    }

    /// The RFC 8058 one-click POST to an unsubscribe link, as form-urlencoded.
    pub async fn post_one_click(&self, url: &str) -> reqwest::Response {
        self.client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("request sent")
    }

    pub async fn status(&self, email: &str, subscription_type: &str) -> String {
        self.eligibility(email, subscription_type).await["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs the consent sweep now, as the scheduler would.
    pub async fn sweep_consent(&self) -> optin::service::ConsentSweepReport {
        let app = self.app.as_ref().expect("the app is running");
        app.state
            .subscriptions
            .sweep_consent()
            .await
            .expect("the store answers")
    }

    /// Runs the retention purge now, as the scheduler would.
    pub async fn purge_inactive(&self) -> usize {
        let app = self.app.as_ref().expect("the app is running");
        app.state
            .subscriptions
            .purge_inactive()
            .await
            .expect("the store answers")
    }

    pub async fn signup(&self, email: &str, types: &[&str]) -> reqwest::Response {
        self.post_json(
            "/v1/signups",
            &json!({ "email": email, "subscription_types": types }),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_KEY)
    }

    pub async fn get_with_key(&self, path: &str, key: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn admin_get_json(&self, path: &str) -> Value {
        let response = self.get_with_key(path, ADMIN_KEY).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON")
    }

    pub async fn eligibility(&self, email: &str, subscription_type: &str) -> Value {
        let response = self
            .client
            .get(self.url("/v1/eligibility"))
            .query(&[("email", email), ("subscription_type", subscription_type)])
            .bearer_auth(SEND_KEY)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200, "eligibility answers 200");
        response.json().await.expect("JSON")
    }

    /// The admin API's view of the contact, which must exist.
    pub async fn contact_json(&self, email: &str) -> Value {
        let response = self.contact(email).await;
        assert_eq!(response.status(), 200, "the contact exists");
        response.json().await.expect("a JSON contact")
    }

    /// One subscription of the contact, as the admin API shows it.
    pub async fn subscription(&self, email: &str, subscription_type: &str) -> Value {
        self.contact_json(email).await["subscriptions"][subscription_type].clone()
    }

    /// The body of a GET of `url`, whatever its status.
    pub async fn get_text(&self, url: impl reqwest::IntoUrl) -> String {
        let response = self.client.get(url).send().await.expect("request sent");
        response.text().await.expect("a text body")
    }

    /// Sends an admin API request without a body.
    pub async fn admin_send(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.admin(method, path)
            .await
            .send()
            .await
            .expect("request sent")
    }

    pub async fn contact(&self, email: &str) -> reqwest::Response {
        self.get_with_key(&format!("/v1/contacts/{}", urlencode(email)), ADMIN_KEY)
            .await
    }

    /// Mails that reached the SMTP sink for this address.
    pub fn mails_to(&self, email: &str) -> Vec<ReceivedMail> {
        self.smtp
            .messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|to| to.eq_ignore_ascii_case(email)))
            .collect()
    }

    /// The confirmation link of the newest confirmation mail to this address, taken from
    /// the plain-text part as a person would.
    pub fn confirmation_link(&self, email: &str) -> String {
        let mails = self.mails_to(email);
        let mail = mails
            .last()
            .unwrap_or_else(|| panic!("no mail reached {email}"));
        mail.confirmation_link()
    }

    /// Clicks the button on the page of the last confirmation link mailed to `email`.
    pub async fn confirm_mailed_link(&self, email: &str) {
        let link = self.confirmation_link(email);
        let response = self
            .client
            .post(&link)
            .send()
            .await
            .expect("confirm request sent");
        assert_eq!(response.status(), 200, "confirmation POST succeeds");
    }

    /// Signs up, sends the mail, and clicks the button on the confirmation page.
    pub async fn subscribe_confirmed(&self, email: &str, types: &[&str]) {
        assert_eq!(self.signup(email, types).await.status(), 202);
        self.drain_outbox().await;
        self.confirm_mailed_link(email).await;
    }

    pub fn advance_clock(&self, by: Duration) {
        self.clock.advance(by);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(app) = self.app.take() {
            // Best effort: the runtime may already be shutting down. The stop command is
            // sent by the call itself; the future would only wait for its completion.
            drop(app.handle.stop(false));
        }
    }
}

/// actix's worker threads drop their copies of the app (and so the store) shortly after
/// the server stops; wait until the file can be opened again, bounded to 10 s.
async fn wait_for_file_lock_release(path: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match redb::Database::create(path) {
            Ok(db) => return drop(db),
            Err(redb::DatabaseError::DatabaseAlreadyOpen)
                if std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(error) => panic!("the store file stayed locked after the app stopped: {error}"),
        }
    }
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
