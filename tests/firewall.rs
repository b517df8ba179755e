//! The signup firewall, checked with implementations the team did not write: the ALTCHA
//! project's Python library (`altcha` on PyPI, tests/firewall/altcha_check.sh) and its
//! official widget (npm, in headless Chromium) solve optin's challenges for the real
//! signup doors and verify optin's format, and a `dnslib` DNS server
//! (tests/firewall/dns_server.sh) answers the MX check. The hosted form solves its own
//! challenge in Chromium, framed and unframed.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{Duration, Utc};
use optin::firewall::{
    Challenge, DisposableAction, Firewall, FirewallSettings, MailHost, MxChecker, ProofError,
    ProofRefusal, QuarantineReason, RefuseReason, Undeliverable, Verdict,
};
use optin::store::redis::RedisStore;
use optin::tokens::{SigningKey, TokenSigner};
use sha2::{Digest, Sha256};
use support::app::{Backend, TestApp};

/// Runs tests/firewall/altcha_check.sh and answers its output; a refusal fails the test.
fn altcha(args: &[&str]) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/firewall/altcha_check.sh");
    let output = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .expect("run tests/firewall/altcha_check.sh");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).to_string())
    }
}

/// The HMAC key optin derives for its challenges from the test settings' signing key
/// (`k1`, 32 bytes of 1), in hex, for altcha to sign and verify with.
fn altcha_key_hex() -> String {
    let signer = TokenSigner::new(vec![SigningKey {
        id: "k1".into(),
        secret: vec![1; 32],
    }])
    .unwrap();
    hex::encode(signer.derived_keys("altcha")[0])
}

async fn spawn_with_proof_of_work(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        settings.signup.proof_of_work = true;
        // Enough work to mean something, little enough for a Python solver in a test.
        settings.signup.proof_of_work_max_number = 20_000;
        settings.server.cors_allowed_origins =
            optin::config::StringList(vec!["https://shop.example".into()]);
    })
    .await
}

async fn fetch_challenge(app: &TestApp) -> Challenge {
    let response = app
        .client
        .get(app.url("/v1/signup-challenge"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.expect("the challenge JSON")
}

/// Tries every number, as our own test solver (not altcha's).
fn solve(challenge: &Challenge) -> u64 {
    (0..=challenge.maxnumber)
        .find(|n| {
            let digest = Sha256::digest(format!("{}{n}", challenge.salt));
            hex::encode(digest) == challenge.challenge
        })
        .expect("a solution within maxnumber")
}

fn payload(challenge: &Challenge, number: u64) -> String {
    STANDARD.encode(
        serde_json::json!({
            "algorithm": challenge.algorithm,
            "challenge": challenge.challenge,
            "number": number,
            "salt": challenge.salt,
            "signature": challenge.signature,
        })
        .to_string(),
    )
}

/// `POST /v1/signups` with the proof (or none), optionally with a key.
async fn api_signup(
    app: &TestApp,
    email: &str,
    proof: Option<&str>,
    key: Option<&str>,
) -> reqwest::Response {
    let mut body = serde_json::json!({ "email": email, "subscription_types": ["blog-updates"] });
    if let Some(proof) = proof {
        body["altcha"] = proof.into();
    }
    let mut request = app.client.post(app.url("/v1/signups")).json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

/// `POST /signup` as a form with the proof (or none).
async fn form_signup(app: &TestApp, email: &str, proof: Option<&str>) -> reqwest::Response {
    let mut fields = vec![("email", email), ("subscription_types", "blog-updates")];
    if let Some(proof) = proof {
        fields.push(("altcha", proof));
    }
    app.client
        .post(app.url("/signup"))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

/// A `/v1/signups` refusal for the proof of work: 400 with its problem type.
async fn assert_proof_refused(response: reqwest::Response, why: &str) {
    assert_eq!(response.status(), 400, "{why}");
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:optin:problem:proof-of-work", "{why}");
    assert_eq!(problem["field"], "altcha");
    assert!(
        problem["detail"].as_str().unwrap().contains(why),
        "{problem}"
    );
}

/// The hosted form shown again, with the message `text`, and the status `status`.
async fn assert_form_again(response: reqwest::Response, status: u16, text: &str) {
    assert_eq!(response.status(), status);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains(text), "{html}");
    assert!(html.contains(r#"name="email""#), "the form itself");
}

const PROOF_FAILED: &str = "We could not check that this form was sent from a browser.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altchas_solver_solves_our_challenge_and_each_signup_door_accepts_it_once() {
    let app = spawn_with_proof_of_work(Backend::Redis).await;
    let challenge = fetch_challenge(&app).await;
    assert_eq!(challenge.algorithm, "SHA-256");
    assert_eq!(challenge.maxnumber, 20_000);
    assert!(challenge.salt.contains("?expires="), "{}", challenge.salt);
    let solve = || altcha(&["solve", &app.url("/v1/signup-challenge")]).expect("altcha solves it");

    // The API door takes altcha's solution once.
    let solved = solve();
    assert_eq!(
        api_signup(&app, "jane@example.com", Some(&solved), None)
            .await
            .status(),
        202
    );
    assert_proof_refused(
        api_signup(&app, "bob@example.com", Some(&solved), None).await,
        "already used",
    )
    .await;
    // Another instance on the same Redis sees it spent.
    let firewall = app.state().subscriptions.config().firewall.clone();
    let store = RedisStore::connect(app.store_url()).await.unwrap();
    let replay = firewall
        .verify_proof(&store, Some(&solved), Utc::now())
        .await;
    assert!(
        matches!(replay, Err(ProofError::Refused(ProofRefusal::Replayed))),
        "{replay:?}"
    );
    // The form door refuses the replay with the form again, and takes a fresh one.
    assert_form_again(
        form_signup(&app, "bob@example.com", Some(&solved)).await,
        400,
        PROOF_FAILED,
    )
    .await;
    let fresh = form_signup(&app, "kim@example.com", Some(&solve())).await;
    assert_eq!(fresh.status(), 303);
    let location = fresh.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/signup/received?"), "{location}");

    // Missing, on both doors; then expired.
    assert_proof_refused(
        api_signup(&app, "bob@example.com", None, None).await,
        "no proof",
    )
    .await;
    assert_form_again(
        form_signup(&app, "bob@example.com", None).await,
        400,
        PROOF_FAILED,
    )
    .await;
    let late = solve();
    app.advance_clock(Duration::seconds(301));
    assert_proof_refused(
        api_signup(&app, "bob@example.com", Some(&late), None).await,
        "expired",
    )
    .await;

    app.drain_outbox().await;
    assert_eq!(app.mails_to("jane@example.com").len(), 1);
    assert_eq!(app.mails_to("kim@example.com").len(), 1);
    assert!(
        app.mails_to("bob@example.com").is_empty(),
        "no refused signup mails"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altchas_verifier_accepts_our_format_and_we_accept_altchas_own_challenges() {
    let app = spawn_with_proof_of_work(Backend::Redis).await;
    let key = altcha_key_hex();

    // Our challenge, solved by our test solver, verified by altcha under optin's key.
    let challenge = fetch_challenge(&app).await;
    let ours = payload(&challenge, solve(&challenge));
    assert_eq!(altcha(&["verify", &key, &ours]).as_deref(), Ok("verified"));
    let wrong_key = hex::encode([7u8; 32]);
    assert!(
        altcha(&["verify", &wrong_key, &ours]).is_err(),
        "the check can fail"
    );

    // A challenge altcha made and solved under optin's key: the signup door takes it,
    // once.
    let theirs = altcha(&["make", &key, "20000"]).expect("altcha makes and solves one");
    assert_eq!(
        api_signup(&app, "jane@example.com", Some(&theirs), None)
            .await
            .status(),
        202
    );
    assert_proof_refused(
        api_signup(&app, "jane@example.com", Some(&theirs), None).await,
        "already used",
    )
    .await;
    // One made under another key is not ours.
    let foreign = altcha(&["make", &wrong_key, "20000"]).unwrap();
    assert_proof_refused(
        api_signup(&app, "bob@example.com", Some(&foreign), None).await,
        "not for a challenge of ours",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signup_key_needs_no_proof_and_is_not_counted_per_client() {
    const CRM_KEY: &str = "test-signup-key";
    let app = TestApp::spawn_with(Backend::Embedded, |settings| {
        settings.signup.proof_of_work = true;
        settings.signup.proof_of_work_max_number = 20_000;
        settings.signup.max_signups_per_ip = 1;
        settings.signup.max_unconfirmed_per_ip = 1;
        let hash = hex::encode(Sha256::digest(CRM_KEY.as_bytes()));
        settings
            .security
            .api_keys
            .0
            .push(secrecy::SecretString::from(format!("crm:signup:{hash}")));
    })
    .await;
    // Three from the integration's one address: no proof, no per-client limit, no
    // ip_burst hold.
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        assert_eq!(
            api_signup(&app, email, None, Some(CRM_KEY)).await.status(),
            202
        );
    }
    app.drain_outbox().await;
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        assert_eq!(app.mails_to(email).len(), 1, "{email} is mailed");
    }
    let events = app.admin_get_json("/v1/quarantine").await;
    assert_eq!(events["quarantined"], serde_json::json!([]));

    // A wrong key is refused, never taken for a public signup; a send key is no
    // signup key.
    let wrong = api_signup(&app, "d@example.com", None, Some("nope")).await;
    assert_eq!(wrong.status(), 401);
    let send = api_signup(&app, "d@example.com", None, Some(support::app::SEND_KEY)).await;
    assert_eq!(send.status(), 403);
    // The public door counts the client: the first public signup is its first, the
    // second passes the limit of one.
    for (email, status) in [("d@example.com", 202), ("e@example.com", 429)] {
        let challenge = fetch_challenge(&app).await;
        let proof = payload(&challenge, solve(&challenge));
        let response = api_signup(&app, email, Some(&proof), None).await;
        assert_eq!(response.status(), status, "{email}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_challenge_route_answers_404_while_the_proof_of_work_is_off_and_serves_cors() {
    let off = TestApp::spawn(Backend::Embedded).await;
    let response = off
        .client
        .get(off.url("/v1/signup-challenge"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:optin:problem:not-found");

    let on = spawn_with_proof_of_work(Backend::Embedded).await;
    let response = on
        .client
        .get(on.url("/v1/signup-challenge"))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let post = on
        .client
        .post(on.url("/v1/signup-challenge"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET");
}

/// A static page server (Python's own `http.server`) on another origin than the app,
/// as a shop's site would be, killed on drop.
struct PageServer {
    origin: String,
    child: Child,
}

impl PageServer {
    fn start(dir: &Path) -> Self {
        let port = support::free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed().as_secs() < 10,
                "the page server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self {
            origin: format!("http://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs the pinned official widget (tests/firewall/altcha_widget.sh); its folder.
fn altcha_widget() -> std::path::PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/firewall/altcha_widget.sh");
    let output = Command::new("bash")
        .arg(script)
        .output()
        .expect("run tests/firewall/altcha_widget.sh");
    assert!(
        output.status.success(),
        "the widget could not be installed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_altcha_widget_solves_our_challenge_and_the_signup_form_door_takes_it_once() {
    let pages = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(altcha_widget(), pages.path().join("altcha")).unwrap();
    let site = PageServer::start(pages.path());
    let app = TestApp::spawn_with(Backend::Redis, |settings| {
        settings.signup.proof_of_work = true;
        settings.signup.proof_of_work_max_number = 20_000;
        settings.server.cors_allowed_origins = optin::config::StringList(vec![site.origin.clone()]);
    })
    .await;
    // A shop's own signup form, with the widget pointed at optin, as docs/firewall.md says.
    std::fs::write(
        pages.path().join("index.html"),
        format!(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script type="module" src="/altcha/dist/main/altcha.js"></script></head>
<body><form action="{app}/signup" method="post">
<input name="email" value="jane@example.com">
<input type="hidden" name="subscription_types" value="blog-updates">
<altcha-widget challenge="{app}/v1/signup-challenge" auto="onload"></altcha-widget>
<button>Sign up</button></form></body></html>"#,
            app = app.address
        ),
    )
    .unwrap();

    let browser = support::browser::Browser::start().await;
    browser.open(&format!("{}/index.html", site.origin)).await;
    let read_payload = "return new FormData(document.querySelector('form')).get('altcha');";
    let started = std::time::Instant::now();
    let solved = loop {
        if let serde_json::Value::String(payload) = browser.eval(read_payload).await {
            if !payload.is_empty() {
                break payload;
            }
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "the widget did not solve the challenge within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    // The shop's form posts to optin's form door, which takes the widget's payload.
    browser.submit("button").await;
    assert_eq!(
        browser.current_url().await.split('?').next().unwrap(),
        app.url("/signup/received"),
        "the thank-you page"
    );
    browser.quit().await;
    app.drain_outbox().await;
    assert_eq!(app.mails_to("jane@example.com").len(), 1);
    assert_form_again(
        form_signup(&app, "bob@example.com", Some(&solved)).await,
        400,
        PROOF_FAILED,
    )
    .await;
}

/// Fills the hosted form in the browser's current document and submits it; answers
/// the URL of the page it ends on.
async fn fill_and_submit_the_hosted_form(
    browser: &support::browser::Browser,
    email: &str,
) -> String {
    browser.type_into("#email", email).await;
    // A form of one type shows its box ticked already.
    browser
        .eval("document.querySelector('#type-blog-updates').checked = true; return true;")
        .await;
    browser.submit("#subscribe").await;
    // The document's own address: WebDriver's current URL is the top page's.
    browser
        .eval("return location.href;")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosted_form_solves_its_challenge_in_chromium_framed_and_unframed() {
    let pages = tempfile::tempdir().unwrap();
    let site = PageServer::start(pages.path());
    let app = TestApp::spawn_with(Backend::Redis, |settings| {
        settings.signup.proof_of_work = true;
        settings.signup.proof_of_work_max_number = 20_000;
        settings.server.embed_allowed_origins =
            optin::config::StringList(vec![site.origin.clone()]);
    })
    .await;
    let form = app.url("/signup?types=blog-updates");
    // A shop's page framing optin's form, as docs/pages.md shows.
    std::fs::write(
        pages.path().join("outer.html"),
        format!(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><iframe src="{form}" title="Sign up" width="600" height="900"></iframe></body></html>"#
        ),
    )
    .unwrap();

    let browser = support::browser::Browser::start().await;
    // Unframed: the page's CSP allows the inline solver by its hash alone; a solver
    // kept from running would leave the form without a proof, shown again at /signup.
    browser.open(&form).await;
    let landed = fill_and_submit_the_hosted_form(&browser, "jane@example.com").await;
    assert_eq!(
        landed.split('?').next().unwrap(),
        app.url("/signup/received")
    );

    // Framed by an allowed origin: the solver runs in the frame under the same policy.
    // The page after the post cannot be shown in a frame (docs/pages.md); the mail
    // below, which needs an accepted proof, is what says the post went through.
    browser.open(&format!("{}/outer.html", site.origin)).await;
    browser.enter_frame(0).await;
    let started = std::time::Instant::now();
    while browser
        .eval("return document.querySelector('form').getAttribute('data-altcha-state');")
        .await
        != "solved"
    {
        assert!(
            started.elapsed().as_secs() < 30,
            "the solver did not finish in the frame"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let landed = fill_and_submit_the_hosted_form(&browser, "kim@example.com").await;
    assert!(!landed.ends_with("/signup"), "not the form again: {landed}");
    browser.quit().await;

    app.drain_outbox().await;
    assert_eq!(app.mails_to("jane@example.com").len(), 1);
    assert_eq!(app.mails_to("kim@example.com").len(), 1);
}

/// The dnslib server of tests/firewall/dns_server.sh, stopped on drop.
struct DnsServer {
    addr: SocketAddr,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl DnsServer {
    fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/firewall/dns_server.sh");
        let mut child = Command::new("bash")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tests/firewall/dns_server.sh");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("its stdout"))
            .read_line(&mut line)
            .expect("the server's port");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("a port, not {line:?}"));
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stdin: child.stdin.take(),
            child,
        }
    }

    fn stop(&mut self) {
        // Closing its stdin ends it; the kill is for a server that hangs.
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The sum of `optin_dns_check_failures_total` over its labels.
fn dns_failures_counted() -> f64 {
    let handle = optin::telemetry::metrics_handle().expect("a metrics recorder");
    handle
        .render()
        .lines()
        .filter(|line| line.starts_with("optin_dns_check_failures_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mx_check_gives_each_kind_of_domain_its_verdict_and_remembers_it() {
    let mut dns = DnsServer::start();
    the_firewall_refuses_undeliverable_domains_and_lets_dns_failures_through(&dns).await;
    both_signup_doors_refuse_what_the_firewall_refuses(&dns).await;

    let checker = MxChecker::new(&[dns.addr]).expect("a resolver");
    let now = Utc::now();
    let failures_before = dns_failures_counted();

    let cases = [
        ("mx.test", MailHost::Deliverable),
        ("a-only.test", MailHost::Deliverable),
        ("aaaa-only.test", MailHost::Deliverable),
        (
            "null-mx.test",
            MailHost::Undeliverable(Undeliverable::NullMx),
        ),
        (
            "no-host.test",
            MailHost::Undeliverable(Undeliverable::NoMailHost),
        ),
        (
            "nxdomain.test",
            MailHost::Undeliverable(Undeliverable::NoSuchDomain),
        ),
        ("servfail.test", MailHost::Unknown),
    ];
    for (domain, expected) in cases {
        assert_eq!(checker.check(domain, now).await, expected, "{domain}");
    }
    assert!(
        (dns_failures_counted() - failures_before - 1.0).abs() < f64::EPSILON,
        "the SERVFAIL is counted, nothing else"
    );

    // With the server gone, the cache still answers what it was told (a failure only
    // for 30 s)...
    dns.stop();
    let a_moment_later = now + Duration::seconds(20);
    for (domain, expected) in cases {
        assert_eq!(
            checker.check(domain, a_moment_later).await,
            expected,
            "{domain}, from the cache"
        );
    }
    assert!((dns_failures_counted() - failures_before - 1.0).abs() < f64::EPSILON);
    // ...while a domain never asked about, or an answer past its time, fails open.
    assert_eq!(
        checker.check("other.test", a_moment_later).await,
        MailHost::Unknown
    );
    assert_eq!(
        checker.check("mx.test", now + Duration::hours(2)).await,
        MailHost::Unknown
    );
    assert!(dns_failures_counted() - failures_before >= 3.0);
}

/// The signup doors with the MX check on, throw-away domains refused and a blocked
/// domain: refusals are 422 problems on the API and the form again on `/signup`; a DNS
/// failure lets the signup through.
async fn both_signup_doors_refuse_what_the_firewall_refuses(dns: &DnsServer) {
    let app = TestApp::spawn_with(Backend::Embedded, |settings| {
        settings.signup.check_mx = Some(true);
        settings.signup.dns_servers = optin::config::StringList(vec![dns.addr.to_string()]);
        settings.signup.disposable_domains = DisposableAction::Refuse;
        settings.signup.blocked_domains = optin::config::StringList(vec!["blocked.test".into()]);
    })
    .await;
    for (email, why) in [
        ("jane@null-mx.test", "null_mx"),
        ("jane@nxdomain.test", "no_such_domain"),
        ("jane@no-host.test", "no_mail_host"),
        ("jane@shop.blocked.test", "not accepted"),
        ("jane@mailinator.com", "throw-away"),
    ] {
        let response = app.signup(email, &["blog-updates"]).await;
        assert_eq!(response.status(), 422, "{email}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:optin:problem:undeliverable-address");
        assert_eq!(problem["field"], "email");
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{problem}"
        );
        assert_form_again(
            form_signup(&app, email, None).await,
            422,
            "We cannot send mail to this address.",
        )
        .await;
    }
    for email in ["jane@mx.test", "jane@a-only.test", "jane@servfail.test"] {
        assert_eq!(
            app.signup(email, &["blog-updates"]).await.status(),
            202,
            "{email}"
        );
    }
    app.drain_outbox().await;
    assert_eq!(app.mails_to("jane@mx.test").len(), 1);
    assert_eq!(
        app.mails_to("jane@servfail.test").len(),
        1,
        "a DNS failure fails open"
    );
    assert!(app.mails_to("jane@null-mx.test").is_empty());
}

/// The verdicts the firewall gives with the MX check on; one test with the one below, so
/// that the process-wide failure counter is read by one test at a time.
async fn the_firewall_refuses_undeliverable_domains_and_lets_dns_failures_through(dns: &DnsServer) {
    let firewall = Firewall::new(
        &FirewallSettings {
            proof_of_work: false,
            challenge_ttl: Duration::seconds(300),
            proof_of_work_max_number: 1000,
            check_mx: true,
            dns_servers: vec![dns.addr],
            disposable_domains: DisposableAction::Quarantine,
            blocked_domains: vec!["blocked.test".into()],
            allowed_domains: Vec::new(),
            min_fill: Duration::zero(),
        },
        &[[1; 32]],
    )
    .unwrap();
    let judge = |address: &str| {
        let email = optin::domain::EmailAddress::parse(address).unwrap();
        let firewall = &firewall;
        async move { firewall.judge(&email, Utc::now()).await }
    };
    assert_eq!(judge("jane@mx.test").await, Verdict::Pass);
    assert_eq!(judge("jane@a-only.test").await, Verdict::Pass);
    assert_eq!(judge("jane@servfail.test").await, Verdict::Pass);
    assert_eq!(
        judge("jane@null-mx.test").await,
        Verdict::Refuse(RefuseReason::Undeliverable(Undeliverable::NullMx))
    );
    assert_eq!(
        judge("jane@nxdomain.test").await,
        Verdict::Refuse(RefuseReason::Undeliverable(Undeliverable::NoSuchDomain))
    );
    assert_eq!(
        judge("jane@blocked.test").await,
        Verdict::Refuse(RefuseReason::BlockedDomain)
    );
    // A throw-away domain that receives mail is held, not refused.
    assert_eq!(
        judge("jane@mailinator.com").await,
        Verdict::Quarantine(QuarantineReason::DisposableDomain)
    );
}
