//! Postmark's bounce and spam-complaint webhooks: one JSON record per request.

use serde::Deserialize;

use super::{
    event_id, first_reason, parse_rfc3339, FeedbackFormatError, FeedbackInput, FeedbackItem,
    FeedbackKind,
};

const INPUT: FeedbackInput = FeedbackInput::Postmark;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Record {
    record_type: String,
    #[serde(rename = "ID")]
    id: Option<serde_json::Value>,
    #[serde(rename = "Type")]
    bounce_type: Option<String>,
    email: Option<String>,
    bounced_at: Option<String>,
    description: Option<String>,
    details: Option<String>,
}

/// Reads one Postmark webhook record. Records that are not bounces or complaints
/// (deliveries, opens, clicks, subscription changes), and bounce types that say nothing
/// about the mailbox (auto-responders, challenge mails), give no item.
pub fn parse_postmark(body: &[u8]) -> Result<Vec<FeedbackItem>, FeedbackFormatError> {
    let record: Record =
        serde_json::from_slice(body).map_err(|e| FeedbackFormatError::json(INPUT, &e))?;
    let kind = match record.record_type.as_str() {
        "SpamComplaint" => FeedbackKind::Complaint,
        "Bounce" => match record.bounce_type.as_deref() {
            Some("HardBounce" | "BadEmailAddress") => FeedbackKind::HardBounce,
            // Transient is Postmark's "delayed", DnsError a failed lookup that may heal,
            // Blocked an ISP refusing for content or reputation: none proves the
            // mailbox gone, each is worth counting.
            Some("SoftBounce" | "Transient" | "DnsError" | "Blocked") => FeedbackKind::SoftBounce,
            Some(_) => return Ok(Vec::new()),
            None => {
                return Err(FeedbackFormatError::field(
                    INPUT,
                    "Type",
                    "a Bounce record without `Type`",
                ))
            }
        },
        _ => return Ok(Vec::new()),
    };
    let email = record
        .email
        .filter(|email| !email.trim().is_empty())
        .ok_or_else(|| FeedbackFormatError::field(INPUT, "Email", "`Email` is missing"))?;
    // Postmark sends ID as a 64-bit number; a string is taken too.
    let provider_event_id = match &record.id {
        Some(serde_json::Value::Number(n)) => event_id("postmark", &n.to_string()),
        Some(serde_json::Value::String(s)) => event_id("postmark", s),
        _ => None,
    };
    Ok(vec![FeedbackItem {
        email,
        kind,
        reason: first_reason([record.details.as_deref(), record.description.as_deref()]),
        at: parse_rfc3339(record.bounced_at.as_deref()),
        provider_event_id,
        bounce_type: record.bounce_type.as_deref().and_then(super::clean_reason),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNCE: &str = include_str!("../../tests/fixtures/feedback/postmark-bounce.json");
    const SPAM: &str = include_str!("../../tests/fixtures/feedback/postmark-spam-complaint.json");

    fn with(fixture: &str, field: &str, value: serde_json::Value) -> Vec<u8> {
        let mut record: serde_json::Value = serde_json::from_str(fixture).expect("fixture");
        record[field] = value;
        serde_json::to_vec(&record).expect("json")
    }

    #[test]
    fn the_published_bounce_example_is_a_hard_bounce() {
        let items = parse_postmark(BOUNCE.as_bytes()).expect("valid");
        assert_eq!(items.len(), 1);
        let item = &items[0];
        assert_eq!(item.email, "john@example.com");
        assert_eq!(item.kind, FeedbackKind::HardBounce);
        assert_eq!(
            item.provider_event_id.as_deref(),
            Some("postmark:4323372036854775807")
        );
        assert_eq!(item.bounce_type.as_deref(), Some("HardBounce"));
        assert_eq!(item.reason.as_deref(), Some("Test bounce details"));
        assert_eq!(
            item.at.map(|at| at.timestamp_millis()),
            Some(1_572_971_634_907)
        );
    }

    #[test]
    fn the_published_spam_complaint_example_is_a_complaint() {
        let items = parse_postmark(SPAM.as_bytes()).expect("valid");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].kind, FeedbackKind::Complaint);
        assert_eq!(items[0].email, "john@example.com");
        assert_eq!(items[0].provider_event_id.as_deref(), Some("postmark:42"));
    }

    #[test]
    fn bounce_types_map_as_documented() {
        for (bounce_type, kind) in [
            ("BadEmailAddress", Some(FeedbackKind::HardBounce)),
            ("SoftBounce", Some(FeedbackKind::SoftBounce)),
            ("Transient", Some(FeedbackKind::SoftBounce)),
            ("DnsError", Some(FeedbackKind::SoftBounce)),
            ("Blocked", Some(FeedbackKind::SoftBounce)),
            ("AutoResponder", None),
            ("ChallengeVerification", None),
            ("Unknown", None),
        ] {
            let items = parse_postmark(&with(BOUNCE, "Type", bounce_type.into())).expect("valid");
            assert_eq!(items.first().map(|i| i.kind), kind, "{bounce_type}");
        }
    }

    #[test]
    fn other_record_types_are_ignored() {
        for record_type in ["Delivery", "Open", "Click", "SubscriptionChange"] {
            let items =
                parse_postmark(&with(BOUNCE, "RecordType", record_type.into())).expect("valid");
            assert!(items.is_empty(), "{record_type}");
        }
    }

    #[test]
    fn a_redelivered_record_keeps_its_event_id() {
        let first = parse_postmark(BOUNCE.as_bytes()).expect("valid");
        let again = parse_postmark(BOUNCE.as_bytes()).expect("valid");
        assert_eq!(first, again);
        let string_id =
            parse_postmark(&with(BOUNCE, "ID", "4323372036854775807".into())).expect("valid");
        assert_eq!(string_id[0].provider_event_id, first[0].provider_event_id);
    }

    #[test]
    fn wrong_formats_are_rejected() {
        assert!(parse_postmark(b"[]").is_err());
        assert!(parse_postmark(b"{}").is_err());
        assert!(parse_postmark(b"<xml/>").is_err());
        let no_email = with(BOUNCE, "Email", serde_json::Value::Null);
        assert_eq!(
            parse_postmark(&no_email).expect_err("email").field,
            Some("Email")
        );
        let no_type = with(BOUNCE, "Type", serde_json::Value::Null);
        assert_eq!(
            parse_postmark(&no_type).expect_err("type").field,
            Some("Type")
        );
    }
}
