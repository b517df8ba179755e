//! One raw mail as a mail server's pipe or a feedback loop delivers it: an RFC 3464
//! delivery status notification (a bounce) or an RFC 5965 ARF report (a complaint).
//!
//! MIME is read with `mail-parser`. `mail-auth` has an ARF reader, but it brings a DNS
//! resolver and DKIM/DMARC machinery we do not need; the report part is a plain block
//! of header fields, read here.

use chrono::{DateTime, Utc};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::{
    clean_reason, enhanced_status, event_id, first_reason, FeedbackFormatError, FeedbackInput,
    FeedbackItem, FeedbackKind,
};

const INPUT: FeedbackInput = FeedbackInput::Message;

/// Reads one `message/rfc822` mail. A report that is well formed but names no
/// recipient (feedback loops often redact it) gives no item rather than an error.
pub fn parse_message(body: &[u8]) -> Result<Vec<FeedbackItem>, FeedbackFormatError> {
    let message = MessageParser::new()
        .parse(body)
        .ok_or_else(|| FeedbackFormatError::new(INPUT, "not a mail message"))?;
    let report_type = message
        .root_part()
        .content_type()
        .filter(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
        .filter(|ct| {
            ct.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .and_then(|ct| ct.attribute("report-type"))
        .map(str::to_ascii_lowercase);
    match report_type.as_deref() {
        Some("delivery-status") => dsn_items(&message),
        Some("feedback-report") => arf_items(&message),
        _ => Err(FeedbackFormatError::field(
            INPUT,
            "Content-Type",
            "the mail is not multipart/report with report-type delivery-status or feedback-report",
        )),
    }
}

/// The body of the first part of this type (`message/delivery-status`), as text.
fn part_text(message: &Message<'_>, subtypes: &[&str]) -> Option<String> {
    message
        .parts
        .iter()
        .find(|part| {
            part.content_type().is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case("message")
                    && ct
                        .subtype()
                        .is_some_and(|s| subtypes.iter().any(|want| s.eq_ignore_ascii_case(want)))
            })
        })
        .map(|part| String::from_utf8_lossy(part.contents()).into_owned())
}

/// The `To` addresses of the reported message, whether it came whole
/// (`message/rfc822`) or as headers only (`text/rfc822-headers`).
fn reported_recipients(message: &Message<'_>) -> Vec<String> {
    let addresses = |reported: &Message<'_>| -> Vec<String> {
        reported
            .to()
            .map(|to| {
                to.iter()
                    .filter_map(|addr| addr.address())
                    .filter(|address| address.contains('@'))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    for part in message.parts.iter().skip(1) {
        match &part.body {
            PartType::Message(reported) => return addresses(reported),
            PartType::Text(text)
                if part.content_type().is_some_and(|ct| {
                    ct.subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
                }) =>
            {
                return MessageParser::new()
                    .parse_headers(text.as_bytes())
                    .map(|headers| addresses(&headers))
                    .unwrap_or_default();
            }
            _ => {}
        }
    }
    Vec::new()
}

/// The report's blocks of `Name: value` fields, split on blank lines, with folded lines
/// joined. Names are lower-cased; a line that is no field is skipped.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut block: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = block.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

fn field<'b>(block: &'b [(String, String)], name: &str) -> Option<&'b str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value.as_str())
}

/// `rfc822;jane@example.com` → `jane@example.com`: the address after its type.
fn typed_address(value: &str) -> Option<String> {
    let address = value.split_once(';').map_or(value, |(_, address)| address);
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    address.contains('@').then(|| address.to_string())
}

fn mail_date(text: Option<&str>) -> Option<DateTime<Utc>> {
    let parsed = mail_parser::DateTime::parse_rfc822(text?)?;
    if !parsed.is_valid() {
        return None;
    }
    DateTime::<Utc>::from_timestamp(parsed.to_timestamp(), 0)
}

fn report_date(message: &Message<'_>) -> Option<DateTime<Utc>> {
    message
        .date()
        .filter(|date| date.is_valid())
        .and_then(|date| DateTime::<Utc>::from_timestamp(date.to_timestamp(), 0))
}

fn report_id(message: &Message<'_>) -> Option<String> {
    message.message_id().and_then(|id| event_id("message", id))
}

fn dsn_items(message: &Message<'_>) -> Result<Vec<FeedbackItem>, FeedbackFormatError> {
    let status =
        part_text(message, &["delivery-status", "global-delivery-status"]).ok_or_else(|| {
            FeedbackFormatError::new(
                INPUT,
                "the delivery report has no message/delivery-status part",
            )
        })?;
    let mut blocks = field_blocks(&status).into_iter();
    // The first block is about the message; the rest, one per recipient.
    let per_message = blocks.next().unwrap_or_default();
    let per_recipient: Vec<_> = blocks.collect();
    if per_recipient.is_empty() {
        return Err(FeedbackFormatError::new(
            INPUT,
            "the delivery status has no per-recipient fields",
        ));
    }
    let arrival = mail_date(field(&per_message, "arrival-date"));
    let provider_event_id = report_id(message);
    let fallback = reported_recipients(message);
    let mut items = Vec::new();
    for block in per_recipient {
        let action = field(&block, "action").map(str::to_ascii_lowercase);
        // "5.0.0 (permanent failure)": the code is the first word.
        let status_code = field(&block, "status").and_then(|s| s.split_whitespace().next());
        let class = status_code
            .and_then(enhanced_status)
            .map(|(class, _, _)| class);
        let kind = match (action.as_deref(), class) {
            (Some("failed"), Some(5)) => FeedbackKind::HardBounce,
            // A failure without a readable permanent status is not proof enough.
            (Some("failed" | "delayed"), _) => FeedbackKind::SoftBounce,
            (Some("delivered" | "relayed" | "expanded"), _) => continue,
            (_, Some(4)) => FeedbackKind::SoftBounce,
            _ => continue,
        };
        let recipients = match field(&block, "final-recipient")
            .or_else(|| field(&block, "original-recipient"))
            .and_then(typed_address)
        {
            Some(address) => vec![address],
            None => fallback.clone(),
        };
        let at = mail_date(field(&block, "last-attempt-date"))
            .or(arrival)
            .or_else(|| report_date(message));
        let reason = first_reason([field(&block, "diagnostic-code"), field(&block, "status")]);
        for email in recipients {
            items.push(FeedbackItem {
                email,
                kind,
                reason: reason.clone(),
                at,
                provider_event_id: provider_event_id.clone(),
                bounce_type: status_code.and_then(clean_reason),
            });
        }
    }
    Ok(items)
}

fn arf_items(message: &Message<'_>) -> Result<Vec<FeedbackItem>, FeedbackFormatError> {
    let report = part_text(message, &["feedback-report"]).ok_or_else(|| {
        FeedbackFormatError::new(
            INPUT,
            "the feedback report has no message/feedback-report part",
        )
    })?;
    let fields: Vec<(String, String)> = field_blocks(&report).into_iter().flatten().collect();
    let feedback_type = field(&fields, "feedback-type").ok_or_else(|| {
        FeedbackFormatError::field(
            INPUT,
            "Feedback-Type",
            "the feedback report has no Feedback-Type",
        )
    })?;
    if !feedback_type.eq_ignore_ascii_case("abuse") {
        return Ok(Vec::new());
    }
    // The envelope recipient is what we sent to; the reported To is the fallback.
    let mut recipients: Vec<String> = fields
        .iter()
        .filter(|(name, _)| name == "original-rcpt-to")
        .filter_map(|(_, value)| typed_address(value))
        .collect();
    if recipients.is_empty() {
        recipients = reported_recipients(message);
    }
    let at = mail_date(field(&fields, "arrival-date"))
        .or_else(|| mail_date(field(&fields, "received-date")))
        .or_else(|| report_date(message));
    let provider_event_id = report_id(message);
    let bounce_type = clean_reason(&feedback_type.to_ascii_lowercase());
    Ok(recipients
        .into_iter()
        .map(|email| FeedbackItem {
            email,
            kind: FeedbackKind::Complaint,
            reason: first_reason([field(&fields, "user-agent")]),
            at,
            provider_event_id: provider_event_id.clone(),
            bounce_type: bounce_type.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN_MULTI: &str = include_str!("../../tests/fixtures/feedback/dsn-multi-recipient.eml");
    const DSN_TIMEOUT: &str = include_str!("../../tests/fixtures/feedback/dsn-timeout.eml");
    const ARF: &str = include_str!("../../tests/fixtures/feedback/arf-abuse.eml");

    fn summary(items: &[FeedbackItem]) -> Vec<(&str, FeedbackKind)> {
        items.iter().map(|i| (i.email.as_str(), i.kind)).collect()
    }

    #[test]
    fn the_rfc_3464_multi_recipient_example_maps_each_recipient() {
        let items = parse_message(DSN_MULTI.as_bytes()).expect("valid");
        assert_eq!(
            summary(&items),
            [
                ("arathi@example.com", FeedbackKind::HardBounce),
                ("johnh@example.com", FeedbackKind::SoftBounce),
                ("wsnell@example.com", FeedbackKind::HardBounce),
            ]
        );
        assert_eq!(items[0].bounce_type.as_deref(), Some("5.0.0"));
        // The folded diagnostic is joined and its address masked.
        assert_eq!(
            items[0].reason.as_deref(),
            Some("smtp; 550 [address] is not a registered gateway user")
        );
        assert_eq!(
            items[0].provider_event_id.as_deref(),
            Some("message:199407081321.AA07803@mail.example.net")
        );
        assert!(items
            .iter()
            .all(|i| i.provider_event_id == items[0].provider_event_id));
        assert_eq!(
            items[0].at.map(|at| at.to_rfc3339()),
            Some("1994-07-08T13:21:47+00:00".to_string())
        );
    }

    #[test]
    fn a_failure_with_a_temporary_status_is_a_soft_bounce() {
        let items = parse_message(DSN_TIMEOUT.as_bytes()).expect("valid");
        assert_eq!(
            summary(&items),
            [("louis@example.com", FeedbackKind::SoftBounce)]
        );
        assert_eq!(items[0].at.map(|at| at.timestamp()), Some(773_615_749));
        assert_eq!(
            items[0].reason.as_deref(),
            Some("smtp; 426 connection timed out")
        );
    }

    #[test]
    fn without_final_recipient_the_reported_to_is_used() {
        let dsn = DSN_TIMEOUT
            .replace("Original-Recipient: rfc822;louis@example.com\n", "")
            .replace("Final-Recipient: rfc822;louis@example.com\n", "")
            .replace("Status: 4.0.0", "Status: 5.1.1");
        let items = parse_message(dsn.as_bytes()).expect("valid");
        assert_eq!(
            summary(&items),
            [("louis@example.com", FeedbackKind::HardBounce)]
        );
    }

    #[test]
    fn delivered_recipients_are_ignored() {
        let dsn = DSN_TIMEOUT.replace("Action: failed", "Action: delivered");
        assert_eq!(parse_message(dsn.as_bytes()).expect("valid"), vec![]);
    }

    #[test]
    fn crlf_line_ends_read_the_same() {
        let crlf = DSN_MULTI.replace('\n', "\r\n");
        assert_eq!(
            parse_message(crlf.as_bytes()).expect("valid"),
            parse_message(DSN_MULTI.as_bytes()).expect("valid")
        );
    }

    #[test]
    fn the_rfc_5965_example_is_a_complaint_for_the_envelope_recipient() {
        let items = parse_message(ARF.as_bytes()).expect("valid");
        assert_eq!(
            summary(&items),
            [("user@example.com", FeedbackKind::Complaint)]
        );
        assert_eq!(items[0].bounce_type.as_deref(), Some("abuse"));
        assert_eq!(items[0].reason.as_deref(), Some("SomeGenerator/1.0"));
        assert_eq!(
            items[0].provider_event_id.as_deref(),
            Some("message:arf-2005-03-08-1@example.com")
        );
    }

    #[test]
    fn an_arf_report_without_original_rcpt_to_uses_the_reported_to() {
        let arf = ARF.replace("Original-Rcpt-To: <user@example.com>\n", "");
        let items = parse_message(arf.as_bytes()).expect("valid");
        assert_eq!(
            summary(&items),
            [("reader@example.com", FeedbackKind::Complaint)]
        );
    }

    #[test]
    fn an_arf_report_with_no_recipient_at_all_gives_no_item() {
        let arf = ARF
            .replace("Original-Rcpt-To: <user@example.com>\n", "")
            .replace("To: <reader@example.com>\n", "");
        assert_eq!(parse_message(arf.as_bytes()).expect("valid"), vec![]);
    }

    #[test]
    fn other_feedback_types_are_ignored() {
        for feedback_type in ["not-spam", "virus", "fraud", "other", "auth-failure"] {
            let arf = ARF.replace(
                "Feedback-Type: abuse",
                &format!("Feedback-Type: {feedback_type}"),
            );
            assert_eq!(
                parse_message(arf.as_bytes()).expect("valid"),
                vec![],
                "{feedback_type}"
            );
        }
    }

    #[test]
    fn wrong_formats_are_rejected() {
        assert!(parse_message(b"").is_err());
        let plain = "From: a@example.com\nTo: b@example.com\nSubject: hi\n\nhello\n";
        assert_eq!(
            parse_message(plain.as_bytes())
                .expect_err("not a report")
                .field,
            Some("Content-Type")
        );
        let other_report = DSN_MULTI.replace(
            "report-type=delivery-status",
            "report-type=disposition-notification",
        );
        assert!(parse_message(other_report.as_bytes()).is_err());
        let no_status_part = DSN_MULTI.replace(
            "content-type: message/delivery-status",
            "content-type: text/plain",
        );
        assert!(parse_message(no_status_part.as_bytes()).is_err());
        let no_type = ARF.replace("Feedback-Type: abuse\n", "");
        assert_eq!(
            parse_message(no_type.as_bytes())
                .expect_err("no type")
                .field,
            Some("Feedback-Type")
        );
    }

    #[test]
    fn a_redelivered_report_keeps_its_event_id() {
        let first = parse_message(ARF.as_bytes()).expect("valid");
        let again = parse_message(ARF.as_bytes()).expect("valid");
        assert_eq!(first, again);
        assert!(first[0].provider_event_id.is_some());
    }
}
