//! What the mail world says back about our mail: bounces and complaints, read from each
//! provider's own format into one [`FeedbackItem`] shape.
//!
//! Everything here is pure: a parser takes the request body (and the headers it needs)
//! and answers the items it found or a [`FeedbackFormatError`] saying why the body is
//! not that input's format. Fetching certificates, storing and acting on the items are
//! the caller's.
//!
//! # Mapping, provider by provider
//!
//! | input | provider says | our kind |
//! |---|---|---|
//! | optin JSON (`POST /v1/feedback`) | `"kind": "hard_bounce"` / `"soft_bounce"` / `"complaint"` | the same |
//! | SES through SNS | `Bounce`, `bounceType` `Permanent` | hard bounce |
//! | | `Bounce`, `bounceType` `Transient` | soft bounce |
//! | | `Bounce`, `bounceType` `Undetermined` | soft bounce (SES could not tell; a soft bounce only counts toward the limit) |
//! | | `Complaint` | complaint |
//! | | any other `notificationType` / `eventType` (`Delivery`, `Send`, `Open`, …) | ignored |
//! | Postmark | `RecordType` `Bounce`, `Type` `HardBounce` or `BadEmailAddress` | hard bounce |
//! | | `RecordType` `Bounce`, `Type` `SoftBounce`, `Transient`, `DnsError` or `Blocked` | soft bounce |
//! | | `RecordType` `SpamComplaint` | complaint |
//! | | any other `Type` or `RecordType` (`AutoResponder`, `Delivery`, `Open`, …) | ignored |
//! | SendGrid | `bounce` with `type` `bounce` (or no `type`, as older payloads send) | hard bounce |
//! | | `bounce` with `type` `blocked` or `expired` | soft bounce |
//! | | `spamreport` | complaint |
//! | | `dropped`, `reason` `Bounced Address` | hard bounce |
//! | | `dropped`, `reason` `Spam Reporting Address` | complaint |
//! | | every other event (`processed`, `delivered`, `open`, other `dropped` reasons, …) | ignored, not counted |
//! | RFC 3464 DSN | `Action: failed` with `Status: 5.x.x` | hard bounce |
//! | | `Action: failed` with a `4.x.x` or no readable status, or `Action: delayed` | soft bounce |
//! | | `Action: delivered` / `relayed` / `expanded` | ignored |
//! | RFC 5965 ARF | `Feedback-Type: abuse` | complaint |
//! | | any other `Feedback-Type` (`fraud`, `virus`, `not-spam`, `auth-failure`, `other`) | ignored |
//! | our own SMTP delivery | a `5.1.x` rejection other than `5.1.7`/`5.1.8` (our sender's address) | hard bounce ([`is_permanent_mailbox_failure`]) |
//!
//! Ignored records are not items: the caller's `{"accepted": n}` counts the items a
//! parser returns.
//!
//! # Idempotency
//!
//! [`FeedbackItem::provider_event_id`] is prefixed with the input (`ses:`, `postmark:`,
//! `sendgrid:`, `message:`) so that ids from two providers never collide. One SES
//! notification or one DSN can name several recipients under one id, so the key that
//! makes a delivery count once is the pair (event id, contact), never the id alone.

pub mod message;
pub mod own;
pub mod postmark;
pub mod sendgrid;
pub mod ses;
pub mod settings;

#[cfg(test)]
mod parsers_proptest;

use chrono::{DateTime, Utc};

/// The kind lives in the domain, which acts on it; re-exported for the parsers' callers.
pub use crate::domain::FeedbackKind;

/// One piece of feedback about one address, whatever input it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackItem {
    /// The address as the provider gave it; the service parses it like any other input.
    pub email: String,
    pub kind: FeedbackKind,
    /// A short human reason (an SMTP diagnostic, a provider's description), capped at
    /// [`REASON_MAX_CHARS`], with every address in it masked.
    pub reason: Option<String>,
    /// When the provider saw it, if it said.
    pub at: Option<DateTime<Utc>>,
    /// The provider's id of this event, prefixed with the input; see the module docs.
    pub provider_event_id: Option<String>,
    /// The provider's own sub-classification (`Permanent/General`, `HardBounce`,
    /// `blocked`, a DSN status such as `5.1.1`, an ARF feedback type), capped.
    pub bounce_type: Option<String>,
}

/// Which input a body was read as; names the format in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackInput {
    Own,
    Ses,
    Postmark,
    Sendgrid,
    Message,
}

impl FeedbackInput {
    fn describe(self) -> &'static str {
        match self {
            FeedbackInput::Own => "optin feedback JSON",
            FeedbackInput::Ses => "an Amazon SNS message",
            FeedbackInput::Postmark => "a Postmark webhook record",
            FeedbackInput::Sendgrid => "a SendGrid event array",
            FeedbackInput::Message => {
                "an RFC 3464 delivery status notification or RFC 5965 feedback report"
            }
        }
    }
}

/// Why a body is not the format its input expects. The text never quotes the body, so
/// it may be shown to the caller and logged without leaking an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the body is not {}: {problem}", .input.describe())]
pub struct FeedbackFormatError {
    pub input: FeedbackInput,
    /// The field at fault, when one is.
    pub field: Option<&'static str>,
    pub problem: String,
}

impl FeedbackFormatError {
    pub(crate) fn new(input: FeedbackInput, problem: impl Into<String>) -> Self {
        FeedbackFormatError {
            input,
            field: None,
            problem: problem.into(),
        }
    }

    pub(crate) fn field(
        input: FeedbackInput,
        field: &'static str,
        problem: impl Into<String>,
    ) -> Self {
        FeedbackFormatError {
            input,
            field: Some(field),
            problem: problem.into(),
        }
    }

    /// Describes a JSON error without quoting the body: serde's messages for a wrong
    /// type or value repeat the value, which may be an address.
    pub(crate) fn json(input: FeedbackInput, err: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let at = format!("line {}, column {}", err.line(), err.column());
        let problem = match err.classify() {
            Category::Io | Category::Syntax => format!("not valid JSON ({at})"),
            Category::Eof => "the JSON ends too early".to_string(),
            Category::Data => {
                let text = err.to_string();
                match text.strip_prefix("missing field `") {
                    Some(rest) => {
                        let name = rest.split('`').next().unwrap_or_default();
                        format!("the field `{name}` is missing ({at})")
                    }
                    None => format!("a field has the wrong type ({at})"),
                }
            }
        };
        FeedbackFormatError::new(input, problem)
    }
}

/// How long a reason or a provider sub-type may be, in characters.
pub const REASON_MAX_CHARS: usize = 200;

/// A provider's free text made fit to store: control characters and runs of blanks
/// become one space, any word with an `@` in it becomes `[address]` (diagnostics
/// often repeat the recipient), and the result is capped. Empty text gives `None`.
pub(crate) fn clean_reason(raw: &str) -> Option<String> {
    let mut out = String::new();
    for word in raw.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        if word.contains('@') {
            out.push_str("[address]");
        } else {
            out.push_str(word);
        }
        if out.chars().count() > REASON_MAX_CHARS {
            break;
        }
    }
    if out.is_empty() {
        return None;
    }
    if out.chars().count() > REASON_MAX_CHARS {
        out = out.chars().take(REASON_MAX_CHARS - 1).collect();
        out.push('…');
    }
    Some(out)
}

/// The first of several optional texts that cleans to something.
pub(crate) fn first_reason<'a>(
    candidates: impl IntoIterator<Item = Option<&'a str>>,
) -> Option<String> {
    candidates.into_iter().flatten().find_map(clean_reason)
}

/// An RFC 3339 timestamp, or `None` when it is missing or unreadable: a provider's
/// odd date is no reason to lose the bounce.
pub(crate) fn parse_rfc3339(raw: Option<&str>) -> Option<DateTime<Utc>> {
    raw.and_then(|text| DateTime::parse_from_rfc3339(text.trim()).ok())
        .map(|at| at.with_timezone(&Utc))
}

/// An id namespaced by its input, or `None` for an empty one.
pub(crate) fn event_id(prefix: &str, raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    Some(format!(
        "{prefix}:{}",
        raw.chars().take(REASON_MAX_CHARS).collect::<String>()
    ))
}

/// The class, subject and detail of an RFC 3463 enhanced status code (`5.1.1` →
/// `(5, 1, 1)`), or `None` when the text is not one.
pub(crate) fn enhanced_status(text: &str) -> Option<(u8, u16, u16)> {
    let mut parts = text.trim().splitn(3, '.');
    let class = parts.next()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    let class: u8 = class.parse().ok()?;
    if !matches!(class, 2 | 4 | 5) {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(subject) || !digits(detail) {
        return None;
    }
    Some((class, subject.parse().ok()?, detail.parse().ok()?))
}

/// Whether an SMTP rejection of our own mail says the recipient's mailbox or domain
/// does not exist: a `5xx` answer with an enhanced status `5.1.x`. `5.1.7` and `5.1.8`
/// are about our sender address, not the recipient, so they do not count. Without an
/// enhanced code a bare `550` is not enough: servers also use it for policy and spam
/// rejections, and a wrong hard bounce silences a working address.
pub fn is_permanent_mailbox_failure(code: u16, enhanced: Option<&str>) -> bool {
    if !(500..600).contains(&code) {
        return false;
    }
    match enhanced.and_then(enhanced_status) {
        Some((5, 1, detail)) => !matches!(detail, 7 | 8),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_550_5_1_1_is_a_permanent_mailbox_failure() {
        assert!(is_permanent_mailbox_failure(550, Some("5.1.1")));
        assert!(is_permanent_mailbox_failure(550, Some("5.1.10")));
        assert!(is_permanent_mailbox_failure(553, Some(" 5.1.2 ")));
    }

    #[test]
    fn other_rejections_are_not_permanent_mailbox_failures() {
        // Policy, full mailbox, our own sender address, temporary answers, no code.
        assert!(!is_permanent_mailbox_failure(550, Some("5.7.1")));
        assert!(!is_permanent_mailbox_failure(552, Some("5.2.2")));
        assert!(!is_permanent_mailbox_failure(553, Some("5.1.7")));
        assert!(!is_permanent_mailbox_failure(553, Some("5.1.8")));
        assert!(!is_permanent_mailbox_failure(450, Some("4.1.1")));
        assert!(!is_permanent_mailbox_failure(450, Some("5.1.1")));
        assert!(!is_permanent_mailbox_failure(550, None));
        assert!(!is_permanent_mailbox_failure(550, Some("5.1")));
        assert!(!is_permanent_mailbox_failure(550, Some("5.1.x")));
        assert!(!is_permanent_mailbox_failure(550, Some("")));
    }

    #[test]
    fn reasons_lose_addresses_and_are_capped() {
        assert_eq!(
            clean_reason("smtp; 550 5.1.1 <jane@example.com>... User\r\n unknown").as_deref(),
            Some("smtp; 550 5.1.1 [address] User unknown")
        );
        assert_eq!(clean_reason(" \t\r\n"), None);
        let long = "word ".repeat(500);
        let capped = clean_reason(&long).expect("text");
        assert_eq!(capped.chars().count(), REASON_MAX_CHARS);
        assert!(capped.ends_with('…'));
    }

    #[test]
    fn json_errors_do_not_quote_the_body() {
        #[derive(serde::Deserialize, Debug)]
        struct Shape {
            #[allow(dead_code)]
            count: u32,
        }
        let err = serde_json::from_str::<Shape>(r#"{"count":"jane@example.com"}"#)
            .expect_err("wrong type");
        let described = FeedbackFormatError::json(FeedbackInput::Own, &err).to_string();
        assert!(!described.contains("jane"), "{described}");
        assert!(described.contains("wrong type"), "{described}");
        let err = serde_json::from_str::<Shape>("{}").expect_err("missing");
        let described = FeedbackFormatError::json(FeedbackInput::Own, &err).to_string();
        assert!(described.contains("`count` is missing"), "{described}");
    }
}
