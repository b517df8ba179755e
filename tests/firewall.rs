//! The signup firewall, checked with implementations the team did not write: the ALTCHA
//! project's Python library (`altcha` on PyPI, tests/firewall/altcha_check.sh) solves
//! optin's challenges and verifies optin's format, and a `dnslib` DNS server
//! (tests/firewall/dns_server.sh) answers the MX check.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altchas_solver_solves_our_challenge_and_the_solution_is_accepted_once() {
    let app = spawn_with_proof_of_work(Backend::Redis).await;
    let challenge = fetch_challenge(&app).await;
    assert_eq!(challenge.algorithm, "SHA-256");
    assert_eq!(challenge.maxnumber, 20_000);
    assert!(challenge.salt.contains("?expires="), "{}", challenge.salt);

    let solved = altcha(&["solve", &app.url("/v1/signup-challenge")]).expect("altcha solves it");
    let firewall = app.state().subscriptions.config().firewall.clone();
    // A store handle of its own: another instance on the same Redis.
    let store = RedisStore::connect(app.store_url()).await.unwrap();
    let now = Utc::now();
    firewall
        .verify_proof(&store, Some(&solved), now)
        .await
        .expect("optin accepts altcha's solution");
    let replay = firewall.verify_proof(&store, Some(&solved), now).await;
    assert!(
        matches!(replay, Err(ProofError::Refused(ProofRefusal::Replayed))),
        "{replay:?}"
    );

    let fresh = altcha(&["solve", &app.url("/v1/signup-challenge")]).unwrap();
    let late = firewall
        .verify_proof(&store, Some(&fresh), now + Duration::seconds(301))
        .await;
    assert!(
        matches!(late, Err(ProofError::Refused(ProofRefusal::Expired))),
        "{late:?}"
    );
    let missing = firewall.verify_proof(&store, None, now).await;
    assert!(
        matches!(missing, Err(ProofError::Refused(ProofRefusal::Missing))),
        "{missing:?}"
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

    // A challenge altcha made and solved under optin's key: optin accepts it, once.
    let theirs = altcha(&["make", &key, "20000"]).expect("altcha makes and solves one");
    let firewall = app.state().subscriptions.config().firewall.clone();
    let store = RedisStore::connect(app.store_url()).await.unwrap();
    firewall
        .verify_proof(&store, Some(&theirs), Utc::now())
        .await
        .expect("optin accepts a challenge of altcha's making under its key");
    assert!(firewall
        .verify_proof(&store, Some(&theirs), Utc::now())
        .await
        .is_err());
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
async fn the_official_altcha_widget_solves_our_challenge_in_chromium_and_it_is_accepted_once() {
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
    browser.quit().await;

    let firewall = app.state().subscriptions.config().firewall.clone();
    let store = RedisStore::connect(app.store_url()).await.unwrap();
    firewall
        .verify_proof(&store, Some(&solved), Utc::now())
        .await
        .expect("optin accepts the widget's solution");
    let replay = firewall
        .verify_proof(&store, Some(&solved), Utc::now())
        .await;
    assert!(
        matches!(replay, Err(ProofError::Refused(ProofRefusal::Replayed))),
        "{replay:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosted_forms_solver_runs_in_a_frame_under_its_csp_hash_and_is_accepted_once() {
    use optin::firewall::hosted_solver;

    let pages = tempfile::tempdir().unwrap();
    let site = PageServer::start(pages.path());
    let app = TestApp::spawn_with(Backend::Redis, |settings| {
        settings.signup.proof_of_work = true;
        settings.signup.proof_of_work_max_number = 20_000;
        settings.server.cors_allowed_origins = optin::config::StringList(vec![site.origin.clone()]);
    })
    .await;
    // The form as the hosted page will carry it: the script inline, allowed by its hash
    // alone (a wrong hash keeps it from running), in a frame of another page.
    std::fs::write(
        pages.path().join("form.html"),
        format!(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Form</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src {hash}; connect-src {app}">
</head><body><form method="post" action="{app}/signup" data-altcha-challenge="{app}/v1/signup-challenge">
<input name="email" value="jane@example.com"><input type="hidden" name="altcha">
<noscript>This form needs JavaScript.</noscript><button>Sign up</button></form>
<script>{script}</script></body></html>"#,
            hash = hosted_solver::csp_source(),
            app = app.address,
            script = hosted_solver::SCRIPT,
        ),
    )
    .unwrap();
    std::fs::write(
        pages.path().join("outer.html"),
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><iframe src="/form.html" title="Sign up"></iframe></body></html>"#,
    )
    .unwrap();

    let browser = support::browser::Browser::start().await;
    browser.open(&format!("{}/outer.html", site.origin)).await;
    browser.enter_frame(0).await;
    let read_state = "const form = document.querySelector('form'); \
        return [form.getAttribute('data-altcha-state'), form.elements.altcha.value];";
    let started = std::time::Instant::now();
    let solved = loop {
        let state = browser.eval(read_state).await;
        match (state[0].as_str(), state[1].as_str()) {
            (Some("solved"), Some(payload)) if !payload.is_empty() => break payload.to_string(),
            (Some("failed"), _) => panic!("the solver failed in the frame"),
            _ => {}
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "the solver did not finish within 60 s: {state}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    browser.quit().await;

    let firewall = app.state().subscriptions.config().firewall.clone();
    let store = RedisStore::connect(app.store_url()).await.unwrap();
    firewall
        .verify_proof(&store, Some(&solved), Utc::now())
        .await
        .expect("optin accepts the hosted solver's solution");
    assert!(firewall
        .verify_proof(&store, Some(&solved), Utc::now())
        .await
        .is_err());
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
