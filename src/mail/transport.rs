//! Where mail goes: an SMTP server (plain, STARTTLS or implicit TLS, pooled), or a folder
//! of `.eml` files for local use.
//!
//! The transport is chosen by URL:
//! - `smtp://[user:pass@]host[:port][?tls=starttls|opportunistic|none]`:
//!   - `starttls` requires STARTTLS (default port 587);
//!   - `opportunistic` upgrades when the server offers it (default port 25);
//!   - `none` never encrypts (default port 25);
//!   - without `tls`, STARTTLS is required when the URL carries credentials, so that a
//!     password never crosses the network in clear, and opportunistic otherwise.
//! - `smtps://[user:pass@]host[:port]`: implicit TLS (default port 465).
//! - `file://DIR`: writes each message to `DIR/<uuid>.eml` (mode 0600: it holds the
//!   address); `DIR` may be relative (`file://./data/mail`) and is created (mode 0700)
//!   when missing.
//!
//! User name and password are percent-decoded. They never appear in `Debug`, in
//! [`MailTransport::describe`] or in an error.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::{
    AsyncSmtpTransportBuilder, PoolConfig, SMTP_PORT, SUBMISSIONS_PORT, SUBMISSION_PORT,
};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use url::Url;

use super::smtp_pool::{SmtpPool, StartTls};
use crate::domain::email::mask_addresses;

/// Bounds connecting and every SMTP command, so a dead server holds a worker for
/// seconds, not for lettre's default minute.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid mail URL: {0}")]
    InvalidUrl(String),
    #[error("cannot create the mail folder {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The server refused with a 5xx reply: sending the same message again won't help.
    #[error("the mail server refused the message: {0}")]
    Permanent(String),
    /// A permanent `5.1.x` reply: the recipient's mailbox or domain does not exist
    /// ([`crate::feedback::is_permanent_mailbox_failure`]), so the address is unreachable.
    #[error("the mail server says the mailbox does not exist: {0}")]
    MailboxUnavailable(String),
    /// Connection refused, timeout, TLS trouble, a 4xx reply, a full disk: worth retrying.
    #[error("sending the message failed (worth retrying): {0}")]
    Transient(String),
}

impl TransportError {
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            TransportError::Permanent(_) | TransportError::MailboxUnavailable(_)
        )
    }

    pub fn is_mailbox_unavailable(&self) -> bool {
        matches!(self, TransportError::MailboxUnavailable(_))
    }
}

/// Sends mail. Once it has sent over SMTP, drop it inside the Tokio runtime: lettre's
/// connection pool closes its connections on a task.
pub struct MailTransport {
    sender: Sender,
    description: String,
}

enum Sender {
    /// Implicit TLS (`smtps://`), through lettre's own pool.
    Smtp {
        builder: AsyncSmtpTransportBuilder,
        /// Built on the first send, because lettre's pool spawns its cleanup task on the
        /// Tokio runtime and building it in `from_url` would panic outside one (as in a
        /// synchronous config check).
        pool: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    },
    /// Plain TCP, upgraded by STARTTLS when asked: our pool, with `TCP_NODELAY`.
    Pooled(SmtpPool),
    /// A folder of `.eml` files.
    File(PathBuf),
}

impl fmt::Debug for MailTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MailTransport")
            .field(&self.description)
            .finish()
    }
}

/// The scheme of a mail URL, lower-cased.
fn scheme_of(url: &str) -> Option<String> {
    url.split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase())
}

/// The host of the SMTP relay a mail URL names, without credentials or port: who
/// receives every address we mail. `None` for a `file://` transport (and for what
/// [`MailTransport::from_url`] refuses).
pub fn relay_host(url: &str) -> Option<String> {
    let url = url.trim();
    if !matches!(scheme_of(url).as_deref(), Some("smtp" | "smtps")) {
        return None;
    }
    Url::parse(url)
        .ok()?
        .host_str()
        .filter(|host| !host.is_empty())
        .map(str::to_string)
}

impl MailTransport {
    /// Builds a transport from its URL (see the module documentation). Creates the
    /// folder of a `file://` transport; opens no SMTP connection yet.
    pub fn from_url(url: &str) -> Result<Self, TransportError> {
        let url = url.trim();
        match scheme_of(url).as_deref() {
            Some("smtp" | "smtps") => smtp_transport(url),
            Some("file") => file_transport(&url["file://".len()..]),
            _ => Err(TransportError::InvalidUrl(
                "the URL must start with smtp://, smtps:// or file://".into(),
            )),
        }
    }

    /// Checks a URL as [`Self::from_url`] does, without creating a `file://` folder:
    /// for a check of the configuration that writes nothing.
    pub fn check_url(url: &str) -> Result<(), TransportError> {
        let url = url.trim();
        match scheme_of(url).as_deref() {
            Some("file") => file_folder(&url["file://".len()..]).map(drop),
            _ => Self::from_url(url).map(drop),
        }
    }

    /// Where mail goes, without secrets, for a startup log line, such as
    /// `smtp://mail.example.com:587 (starttls, authenticated)`.
    pub fn describe(&self) -> String {
        self.description.clone()
    }

    pub async fn send(&self, message: Message) -> Result<(), TransportError> {
        match &self.sender {
            Sender::Smtp { builder, pool } => {
                let smtp = pool.get_or_init(|| builder.clone().build());
                smtp.send(message)
                    .await
                    .map(drop)
                    .map_err(classify_smtp_error)
            }
            Sender::Pooled(pool) => pool.send(message.envelope(), &message.formatted()).await,
            Sender::File(dir) => write_eml(dir, message.formatted()).await,
        }
    }
}

/// An SMTP server's reply often echoes the recipient (`550 5.1.1 <jane@example.com>:
/// ...`), so its addresses are masked here, before the text can reach a log line or a
/// dead letter.
pub(super) fn classify_smtp_error(error: lettre::transport::smtp::Error) -> TransportError {
    let text = mask_addresses(&error.to_string());
    // The reply text (lettre's error source) starts with the enhanced status code.
    let enhanced = std::error::Error::source(&error).map(ToString::to_string);
    let code = error.status().map_or(0, u16::from);
    let first_word = enhanced
        .as_deref()
        .and_then(|t| t.split_whitespace().next());
    if crate::feedback::is_permanent_mailbox_failure(code, first_word) {
        TransportError::MailboxUnavailable(text)
    } else if error.is_permanent() {
        TransportError::Permanent(text)
    } else {
        TransportError::Transient(text)
    }
}

/// How an SMTP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    Plain,
    Opportunistic,
    StartTls,
    ImplicitTls,
}

impl Security {
    fn from_url(url: &Url, has_credentials: bool) -> Result<Self, TransportError> {
        let mut tls = None;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "tls" if tls.is_none() => tls = Some(value.into_owned()),
                "tls" => return Err(invalid("the tls parameter is given twice")),
                _ => return Err(invalid("the only query parameter an SMTP URL takes is tls")),
            }
        }
        match (url.scheme(), tls.as_deref()) {
            ("smtps", None) => Ok(Security::ImplicitTls),
            ("smtps", Some(_)) => Err(invalid(
                "smtps:// always uses TLS; leave out the tls parameter",
            )),
            (_, Some("none")) => Ok(Security::Plain),
            (_, Some("opportunistic")) => Ok(Security::Opportunistic),
            (_, Some("starttls")) => Ok(Security::StartTls),
            (_, Some(_)) => Err(invalid("tls must be starttls, opportunistic or none")),
            (_, None) if has_credentials => Ok(Security::StartTls),
            (_, None) => Ok(Security::Opportunistic),
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Security::Plain | Security::Opportunistic => SMTP_PORT,
            Security::StartTls => SUBMISSION_PORT,
            Security::ImplicitTls => SUBMISSIONS_PORT,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Security::Plain => "no tls",
            Security::Opportunistic => "opportunistic starttls",
            Security::StartTls => "starttls",
            Security::ImplicitTls => "implicit tls",
        }
    }

    fn lettre_tls(self, host: &str) -> Result<Tls, TransportError> {
        let parameters = || {
            TlsParameters::new(host.to_string())
                .map_err(|error| invalid(&format!("cannot set up TLS for the host: {error}")))
        };
        Ok(match self {
            Security::Plain => Tls::None,
            Security::Opportunistic => Tls::Opportunistic(parameters()?),
            Security::StartTls => Tls::Required(parameters()?),
            Security::ImplicitTls => Tls::Wrapper(parameters()?),
        })
    }
}

fn invalid(reason: &str) -> TransportError {
    TransportError::InvalidUrl(reason.to_string())
}

/// Not lettre's `AsyncSmtpTransport::from_url`: it spells the modes `tls=required`, sends
/// in clear when `tls` is left out even with credentials, ignores unknown parameters, and
/// always builds lettre's pool, while plain and STARTTLS connections go through ours.
/// Its ports and its percent-decoding of the credentials are the ones used here.
fn smtp_transport(raw: &str) -> Result<MailTransport, TransportError> {
    // `url::ParseError` describes the problem without echoing the URL and its password.
    let url = Url::parse(raw).map_err(|error| invalid(&error.to_string()))?;
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| invalid("the SMTP URL has no host"))?;
    if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
        return Err(invalid("an SMTP URL has no path; write smtp://host:port"));
    }
    let credentials = credentials(&url)?;
    let security = Security::from_url(&url, credentials.is_some())?;
    let port = url.port().unwrap_or(security.default_port());

    let authenticated = if credentials.is_some() {
        ", authenticated"
    } else {
        ""
    };
    let sender = match security {
        Security::ImplicitTls => {
            let mut builder: AsyncSmtpTransportBuilder =
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(port)
                    .tls(security.lettre_tls(host)?)
                    .timeout(Some(SMTP_TIMEOUT))
                    // lettre's default pool: up to 10 connections, idle ones closed after 60 s.
                    .pool_config(PoolConfig::new());
            if let Some(credentials) = credentials {
                builder = builder.credentials(credentials);
            }
            Sender::Smtp {
                builder,
                pool: OnceLock::new(),
            }
        }
        Security::Plain | Security::Opportunistic | Security::StartTls => {
            let starttls = match security.lettre_tls(host)? {
                Tls::Opportunistic(parameters) => StartTls::IfOffered(parameters),
                Tls::Required(parameters) => StartTls::Required(parameters),
                _ => StartTls::Never,
            };
            Sender::Pooled(SmtpPool::new(
                host.to_string(),
                port,
                starttls,
                credentials,
                SMTP_TIMEOUT,
            ))
        }
    };
    Ok(MailTransport {
        sender,
        description: format!(
            "{}://{host}:{port} ({}{authenticated})",
            url.scheme(),
            security.label()
        ),
    })
}

fn credentials(url: &Url) -> Result<Option<Credentials>, TransportError> {
    let decode = |raw: &str| {
        percent_decode(raw)
            .ok_or_else(|| invalid("the user name or password is not valid percent-encoded UTF-8"))
    };
    match (url.username(), url.password()) {
        ("", None) => Ok(None),
        (user, Some(password)) if !user.is_empty() => {
            Ok(Some(Credentials::new(decode(user)?, decode(password)?)))
        }
        _ => Err(invalid(
            "SMTP credentials need both a user name and a password",
        )),
    }
}

/// `url` leaves user and password percent-encoded; a password may well contain `@` or `:`.
/// `percent_decode_str` passes a malformed escape (`%4`, `%zz`) through as it is; such a
/// URL was written wrongly, so it is refused rather than sent as a different password.
fn percent_decode(raw: &str) -> Option<String> {
    let well_formed = raw.match_indices('%').all(|(at, _)| {
        raw.get(at + 1..at + 3)
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// The folder a `file://` URL names.
fn file_folder(dir: &str) -> Result<&Path, TransportError> {
    if dir.is_empty() {
        return Err(invalid(
            "file:// needs a folder, such as file://./data/mail",
        ));
    }
    Ok(Path::new(dir))
}

fn file_transport(dir: &str) -> Result<MailTransport, TransportError> {
    let path = file_folder(dir)?;
    let shared =
        crate::private_files::create_folder(path).map_err(|source| TransportError::CreateDir {
            path: path.to_path_buf(),
            source,
        })?;
    if shared {
        tracing::warn!(folder = %path.display(), "the mail folder may be listed by other users; the .eml files themselves are private (0600)");
    }
    Ok(MailTransport {
        sender: Sender::File(path.to_path_buf()),
        description: format!("file://{dir} (.eml files)"),
    })
}

/// Writes one message as `<uuid>.eml`, readable by the service's user only.
async fn write_eml(dir: &Path, formatted: Vec<u8>) -> Result<(), TransportError> {
    let path = dir.join(format!("{}.eml", uuid::Uuid::new_v4()));
    tokio::task::spawn_blocking(move || crate::private_files::write_new(&path, &formatted))
        .await
        .map_err(std::io::Error::other)
        .and_then(|written| written)
        .map_err(|error| TransportError::Transient(format!("cannot write the mail file: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(url: &str) -> String {
        MailTransport::from_url(url).unwrap().describe()
    }

    #[test]
    fn the_relay_host_leaves_credentials_and_port_out() {
        assert_eq!(
            relay_host("smtp://user:s3cret@smtp.example.com:587?tls=starttls").as_deref(),
            Some("smtp.example.com")
        );
        assert_eq!(
            relay_host(" SMTPS://mail.example.net ").as_deref(),
            Some("mail.example.net")
        );
        assert_eq!(relay_host("file://./data/mail"), None);
        assert_eq!(relay_host("nonsense"), None);
    }

    #[test]
    fn picks_tls_mode_and_default_port_from_the_url() {
        assert_eq!(
            description("smtp://mail.example.com?tls=none"),
            "smtp://mail.example.com:25 (no tls)"
        );
        assert_eq!(
            description("smtp://mail.example.com?tls=starttls"),
            "smtp://mail.example.com:587 (starttls)"
        );
        assert_eq!(
            description("smtp://mail.example.com"),
            "smtp://mail.example.com:25 (opportunistic starttls)"
        );
        assert_eq!(
            description("smtps://mail.example.com"),
            "smtps://mail.example.com:465 (implicit tls)"
        );
        assert_eq!(
            description("smtp://127.0.0.1:2525?tls=none"),
            "smtp://127.0.0.1:2525 (no tls)"
        );
    }

    #[test]
    fn building_an_smtp_transport_needs_no_async_runtime() {
        // A plain #[test] has no Tokio runtime, like a synchronous config check.
        let transport = MailTransport::from_url("smtp://mail.example.com?tls=starttls").unwrap();
        drop(transport);
    }

    #[test]
    fn credentials_without_tls_parameter_require_starttls() {
        assert_eq!(
            description("smtp://user:pass@mail.example.com"),
            "smtp://mail.example.com:587 (starttls, authenticated)"
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_description_and_errors() {
        let transport =
            MailTransport::from_url("smtps://mailer:s3cr%40t@mail.example.com").unwrap();
        for shown in [transport.describe(), format!("{transport:?}")] {
            assert!(
                !shown.contains("s3cr") && !shown.contains("mailer"),
                "{shown}"
            );
        }
        for url in [
            "smtp://mailer:s3cret@mail.example.com?tls=maybe",
            "smtp://mailer:s3cret@/",
            "smtp://mailer:s3cret@[::1",
        ] {
            let error = MailTransport::from_url(url).unwrap_err().to_string();
            assert!(!error.contains("s3cret"), "{error}");
        }
    }

    #[test]
    fn rejects_unknown_schemes_and_parameters() {
        for url in [
            "http://mail.example.com",
            "smtp://mail.example.com?port=25",
            "smtps://h.example?tls=none",
            "file://",
            "smtp://u@h.example",
        ] {
            assert!(
                matches!(
                    MailTransport::from_url(url),
                    Err(TransportError::InvalidUrl(_))
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn decodes_percent_encoded_credentials() {
        assert_eq!(percent_decode("p%40ss%3Aw").as_deref(), Some("p@ss:w"));
        assert_eq!(percent_decode("bad%4"), None);
        assert_eq!(percent_decode("bad%zz1"), None);
        assert_eq!(percent_decode("%C3%A9t%C3%A9").as_deref(), Some("été"));
        assert_eq!(percent_decode("%FF"), None, "not UTF-8");
    }
}
