//! SMTP connections with `TCP_NODELAY`, kept open and reused between sends.
//!
//! lettre's own pool opens its sockets with Nagle's algorithm on (lettre 0.11.23 never
//! sets `TCP_NODELAY`). lettre writes a message body and the closing `\r\n.\r\n` as two
//! writes; Nagle holds the second until the server acknowledges the first, and the
//! server delays that ACK by 40 ms on Linux. Every mail then cost ~45 ms per connection,
//! which capped the outbox drain at ~85 mails/s with four workers. Here we open the TCP
//! connection ourselves, set `TCP_NODELAY`, and hand it to lettre's SMTP client
//! (`connect_with_transport`), which still does EHLO, STARTTLS, AUTH and the send.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

use super::transport::TransportError;

/// Idle connections older than this are closed rather than reused, as lettre's pool does.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// A connection idle for longer is checked with NOOP first: the server may have closed it.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);

/// How a new connection is secured after connecting in plain text.
pub(super) enum StartTls {
    Never,
    /// Upgrade when the server offers STARTTLS.
    IfOffered(TlsParameters),
    /// Refuse to send unless the server offers STARTTLS.
    Required(TlsParameters),
}

pub(super) struct SmtpPool {
    host: String,
    port: u16,
    starttls: StartTls,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    /// Connections between sends, with when they were last used. Each worker takes one
    /// at a time, so the pool holds at most as many as there are workers.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl SmtpPool {
    pub(super) fn new(
        host: String,
        port: u16,
        starttls: StartTls,
        credentials: Option<Credentials>,
        timeout: Duration,
    ) -> Self {
        Self {
            host,
            port,
            starttls,
            credentials,
            timeout,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `email` (the formatted message) on a pooled or new connection.
    pub(super) async fn send(
        &self,
        envelope: &Envelope,
        email: &[u8],
    ) -> Result<(), TransportError> {
        let mut connection = match self.take_idle().await {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        let sent = tokio::time::timeout(self.timeout, connection.send(envelope, email)).await;
        match sent {
            Ok(result) => {
                // lettre marks a connection broken after any error on it; sound ones return.
                if !connection.has_broken() {
                    self.put_idle(connection);
                }
                result
                    .map(drop)
                    .map_err(super::transport::classify_smtp_error)
            }
            // Cut off mid-command: the session's state is unknown, so it is dropped.
            Err(_) => Err(self.timed_out()),
        }
    }

    /// A connection from the pool that is still fit for use, if any.
    async fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut connection, last_used) = self.lock().pop()?;
            let idle_for = last_used.elapsed();
            if idle_for > MAX_IDLE {
                let _ = tokio::time::timeout(self.timeout, connection.quit()).await;
                continue;
            }
            if idle_for > CHECK_AFTER_IDLE {
                let alive = tokio::time::timeout(self.timeout, connection.test_connected()).await;
                if alive != Ok(true) {
                    continue;
                }
            }
            return Some(connection);
        }
    }

    fn put_idle(&self, connection: AsyncSmtpConnection) {
        self.lock().push((connection, Instant::now()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(AsyncSmtpConnection, Instant)>> {
        // Nothing panics while holding the lock, but a poisoned pool must not stop mail.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, TransportError> {
        tokio::time::timeout(self.timeout, self.open())
            .await
            .map_err(|_| self.timed_out())?
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, TransportError> {
        // An IPv6 literal comes bracketed from the URL.
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((host, self.port))
            .await
            .map_err(|error| {
                TransportError::Transient(format!(
                    "cannot connect to the mail server {}:{}: {error}",
                    self.host, self.port
                ))
            })?;
        tcp.set_nodelay(true).map_err(|error| {
            TransportError::Transient(format!("cannot set TCP_NODELAY: {error}"))
        })?;
        let mut connection =
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(super::transport::classify_smtp_error)?;
        let tls = match &self.starttls {
            StartTls::Never => None,
            StartTls::IfOffered(tls) => connection.can_starttls().then_some(tls),
            StartTls::Required(tls) => Some(tls),
        };
        if let Some(tls) = tls {
            connection
                .starttls(tls.clone(), &self.hello)
                .await
                .map_err(super::transport::classify_smtp_error)?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(super::transport::classify_smtp_error)?;
        }
        Ok(connection)
    }

    fn timed_out(&self) -> TransportError {
        TransportError::Transient(format!(
            "the mail server did not answer within {} s",
            self.timeout.as_secs()
        ))
    }
}
