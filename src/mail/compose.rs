//! Turns a rendered mail into a MIME message: `multipart/alternative` with the plain-text
//! part first and the HTML part second (inside `multipart/mixed` when a file is
//! attached), plus the RFC 2369 / RFC 8058 one-click unsubscribe headers.
//!
//! The header strings are public so that the eligibility API hands senders exactly what
//! our own mails carry.

use lettre::message::header::{
    self, ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Attachment, Body, Mailbox, MessageBuilder, MultiPart};
use lettre::{Address, Message};

use super::templates::RenderedMail;
use crate::domain::EmailAddress;
pub use crate::links::{list_unsubscribe_value, LIST_UNSUBSCRIBE_POST};

/// Who a message is from and to, and the headers that identify it.
#[derive(Clone, Copy, Debug)]
pub struct Envelope<'a> {
    pub from: &'a Mailbox,
    pub to: &'a EmailAddress,
    /// Stable per outbox job, so a receiver can drop a duplicate sent after a crash.
    /// Angle brackets are added when missing.
    pub message_id: &'a str,
    /// The one-click unsubscribe URL; adds `List-Unsubscribe` and `List-Unsubscribe-Post`.
    pub list_unsubscribe: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    // The address itself is left out: error text ends up in logs and the outbox.
    #[error("the recipient address is not accepted by the mail library")]
    InvalidRecipient,
    #[error("the unsubscribe URL must be an absolute http(s) URL of printable ASCII without angle brackets")]
    InvalidUnsubscribeUrl,
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("the attachment's media type '{0}' is not valid")]
    Attachment(String),
}

/// A file attached to a mail: its name, media type and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailAttachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// Builds the message for `mail`; the `Date` is now.
pub fn compose_message(
    mail: &RenderedMail,
    envelope: &Envelope<'_>,
) -> Result<Message, ComposeError> {
    compose_message_with(mail, envelope, None)
}

/// [`compose_message`], with `attachment` after the text and HTML parts.
pub fn compose_message_with(
    mail: &RenderedMail,
    envelope: &Envelope<'_>,
    attachment: Option<&MailAttachment>,
) -> Result<Message, ComposeError> {
    let mut builder = Message::builder()
        .from(envelope.from.clone())
        .to(recipient(envelope.to)?)
        .subject(mail.subject.clone())
        .message_id(Some(bracketed(envelope.message_id)))
        .date_now();
    if let Some(url) = envelope.list_unsubscribe {
        builder = builder
            .header(ListUnsubscribe::new(url)?)
            .header(ListUnsubscribePost);
    }
    let body = MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone());
    let body = match attachment {
        None => body,
        Some(file) => {
            let content_type = ContentType::parse(&file.content_type)
                .map_err(|_| ComposeError::Attachment(file.content_type.clone()))?;
            MultiPart::mixed().multipart(body).singlepart(
                Attachment::new(file.filename.clone()).body(file.content.clone(), content_type),
            )
        }
    };
    Ok(with_content_type_in_headers(builder, &body)?)
}

/// Builds the message with the multipart's `Content-Type` among the message headers.
/// lettre's `multipart()` keeps that header with the body, where its DKIM signer does
/// not see it: a signature naming `Content-Type` would then fail everywhere. The bytes
/// on the wire are the same but for an added `Content-Transfer-Encoding: 7bit`, which
/// holds because lettre encodes every part as 7-bit, quoted-printable or base64.
fn with_content_type_in_headers(
    builder: MessageBuilder,
    body: &MultiPart,
) -> Result<Message, lettre::error::Error> {
    let formatted = body.formatted();
    // The multipart formats as its headers, a blank line, then its body.
    let body_start = formatted
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map_or(0, |at| at + 4);
    let mut builder = builder.header(header::MIME_VERSION_1_0);
    if let Some(content_type) = body.headers().get::<ContentType>() {
        builder = builder.header(content_type);
    }
    builder.body(Body::dangerous_pre_encoded(
        formatted[body_start..].to_vec(),
        ContentTransferEncoding::SevenBit,
    ))
}

fn recipient(to: &EmailAddress) -> Result<Mailbox, ComposeError> {
    let address: Address = to
        .as_str()
        .parse()
        .map_err(|_| ComposeError::InvalidRecipient)?;
    Ok(Mailbox::new(None, address))
}

fn bracketed(message_id: &str) -> String {
    let id = message_id.trim();
    if id.starts_with('<') && id.ends_with('>') {
        id.to_string()
    } else {
        format!("<{id}>")
    }
}

/// `List-Unsubscribe: <URL>` (RFC 2369), holding one HTTP(S) URL as RFC 8058 wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListUnsubscribe(String);

impl ListUnsubscribe {
    pub fn new(url: &str) -> Result<Self, ComposeError> {
        if is_header_safe_http_url(url) {
            Ok(Self(url.to_string()))
        } else {
            Err(ComposeError::InvalidUnsubscribeUrl)
        }
    }

    pub fn url(&self) -> &str {
        &self.0
    }
}

/// Angle brackets delimit the URL in the header and whitespace would let it be folded or
/// split, so neither may appear inside it; tokens and our public URL never contain them.
fn is_header_safe_http_url(url: &str) -> bool {
    let has_http_scheme = url.starts_with("https://") || url.starts_with("http://");
    let printable = url
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    has_http_scheme && printable
}

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let url = s
            .trim()
            .strip_prefix('<')
            .and_then(|rest| rest.strip_suffix('>'))
            .ok_or("List-Unsubscribe must be one URL in angle brackets")?;
        Ok(Self::new(url)?)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), list_unsubscribe_value(&self.0))
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): tells mailbox providers
/// that a POST to the `List-Unsubscribe` URL unsubscribes without further steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        if s.trim() == LIST_UNSUBSCRIBE_POST {
            Ok(Self)
        } else {
            Err(format!("List-Unsubscribe-Post must be '{LIST_UNSUBSCRIBE_POST}'").into())
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), LIST_UNSUBSCRIBE_POST.to_string())
    }
}

#[cfg(test)]
mod tests {
    use mail_parser::MimeHeaders;

    use super::*;

    fn rendered() -> RenderedMail {
        RenderedMail {
            subject: "Confirm".into(),
            html: "<p>Hi</p>".into(),
            text: "Hi".into(),
        }
    }

    fn compose(list_unsubscribe: Option<&str>) -> Result<String, ComposeError> {
        let from: Mailbox = "Optin <noreply@example.com>".parse().unwrap();
        let to = EmailAddress::parse("jane@example.com").unwrap();
        let envelope = Envelope {
            from: &from,
            to: &to,
            message_id: "job-1@example.com",
            list_unsubscribe,
        };
        let message = compose_message(&rendered(), &envelope)?;
        Ok(String::from_utf8(message.formatted()).unwrap())
    }

    #[test]
    fn adds_both_unsubscribe_headers_verbatim() {
        let raw = compose(Some("https://optin.example.com/unsubscribe/abc.def")).unwrap();
        assert!(raw
            .contains("\r\nList-Unsubscribe: <https://optin.example.com/unsubscribe/abc.def>\r\n"));
        assert!(raw.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(raw.contains("\r\nMessage-ID: <job-1@example.com>\r\n"));
    }

    #[test]
    fn leaves_unsubscribe_headers_out_without_a_url() {
        let raw = compose(None).unwrap();
        assert!(!raw.contains("List-Unsubscribe"));
    }

    #[test]
    fn refuses_urls_that_could_break_the_header() {
        for url in [
            "ftp://x.example/u",
            "https://x.example/a b",
            "https://x.example/>",
            "https://x.example/\r\nBcc: x",
        ] {
            assert!(
                matches!(compose(Some(url)), Err(ComposeError::InvalidUnsubscribeUrl)),
                "{url:?}"
            );
        }
    }

    #[test]
    fn an_attachment_follows_the_text_and_html_and_comes_back_byte_for_byte() {
        let from: Mailbox = "Optin <noreply@example.com>".parse().unwrap();
        let to = EmailAddress::parse("jane@example.com").unwrap();
        let envelope = Envelope {
            from: &from,
            to: &to,
            message_id: "job-2@example.com",
            list_unsubscribe: Some("https://optin.example.com/unsubscribe/t"),
        };
        // Longer than a mail line may be, as a compact JWS is.
        let content = "eyJhbGciOiJFZERTQSJ9.".repeat(100).into_bytes();
        let file = MailAttachment {
            filename: "consent-receipt.jws".into(),
            content_type: "application/jose".into(),
            content: content.clone(),
        };
        let message = compose_message_with(&rendered(), &envelope, Some(&file)).unwrap();
        let raw = message.formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.content_type().unwrap().subtype(), Some("mixed"));
        assert_eq!(parsed.body_text(0).as_deref(), Some("Hi"));
        let attached = parsed.attachment(0).expect("one attachment");
        assert_eq!(attached.attachment_name(), Some("consent-receipt.jws"));
        assert_eq!(attached.contents(), content.as_slice());
        let text = String::from_utf8(raw).unwrap();
        assert!(text.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(matches!(
            compose_message_with(
                &rendered(),
                &envelope,
                Some(&MailAttachment {
                    content_type: "not a type".into(),
                    ..file
                })
            ),
            Err(ComposeError::Attachment(_))
        ));
    }

    #[test]
    fn header_values_match_the_shared_strings() {
        let url = "https://optin.example.com/unsubscribe/t";
        let header = ListUnsubscribe::new(url).unwrap();
        assert_eq!(
            ListUnsubscribe::parse(&list_unsubscribe_value(url)).unwrap(),
            header
        );
        assert!(ListUnsubscribePost::parse(LIST_UNSUBSCRIBE_POST).is_ok());
    }
}
