//! A real HTTP/1.1 receiver for webhooks, in the test process on a free port: it records
//! every request (headers and body) and answers as told: a status, a redirect, or
//! nothing at all (it hangs, holding the connection open).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// How the receiver answers the next requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// `302 Found` with this `Location`.
    Redirect(String),
    /// Read the request, then never answer.
    Hang,
}

#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    /// Names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The status the receiver answered; `None` when it hung.
    pub answered: Option<u16>,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

struct Shared {
    answer: Mutex<Answer>,
    received: Mutex<Vec<ReceivedRequest>>,
    arrived: Notify,
}

pub struct WebhookReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    /// Listens on 127.0.0.1, port 0; answers 200 until told otherwise.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let shared = Arc::new(Shared {
            answer: Mutex::new(Answer::Status(200)),
            received: Mutex::new(Vec::new()),
            arrived: Notify::new(),
        });
        let for_server = shared.clone();
        let server = tokio::spawn(async move {
            // Connections live in this set, so that stopping the server drops them all,
            // hanging ones included.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            connections.spawn(serve(stream, for_server.clone()));
                        }
                    }
                    Some(_) = connections.join_next() => {}
                }
            }
        });
        Self {
            addr,
            shared,
            server,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn answer(&self, answer: Answer) {
        *self.shared.answer.lock().unwrap() = answer;
    }

    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests have arrived, or panics after `within`.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<ReceivedRequest> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.shared.arrived.notified();
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                tokio::time::timeout_at(deadline, arrived).await.is_ok(),
                "{count} webhook requests expected within {within:?}, {} arrived",
                self.received().len()
            );
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Serves one keep-alive connection, request after request.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buffer = Vec::new();
    loop {
        let Some(mut request) = read_request(&mut stream, &mut buffer).await else {
            return;
        };
        let answer = shared.answer.lock().unwrap().clone();
        request.answered = match &answer {
            Answer::Status(code) => Some(*code),
            Answer::Redirect(_) => Some(302),
            Answer::Hang => None,
        };
        shared.received.lock().unwrap().push(request);
        shared.arrived.notify_waiters();
        let response = match answer {
            Answer::Status(code) => {
                format!("HTTP/1.1 {code} Answer\r\ncontent-length: 2\r\n\r\nok")
            }
            Answer::Redirect(location) => {
                format!("HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n")
            }
            Answer::Hang => {
                std::future::pending::<()>().await;
                unreachable!()
            }
        };
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one request with a `content-length` body; `None` when the peer closes.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<ReceivedRequest> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buffer.len() < body_start + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = buffer[body_start..body_start + length].to_vec();
    buffer.drain(..body_start + length);
    Some(ReceivedRequest {
        method,
        path,
        headers,
        body,
        answered: None,
    })
}

/// The Python package's verdict on a received request: `Ok` or `Err(why)`.
pub fn python_verify(secret: &str, request: &ReceivedRequest) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("request.json");
    let json = serde_json::json!({
        "secret": secret,
        "headers": request.headers,
        "body": String::from_utf8(request.body.clone()).unwrap(),
    });
    std::fs::write(&file, json.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/verify.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg(&file)
        .output()
        .expect("run tests/webhooks/verify.sh");
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match output.status.code() {
        Some(0) if stdout == "pass" => Ok(()),
        Some(1) => Err(stdout),
        _ => panic!(
            "verify.sh could not run the check ({}): {stdout} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}
