//! Arbitrary bodies never panic any feedback parser: the providers' published examples
//! bent out of shape, mail in the shape of reports, and garbage.

use proptest::prelude::*;

use super::{message, own, postmark, sendgrid, ses};

const JSON_FIXTURES: [&str; 8] = [
    include_str!("../../tests/fixtures/feedback/ses-bounce-permanent.json"),
    include_str!("../../tests/fixtures/feedback/ses-complaint.json"),
    include_str!("../../tests/fixtures/feedback/ses-event-bounce-transient.json"),
    include_str!("../../tests/fixtures/feedback/ses-subscription-confirmation.json"),
    include_str!("../../tests/fixtures/feedback/postmark-bounce.json"),
    include_str!("../../tests/fixtures/feedback/postmark-spam-complaint.json"),
    include_str!("../../tests/fixtures/feedback/sendgrid-events.json"),
    r#"[{"email":"a@example.com","kind":"hard_bounce","reason":"x","at":"2026-01-01T00:00:00Z"}]"#,
];

/// How many leaves (scalars and empty containers) a JSON tree has.
fn leaf_count(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) if !items.is_empty() => items.iter().map(leaf_count).sum(),
        serde_json::Value::Object(map) if !map.is_empty() => map.values().map(leaf_count).sum(),
        _ => 1,
    }
}

/// Puts `replacement` at the `n`th leaf, depth first; true once done.
fn replace_leaf(
    value: &mut serde_json::Value,
    n: &mut usize,
    replacement: &serde_json::Value,
) -> bool {
    let children: Vec<&mut serde_json::Value> = match value {
        serde_json::Value::Array(items) => items.iter_mut().collect(),
        serde_json::Value::Object(map) => map.values_mut().collect(),
        _ => Vec::new(),
    };
    if !children.is_empty() {
        return children
            .into_iter()
            .any(|child| replace_leaf(child, n, replacement));
    }
    if *n == 0 {
        *value = replacement.clone();
        return true;
    }
    *n -= 1;
    false
}

/// The published examples with a few leaves swapped for odd values (including the
/// SES message inside the SNS envelope), or with raw bytes flipped, plus garbage.
fn bent_examples() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("Permanent")),
        Just(serde_json::Value::from(
            "{\"notificationType\":\"Bounce\",\"bounce\":{}}"
        )),
        Just(serde_json::json!([{}])),
    ];
    let edited = (
        0..JSON_FIXTURES.len(),
        proptest::collection::vec((any::<proptest::sample::Index>(), leaf), 0..4),
    )
        .prop_map(|(fixture, edits)| {
            let mut value: serde_json::Value =
                serde_json::from_str(JSON_FIXTURES[fixture]).unwrap_or_default();
            for (at, replacement) in edits {
                let mut n = at.index(leaf_count(&value));
                replace_leaf(&mut value, &mut n, &replacement);
            }
            serde_json::to_vec(&value).unwrap_or_default()
        });
    let flipped = (
        0..JSON_FIXTURES.len(),
        proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..6),
    )
        .prop_map(|(fixture, flips)| {
            let mut bytes = JSON_FIXTURES[fixture].as_bytes().to_vec();
            for (at, byte) in flips {
                let index = at.index(bytes.len());
                bytes[index] = byte;
            }
            bytes
        });
    prop_oneof![
        edited,
        flipped,
        proptest::collection::vec(any::<u8>(), 0..300),
    ]
}

/// Report-shaped mail: the headers and fields the mail parser acts on, in any order and
/// with random values, sometimes cut short.
fn mail_like() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just("Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"".to_string()),
        Just("Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"".to_string()),
        Just("--b".to_string()),
        Just("--b--".to_string()),
        Just("content-type: message/delivery-status".to_string()),
        Just("content-type: message/feedback-report".to_string()),
        Just("content-type: message/rfc822".to_string()),
        Just("content-type: text/rfc822-headers".to_string()),
        Just(String::new()),
        "(Action|Status|Final-Recipient|Original-Recipient|Feedback-Type|Original-Rcpt-To|Arrival-Date|Last-Attempt-Date|To|Date|Message-ID): .{0,30}",
        "[ \t].{0,20}",
        ".{0,40}",
    ];
    (
        proptest::collection::vec(line, 0..40),
        any::<bool>(),
        0usize..2000,
    )
        .prop_map(|(lines, crlf, cut)| {
            let text = lines.join(if crlf { "\r\n" } else { "\n" });
            let mut bytes = text.into_bytes();
            bytes.truncate(cut.max(bytes.len() / 2));
            bytes
        })
}

proptest! {
    #[test]
    fn json_feedback_bodies_never_panic(body in bent_examples()) {
        let _ = own::parse_own(&body);
        let _ = postmark::parse_postmark(&body);
        let _ = sendgrid::parse_sendgrid(&body);
        if let Ok(envelope) = ses::parse_sns_envelope(&body) {
            let _ = envelope.outcome();
            let _ = envelope.signing_cert_url();
            let _ = ses::verify_sns_signature(&envelope, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        }
    }

    #[test]
    fn mail_bodies_never_panic(body in mail_like(), raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = message::parse_message(&body);
        let _ = message::parse_message(&raw);
    }

    #[test]
    fn signatures_and_urls_never_panic(text in ".{0,80}", bytes in proptest::collection::vec(any::<u8>(), 0..200), code in any::<u16>()) {
        let _ = ses::sns_url(&text);
        let _ = sendgrid::SendgridKey::from_base64(&text);
        let _ = super::is_permanent_mailbox_failure(code, Some(&text));
        let _ = super::clean_reason(&text);
        let envelope = ses::SnsEnvelope {
            message_type: "Notification".to_string(),
            message_id: Some(text.clone()),
            topic_arn: Some(text.clone()),
            subject: None,
            message: Some(text.clone()),
            timestamp: Some(text.clone()),
            token: None,
            subscribe_url: None,
            signature_version: Some("2".to_string()),
            signature: Some(text.clone()),
            signing_cert_url: Some(text.clone()),
        };
        let _ = ses::verify_sns_signature(&envelope, &bytes);
    }
}
