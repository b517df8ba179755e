//! What the signup firewall costs a signup: making a challenge, checking a solution, and
//! accepting it once (on the embedded store, and on Redis when `redis-server` is found);
//! the MX check uncached (a new domain each time) and cached. The DNS server is the
//! tests' dnslib server on 127.0.0.1 (tests/firewall/dns_server.sh), so an uncached
//! lookup is mostly that Python server's own time: read it as an upper bound of the
//! resolver's cost, not as the cost of real DNS, which depends on the network.
//!
//! Then whole signups through the service (`Subscriptions::sign_up`, no HTTP), each of a
//! new address, one at a time: without the proof of work and the MX check, then with
//! the proof, with the MX check answered from the cache and with it uncached, each as a
//! ratio to the signup without them. The rows take turns, one signup each, so that the
//! store grows alike under all of them. Each signup's answer is paced (it waits for the
//! longest of its own time and recent signups' times, see `service::signup_pace`), so
//! these rows show a part's cost only where it lengthens the signup past that pace;
//! the per-part rows above are the costs themselves.
//!
//!     cargo bench --bench firewall
//!     (BENCH_FIREWALL_N: operations per measure; BENCH_FIREWALL_SIGNUPS: signups per row)

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{Duration, Utc};
use optin::config::{Config, ListSetting, Settings, StringList};
use optin::domain::{EmailAddress, RequestMeta, SignupDoor};
use optin::firewall::{Challenge, DisposableAction, Firewall, FirewallSettings, MxChecker};
use optin::service::{NoticeVersions, SignupRequest, Subscriptions, TypoCheck};
use optin::store::embedded::EmbeddedStore;
use optin::store::redis::RedisStore;
use optin::store::{SharedStore, Store};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let n: usize = std::env::var("BENCH_FIREWALL_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let firewall = Arc::new(
        Firewall::new(
            &FirewallSettings {
                proof_of_work: true,
                challenge_ttl: Duration::seconds(300),
                // The check costs one SHA-256 and one HMAC whatever the maximum; a small
                // one keeps the setup (solving n challenges) short.
                proof_of_work_max_number: 1_000,
                check_mx: false,
                dns_servers: Vec::new(),
                disposable_domains: DisposableAction::Quarantine,
                blocked_domains: Vec::new(),
                allowed_domains: Vec::new(),
                min_fill: Duration::zero(),
            },
            &[[1; 32]],
        )
        .expect("a firewall"),
    );
    let pow = firewall.proof_of_work().expect("the proof of work is on");
    let now = Utc::now();
    println!("signup firewall, {n} operations per measure, one at a time\n");
    println!("| measure | mean | p50 | p99 |");
    println!("|---|---|---|---|");

    report(
        "challenge (make and sign)",
        time_each(n, |_| async {
            pow.challenge(now).expect("randomness");
        })
        .await,
    );

    let payloads: Vec<String> = (0..n)
        .map(|_| solved(&pow.challenge(now).expect("randomness")))
        .collect();
    report(
        "check a solution (decode, HMAC, SHA-256, expiry)",
        time_each(n, |i| {
            let payload = &payloads[i];
            async move {
                pow.check(payload, now).expect("a valid solution");
            }
        })
        .await,
    );

    let dir = tempfile::tempdir().expect("a temporary folder");
    let embedded = EmbeddedStore::open(&dir.path().join("bench.redb")).expect("a store");
    accept_once("accept once, embedded store", &firewall, &embedded, pow, n).await;

    match RedisServer::start() {
        Some(redis) => {
            let store = RedisStore::connect(&redis.url)
                .await
                .expect("a Redis store");
            accept_once("accept once, Redis", &firewall, &store, pow, n).await;
        }
        None => println!("| accept once, Redis | (no redis-server on PATH) | | |"),
    }

    let dns = DnsServer::start();
    let checker = MxChecker::new(&[dns.addr]).expect("a resolver");
    report(
        "MX check, uncached (dnslib on 127.0.0.1)",
        time_each(n, |i| {
            let checker = &checker;
            async move {
                checker.check(&format!("n{i}.wild.test"), now).await;
            }
        })
        .await,
    );
    report(
        "MX check, cached",
        time_each(n, |_| {
            let checker = &checker;
            async move {
                checker.check("n0.wild.test", now).await;
            }
        })
        .await,
    );

    let signups_per_row: usize = std::env::var("BENCH_FIREWALL_SIGNUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    println!(
        "\nwhole signups (Subscriptions::sign_up), {signups_per_row} per row, one at a time\n"
    );
    println!("| signup | mean | p50 | p99 | mean / without |");
    println!("|---|---|---|---|---|");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let embedded: SharedStore =
        Arc::new(EmbeddedStore::open(&dir.path().join("signups.redb")).expect("a store"));
    signup_rows("embedded", &embedded, &dns, signups_per_row).await;
    if let Some(redis) = RedisServer::start() {
        let store: SharedStore = Arc::new(RedisStore::connect(&redis.url).await.expect("Redis"));
        signup_rows("Redis", &store, &dns, signups_per_row).await;
    }
}

/// The service as `optin serve` builds it, on `store`, with the proof of work and the MX
/// check (against `dns`) on or off; the per-client limits too high to hold anything.
fn service(store: &SharedStore, proof_of_work: bool, dns: Option<SocketAddr>) -> Subscriptions {
    let mut settings = Settings::default();
    settings.server.public_url = Some("http://127.0.0.1:8080".into());
    settings.security.signing_keys = ListSetting(vec![SecretString::from(format!(
        "k1:{}",
        STANDARD.encode([1u8; 32])
    ))]);
    settings.security.index_key = Some(SecretString::from(STANDARD.encode([2u8; 32])));
    settings.subscription_types = Settings::example_subscription_types();
    settings.signup.max_signups_per_ip = 1_000_000_000;
    settings.signup.max_unconfirmed_per_ip = 1_000_000_000;
    settings.signup.proof_of_work = proof_of_work;
    settings.signup.proof_of_work_max_number = 1_000;
    settings.signup.check_mx = Some(dns.is_some());
    settings.signup.dns_servers = StringList(dns.iter().map(ToString::to_string).collect());
    let config = Config::from_settings(settings).expect("valid settings");
    Subscriptions::new(
        store.clone(),
        Arc::new(config),
        Arc::new(optin::clock::SystemClock),
        Arc::new(tokio::sync::Notify::new()),
    )
}

fn signup(email: &str, proof: Option<String>) -> SignupRequest {
    SignupRequest {
        email: EmailAddress::parse(email).expect("an address"),
        types: vec!["blog-updates".into()],
        locale: "en".into(),
        notice_versions: NoticeVersions::Current,
        door: SignupDoor::Api,
        typos: TypoCheck::Skip,
        form_id: None,
        page_url: None,
        meta: RequestMeta::default(),
        client_network: Some("10.0.0.1".into()),
        proof,
        keyed: false,
        form_rendered: None,
    }
}

/// Times one signup; answers µs.
async fn time_one(subscriptions: &Subscriptions, request: SignupRequest) -> f64 {
    let started = Instant::now();
    subscriptions.sign_up(request).await.expect("accepted");
    started.elapsed().as_secs_f64() * 1e6
}

async fn signup_rows(store_name: &str, store: &SharedStore, dns: &DnsServer, n: usize) {
    let plain = service(store, false, None);
    let proof = service(store, true, None);
    let mx = service(store, false, Some(dns.addr));
    let tag = store_name.to_lowercase();
    let pow = proof
        .config()
        .firewall
        .proof_of_work()
        .expect("the proof of work is on");
    let payloads: Vec<String> = (0..n)
        .map(|_| solved(&pow.challenge(Utc::now()).expect("randomness")))
        .collect();
    // Warm up the store, and the cache of the one domain the cached row uses.
    for i in 0..50 {
        time_one(&plain, signup(&format!("w{i}-{tag}@bench.example"), None)).await;
    }
    time_one(&mx, signup(&format!("w-{tag}@n0.wild.test"), None)).await;

    // Round robin, so that the store grows alike under every row.
    let mut rows = [(); 4].map(|()| Vec::with_capacity(n));
    for (i, payload) in payloads.into_iter().enumerate() {
        let plain_address = format!("a{i}-{tag}@bench.example");
        rows[0].push(time_one(&plain, signup(&plain_address, None)).await);
        let proof_address = format!("p{i}-{tag}@bench.example");
        rows[1].push(time_one(&proof, signup(&proof_address, Some(payload))).await);
        let cached = format!("c{i}-{tag}@n0.wild.test");
        rows[2].push(time_one(&mx, signup(&cached, None)).await);
        let uncached = format!("u@{tag}{i}.wild.test");
        rows[3].push(time_one(&mx, signup(&uncached, None)).await);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let reference = mean(&rows[0]);
    let names = [
        "without proof and MX check",
        "with the proof of work",
        "with the MX check, cached",
        "with the MX check, uncached",
    ];
    for (name, mut row) in names.into_iter().zip(rows) {
        row.sort_by(f64::total_cmp);
        let at = |q: f64| row[((row.len() - 1) as f64 * q).round() as usize];
        println!(
            "| {store_name}: {name} | {} | {} | {} | {:.2} |",
            show(mean(&row)),
            show(at(0.5)),
            show(at(0.99)),
            mean(&row) / reference
        );
    }
}

async fn accept_once(
    name: &str,
    firewall: &Firewall,
    store: &dyn Store,
    pow: &optin::firewall::ProofOfWork,
    n: usize,
) {
    let now = Utc::now();
    let payloads: Vec<String> = (0..n)
        .map(|_| solved(&pow.challenge(now).expect("randomness")))
        .collect();
    report(
        name,
        time_each(n, |i| {
            let payload = &payloads[i];
            async move {
                firewall
                    .verify_proof(store, Some(payload), now)
                    .await
                    .expect("accepted");
            }
        })
        .await,
    );
}

/// Times each of `n` operations on its own; answers the durations in µs, sorted.
async fn time_each<F, Fut>(n: usize, mut operation: F) -> Vec<f64>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut micros = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        operation(i).await;
        micros.push(started.elapsed().as_secs_f64() * 1e6);
    }
    micros.sort_by(f64::total_cmp);
    micros
}

fn report(name: &str, sorted_micros: Vec<f64>) {
    let mean = sorted_micros.iter().sum::<f64>() / sorted_micros.len() as f64;
    let at = |q: f64| sorted_micros[((sorted_micros.len() - 1) as f64 * q).round() as usize];
    println!(
        "| {name} | {} | {} | {} |",
        show(mean),
        show(at(0.5)),
        show(at(0.99))
    );
}

fn show(micros: f64) -> String {
    if micros >= 1000.0 {
        format!("{:.2} ms", micros / 1000.0)
    } else {
        format!("{micros:.1} µs")
    }
}

fn solved(challenge: &Challenge) -> String {
    let number = (0..=challenge.maxnumber)
        .find(|n| {
            hex::encode(Sha256::digest(format!("{}{n}", challenge.salt))) == challenge.challenge
        })
        .expect("a solution");
    STANDARD.encode(
        serde_json::json!({
            "algorithm": challenge.algorithm, "challenge": challenge.challenge,
            "number": number, "salt": challenge.salt, "signature": challenge.signature,
        })
        .to_string(),
    )
}

/// The tests' dnslib server, stopped on drop.
struct DnsServer {
    addr: SocketAddr,
    child: Child,
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
        let port: u16 = line.trim().parse().expect("a port");
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private redis-server without persistence on a free port, killed on drop.
struct RedisServer {
    url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = tempfile::tempdir().ok()?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed().as_secs() > 10 {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(Self {
            url: format!("redis://127.0.0.1:{port}"),
            child,
            _dir: dir,
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
