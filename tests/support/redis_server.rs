//! A throwaway `redis-server` per test: a free port, a temporary folder, no persistence,
//! killed on drop. Also a three-node Redis Cluster built from such servers.
//!
//! Tests talk to a real server, never a mock. When `redis-server` is missing the tests
//! fail loudly instead of skipping, so a green run always means Redis was exercised.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to answer PING after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RedisServer {
    pub url: String,
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
    dir: TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with_args(&[])
    }

    /// Starts a server with extra `redis-server` arguments, e.g. `["--appendonly", "yes"]`.
    pub fn start_with_args(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder for redis-server");
        let args: Vec<String> = args.iter().map(ToString::to_string).collect();
        // Another process may grab the free port between our probe and redis-server's
        // bind; then redis-server exits and we try another port.
        let mut last_failure = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn_and_wait(port, dir.path(), &args) {
                Ok(child) => {
                    return Self {
                        url: format!("redis://127.0.0.1:{port}"),
                        port,
                        args,
                        child: Some(child),
                        dir,
                    };
                }
                Err(failure) => last_failure = failure,
            }
        }
        panic!("redis-server did not start: {last_failure}");
    }

    /// The server's process id, to signal it (e.g. SIGSTOP to simulate a stall).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server, as a crash would. The port and folder stay reserved for `restart`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and folder, after `stop`.
    pub fn restart(&mut self) {
        self.stop();
        let child =
            spawn_and_wait(self.port, self.dir.path(), &self.args).unwrap_or_else(|failure| {
                panic!(
                    "redis-server did not restart on port {}: {failure}",
                    self.port
                )
            });
        self.child = Some(child);
    }

    /// A synchronous connection for a test to look at raw keys.
    pub fn connection(&self) -> redis::Connection {
        let client = redis::Client::open(self.url.as_str()).expect("a valid redis url");
        client
            .get_connection_with_timeout(Duration::from_secs(2))
            .expect("a connection to the test redis-server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Three masters, no replicas, every slot assigned: enough to prove that nothing needs a
/// cross-slot operation.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    /// `redis+cluster://h1:p1,h2:p2,h3:p3`, the form the service is configured with.
    pub url: String,
}

impl RedisCluster {
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                let bus_port = free_port().to_string();
                RedisServer::start_with_args(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    &bus_port,
                    // Long enough that a node stopped briefly in a fault test is not
                    // marked failed, even on a loaded machine.
                    "--cluster-node-timeout",
                    "15000",
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let output = Command::new(binary("redis-cli"))
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self {
            url: format!("redis+cluster://{}", addresses.join(",")),
            nodes,
        };
        cluster.wait_until_ok(START_TIMEOUT);
        cluster
    }

    /// Waits until every node reports `cluster_state:ok`: after `create`, or after a node
    /// was restarted, the cluster itself needs a moment before it serves all slots.
    pub fn wait_until_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        for node in &self.nodes {
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut node.connection())
                    .expect("CLUSTER INFO");
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the test cluster did not reach cluster_state:ok within {within:?}: {info}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A local port free at the moment of asking, for a child process (`optin serve`,
/// `redis-server`) that must be told its port. The port is released again, so another
/// process may take it before the child binds it: callers start the child again on a
/// fresh port when it cannot bind. In-process servers bind port 0 and keep the listener
/// instead (see `app::TestApp`). The one such helper; it lives here because
/// `store_contract` includes only this file.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free local port")
}

fn binary(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` is not on PATH. The Redis tests need a real Redis: run the test command from \
             README.md, which installs redis-server and redis-cli first."
        )
    })
}

/// Spawns redis-server and waits until it answers PING; kills it again when it does not.
fn spawn_and_wait(port: u16, dir: &Path, args: &[String]) -> Result<Child, String> {
    let mut child = Command::new(binary("redis-server"))
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot spawn redis-server: {e}"))?;
    let client =
        redis::Client::open(format!("redis://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            return Err(format!(
                "redis-server on port {port} exited with {status}: {stderr}"
            ));
        }
        let pong = client
            .get_connection_with_timeout(Duration::from_millis(200))
            .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
        if pong.is_ok() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "redis-server on port {port} did not answer PING within {START_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The events of a Redis event log (`optin:{s<b>}:ev:<cid>`): each stored behind its
/// length, 4 bytes big-endian. Read here independently of the store's own reader, so a
/// test sees what is really stored.
pub fn event_log_frames(mut log: &[u8]) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    while let Some((length, rest)) = log.split_first_chunk::<4>() {
        let length = u32::from_be_bytes(*length) as usize;
        assert!(rest.len() >= length, "the event log ends inside an event");
        events.push(rest[..length].to_vec());
        log = &rest[length..];
    }
    assert!(log.is_empty(), "the event log ends inside a length");
    events
}

/// An event log made of these events, as the store writes it.
pub fn event_log(events: &[Vec<u8>]) -> Vec<u8> {
    let mut log = Vec::new();
    for event in events {
        log.extend_from_slice(&u32::try_from(event.len()).unwrap().to_be_bytes());
        log.extend_from_slice(event);
    }
    log
}
