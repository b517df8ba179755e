//! The real `optin` binary as a child process, for crash and signal tests.
//!
//! It is configured the way an operator deploys it: every setting from `OPTIN_*`
//! environment variables, plus a configuration file that holds only the example
//! subscription types (the service requires types, and a list of tables does not fit in
//! an environment variable). Its log goes to a file that failing tests print.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tempfile::TempDir;

use super::app::{ADMIN_KEY, SEND_KEY};
pub use super::free_port;

/// How long a fresh process may take until `/readyz` answers 200.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const EXAMPLE_TYPES: &str = include_str!("../../src/example_subscription_types.toml");

/// What differs between the processes of a test.
#[derive(Clone, Debug)]
pub struct ProcessSettings {
    pub store_url: String,
    pub mail_url: String,
    pub lease_secs: u64,
    /// Further settings, as `OPTIN_<SECTION>__<KEY>` names and values.
    pub extra_env: Vec<(String, String)>,
    /// Appended to the configuration file: tables that do not fit in a variable, such
    /// as `[[webhooks.endpoints]]`.
    pub extra_toml: String,
}

impl ProcessSettings {
    /// A 2 s lease, so that tests see a dead worker's job taken again quickly.
    pub fn new(store_url: &str, mail_url: &str) -> Self {
        Self {
            store_url: store_url.to_string(),
            mail_url: mail_url.to_string(),
            lease_secs: 2,
            extra_env: Vec::new(),
            extra_toml: String::new(),
        }
    }

    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.extra_env.push((name.to_string(), value.to_string()));
        self
    }
}

pub struct OptinProcess {
    pub port: u16,
    pub address: String,
    child: Option<Child>,
    log_path: PathBuf,
    dir: TempDir,
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

impl OptinProcess {
    /// Starts `optin serve` and waits until `/readyz` answers 200.
    pub async fn start(settings: &ProcessSettings) -> OptinProcess {
        let mut last_log = String::new();
        // Another process may take the probed port before the child binds it: try again.
        for _ in 0..3 {
            let mut process = Self::spawn(settings, free_port());
            match process.wait_ready().await {
                Ok(()) => return process,
                Err(log) => last_log = log,
            }
        }
        panic!("optin serve did not become ready; its log:\n{last_log}");
    }

    /// Starts `optin serve` and waits only until it listens (`/healthz` answers 200), for
    /// tests of a service whose store is not there yet.
    pub async fn start_unready(settings: &ProcessSettings) -> OptinProcess {
        let mut last_log = String::new();
        for _ in 0..3 {
            let mut process = Self::spawn(settings, free_port());
            match process.wait_for("/healthz").await {
                Ok(()) => return process,
                Err(log) => last_log = log,
            }
        }
        panic!("optin serve did not listen; its log:\n{last_log}");
    }

    fn spawn(settings: &ProcessSettings, port: u16) -> OptinProcess {
        let dir = tempfile::tempdir().expect("a temporary folder for the process");
        let config_path = dir.path().join("optin.toml");
        let config = format!("{}\n{EXAMPLE_TYPES}", settings.extra_toml);
        std::fs::write(&config_path, config).expect("write optin.toml");
        Self::launch(dir, port, |command| {
            command.arg("--config").arg(&config_path);
            deployed_env(command, settings, port);
        })
    }

    /// Spawns `optin serve` in an empty folder with no configuration file and only `env`
    /// (plus the bind address of a free port, which the development setup's links
    /// follow), without waiting: for tests of what the service does with little or no
    /// configuration.
    pub fn spawn_bare(env: &[(&str, &str)]) -> OptinProcess {
        let port = free_port();
        let dir = tempfile::tempdir().expect("a temporary folder for the process");
        Self::launch(dir, port, |command| {
            command
                .env("OPTIN_SERVER__BIND", format!("127.0.0.1:{port}"))
                .env("OPTIN_LOG__FORMAT", "text")
                .envs(env.iter().copied());
        })
    }

    /// Spawns `optin serve` in `dir`, logging to `dir/optin.log`; `configure` adds the
    /// arguments and environment.
    fn launch(dir: TempDir, port: u16, configure: impl FnOnce(&mut Command)) -> OptinProcess {
        let log_path = dir.path().join("optin.log");
        let log = File::create(&log_path).expect("create the process log");
        let mut command = optin_command(dir.path());
        command
            .arg("serve")
            .stdout(Stdio::from(log.try_clone().expect("clone the log handle")))
            .stderr(Stdio::from(log));
        configure(&mut command);
        let child = command.spawn().expect("spawn the optin binary");
        OptinProcess {
            port,
            address: format!("http://127.0.0.1:{port}"),
            child: Some(child),
            log_path,
            dir,
        }
    }

    /// As [`Self::spawn_bare`], then waits until `/readyz` answers 200.
    pub async fn start_bare(env: &[(&str, &str)]) -> OptinProcess {
        let mut process = Self::spawn_bare(env);
        if let Err(log) = process.wait_ready().await {
            panic!("optin serve did not become ready; its log:\n{log}");
        }
        process
    }

    /// `GET /v1/eligibility` of one address for one type, as a sender asks it.
    pub async fn eligibility(&self, email: &str, subscription_type: &str) -> serde_json::Value {
        let response = reqwest::Client::new()
            .get(self.url("/v1/eligibility"))
            .query(&[("email", email), ("subscription_type", subscription_type)])
            .bearer_auth(SEND_KEY)
            .send()
            .await
            .expect("eligibility answers");
        assert_eq!(response.status(), 200, "eligibility of {subscription_type}");
        response.json().await.expect("an eligibility answer")
    }

    /// The folder the process runs in (its `./data` is there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Polls `/readyz`; on failure kills the child and gives its log.
    async fn wait_ready(&mut self) -> Result<(), String> {
        self.wait_for("/readyz").await
    }

    /// Polls `path` until it answers 200; on failure kills the child and gives its log.
    async fn wait_for(&mut self, path: &str) -> Result<(), String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .expect("an HTTP client");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.try_status() {
                return Err(format!("(exited with {status})\n{}", self.log()));
            }
            if let Ok(response) = client.get(self.url(path)).send().await {
                if response.status() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                self.kill9();
                return Err(format!(
                    "(not ready within {READY_TIMEOUT:?})\n{}",
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the process was started").id()
    }

    /// The exit status when the process has ended, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().expect("query the child's status"))
    }

    /// SIGKILL, as a crash or an OOM kill would: no cleanup of any kind. Reaps the child.
    pub fn kill9(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, as an orchestrator stopping the service sends it.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to end.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits up to `timeout` until the log contains `needle`; answers the whole log.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "`{needle}` not in the log within {timeout:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for OptinProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The `optin` binary, run in `dir`, with nothing from the test runner's environment
/// that could configure it.
pub fn optin_command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_optin"));
    command.current_dir(dir).stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OPTIN_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

/// Every setting as an operator deploys it, from `OPTIN_*` variables; `extra_env` last,
/// so that it can override any of them.
fn deployed_env(command: &mut Command, settings: &ProcessSettings, port: u16) {
    command
        .env("OPTIN_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env(
            "OPTIN_SERVER__PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .env("OPTIN_STORE__URL", &settings.store_url)
        .env("OPTIN_MAIL__URL", &settings.mail_url)
        .env("OPTIN_MAIL__FROM", "Optin Test <no-reply@optin.test>")
        .env("OPTIN_MAIL__LEASE_SECS", settings.lease_secs.to_string())
        .env(
            "OPTIN_SECURITY__SIGNING_KEYS",
            format!("k1:{}", STANDARD.encode([1u8; 32])),
        )
        .env("OPTIN_SECURITY__INDEX_KEY", STANDARD.encode([2u8; 32]))
        .env(
            "OPTIN_SECURITY__API_KEYS",
            format!(
                "admin-test:admin:{},send-test:send:{}",
                sha256_hex(ADMIN_KEY),
                sha256_hex(SEND_KEY)
            ),
        )
        .env("OPTIN_LOG__FORMAT", "text")
        .env("OPTIN_LOG__FILTER", "info")
        // Test addresses are at domains no DNS answers for, and tests have no network.
        .env("OPTIN_SIGNUP__CHECK_MX", "false")
        .envs(settings.extra_env.iter().map(|(k, v)| (k, v)));
}

/// Runs one `optin` command (`check-config`, `health`, …) configured as [`OptinProcess`]
/// is, with the example types (and `extra_toml`) in `--config`, on `port`; answers its
/// exit status and output.
pub fn run_configured(settings: &ProcessSettings, port: u16, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("a temporary folder for the command");
    let config_path = dir.path().join("optin.toml");
    let config = format!("{}\n{EXAMPLE_TYPES}", settings.extra_toml);
    std::fs::write(&config_path, config).expect("write optin.toml");
    let mut command = optin_command(dir.path());
    command.args(args).arg("--config").arg(&config_path);
    deployed_env(&mut command, settings, port);
    command.output().expect("run the optin binary")
}
