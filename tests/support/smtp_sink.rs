//! A real SMTP server inside the test process (mailin-embedded), on its own free port.
//!
//! It keeps every message it accepts, and can be switched to refuse recipients with a
//! temporary (451) or permanent (550) reply for fault tests. mailin-embedded's server
//! cannot be stopped, so its threads live until the test process ends; each sink has its
//! own port, so tests never see each other's mail.

#![allow(dead_code)]

use std::io;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders};
use mailin_embedded::{Handler, Response, Server, SslConfig};

const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How the sink answers `RCPT TO` while rejecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// 451: a well-behaved client retries later.
    Temporary,
    /// 550: a well-behaved client gives up.
    Permanent,
    /// 550 quoting the recipient, as many real servers do.
    PermanentEchoingRecipient,
}

impl Rejection {
    fn response(self, to: &str) -> Response {
        match self {
            Rejection::PermanentEchoingRecipient => Response::custom(
                550,
                format!("5.1.1 <{to}>: Recipient address rejected (smtp sink)"),
            ),
            Rejection::Temporary => {
                Response::custom(451, "4.3.0 Try again later (smtp sink)".into())
            }
            Rejection::Permanent => {
                Response::custom(550, "5.1.1 Mailbox unavailable (smtp sink)".into())
            }
        }
    }
}

/// One message as it arrived: the envelope and the raw bytes after the DATA command.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    pub raw: Vec<u8>,
}

#[derive(Default)]
struct SinkState {
    messages: Vec<ReceivedMail>,
    rejecting: Option<Rejection>,
    /// Recipients refused one by one, while the others are accepted.
    rejected_recipients: Vec<(String, Rejection)>,
}

type SharedState = Arc<Mutex<SinkState>>;

fn lock(state: &SharedState) -> MutexGuard<'_, SinkState> {
    // A test that panicked while holding the lock must not hide every later message.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct SmtpSink {
    port: u16,
    state: SharedState,
}

impl SmtpSink {
    /// Starts a server on a free port of 127.0.0.1. It accepts connections as soon as
    /// this returns, because the listening socket is bound here.
    pub fn start() -> SmtpSink {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("bind a free port for the SMTP sink");
        let port = listener
            .local_addr()
            .expect("local address of the SMTP sink")
            .port();
        let state = SharedState::default();
        let mut server = Server::new(SessionHandler::new(state.clone()));
        server
            .with_name("smtp-sink.test")
            .with_ssl(SslConfig::None)
            .expect("a plain SMTP server needs no TLS setup")
            .with_num_threads(4)
            .with_tcp_listener(listener);
        std::thread::Builder::new()
            .name(format!("smtp-sink-{port}"))
            .spawn(move || {
                // `serve` only returns on a listener failure; the tests waiting for mail report it.
                if let Err(error) = server.serve() {
                    eprintln!("SMTP sink on port {port} stopped: {error}");
                }
            })
            .expect("spawn the SMTP sink thread");
        SmtpSink { port, state }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL for `MailTransport::from_url`: plain SMTP, since the sink offers no TLS.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        lock(&self.state).messages.clone()
    }

    /// Waits until at least `count` messages arrived, then returns them all; panics with
    /// what did arrive when `timeout` passes first.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} message(s) within {timeout:?}, got {}",
                messages.len()
            );
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Refuses every recipient from now on.
    pub fn set_rejecting(&self, rejection: Rejection) {
        lock(&self.state).rejecting = Some(rejection);
    }

    /// Refuses only this recipient (compared without case) from now on.
    pub fn reject_recipient(&self, address: &str, rejection: Rejection) {
        lock(&self.state)
            .rejected_recipients
            .push((address.to_ascii_lowercase(), rejection));
    }

    pub fn set_accepting(&self) {
        lock(&self.state).rejecting = None;
    }
}

/// mailin-embedded clones the handler for each connection, so the per-message fields
/// belong to one SMTP session and only `state` is shared.
#[derive(Clone)]
struct SessionHandler {
    state: SharedState,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl SessionHandler {
    fn new(state: SharedState) -> Self {
        Self {
            state,
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        }
    }
}

impl Handler for SessionHandler {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_string();
        self.to.clear();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let state = lock(&self.state);
        let refused = state.rejecting.or_else(|| {
            state
                .rejected_recipients
                .iter()
                .find(|(address, _)| address.eq_ignore_ascii_case(to))
                .map(|(_, rejection)| *rejection)
        });
        drop(state);
        if let Some(rejection) = refused {
            return rejection.response(to);
        }
        self.to.push(to.to_string());
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = ReceivedMail {
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            raw: std::mem::take(&mut self.data),
        };
        lock(&self.state).messages.push(mail);
        mailin_embedded::response::OK
    }
}

impl ReceivedMail {
    fn parsed(&self) -> mail_parser::Message<'_> {
        MessageParser::default()
            .parse(&self.raw)
            .expect("the SMTP sink received a message mail-parser cannot read")
    }

    /// The decoded subject.
    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_string()
    }

    /// A top-level header's value as sent, unfolded and trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        let message = self.parsed();
        let raw = message.header_raw(name)?;
        Some(unfold(raw))
    }

    /// `type/subtype` of the whole message, such as `multipart/alternative`.
    pub fn content_type(&self) -> String {
        let message = self.parsed();
        message.content_type().map(mime_type).unwrap_or_default()
    }

    /// `type/subtype` of each leaf part, in the order they appear.
    pub fn part_types(&self) -> Vec<String> {
        let message = self.parsed();
        message
            .parts
            .iter()
            .filter(|part| !matches!(part.body, mail_parser::PartType::Multipart(_)))
            .map(|part| part.content_type().map(mime_type).unwrap_or_default())
            .collect()
    }

    /// The decoded `text/plain` part (not text derived from the HTML).
    pub fn text_body(&self) -> String {
        self.part_text("text", "plain")
    }

    /// The decoded `text/html` part.
    pub fn html_body(&self) -> String {
        self.part_text("text", "html")
    }

    /// The http(s) URLs in the text part, in order.
    pub fn links(&self) -> Vec<String> {
        find_links(&self.text_body())
    }

    /// The decoded bytes of the attachment named `name`, if the mail carries one.
    pub fn attachment(&self, name: &str) -> Option<Vec<u8>> {
        let message = self.parsed();
        let part = message
            .attachments()
            .find(|part| part.attachment_name() == Some(name))?;
        Some(part.contents().to_vec())
    }

    /// The confirmation link of a confirmation mail.
    pub fn confirmation_link(&self) -> String {
        self.links()
            .into_iter()
            .find(|l| l.contains("/confirm/"))
            .expect("a confirmation link in the text part")
    }

    /// The six-digit confirmation code in the plain-text part.
    pub fn confirmation_code(&self) -> String {
        self.text_body()
            .split_whitespace()
            .find(|word| word.len() == 6 && word.bytes().all(|b| b.is_ascii_digit()))
            .expect("a six-digit code in the text part")
            .to_string()
    }

    fn part_text(&self, ctype: &str, subtype: &str) -> String {
        let message = self.parsed();
        let part = message.parts.iter().find(|part| {
            part.content_type().is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case(ctype)
                    && ct
                        .subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case(subtype))
            })
        });
        part.and_then(|part| part.text_contents())
            .unwrap_or_default()
            .to_string()
    }
}

fn mime_type(content_type: &mail_parser::ContentType<'_>) -> String {
    match content_type.subtype() {
        Some(subtype) => format!("{}/{}", content_type.ctype(), subtype).to_ascii_lowercase(),
        None => content_type.ctype().to_ascii_lowercase(),
    }
}

fn unfold(raw: &str) -> String {
    raw.split(['\r', '\n'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// URLs end at whitespace or at a character that cannot end one in running text.
pub fn find_links(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
        .filter(|word| word.starts_with("http://") || word.starts_with("https://"))
        .map(|word| word.trim_end_matches(['.', ',', ')', ';', ':']).to_string())
        .collect()
}
