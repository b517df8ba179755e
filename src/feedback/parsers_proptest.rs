//! Arbitrary bodies never panic any feedback parser: JSON in the shapes providers send,
//! mail in the shape of reports, and garbage.

use proptest::prelude::*;

use super::{message, own, postmark, sendgrid, ses};

/// JSON built from the field names the parsers look for, so that deep paths are
/// reached, plus raw bytes.
fn json_like() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        prop_oneof![
            Just("Bounce".to_string()),
            Just("Complaint".to_string()),
            Just("Notification".to_string()),
            Just("SubscriptionConfirmation".to_string()),
            Just("Permanent".to_string()),
            Just("HardBounce".to_string()),
            Just("SpamComplaint".to_string()),
            Just("bounce".to_string()),
            Just("dropped".to_string()),
            Just("Bounced Address".to_string()),
            Just("hard_bounce".to_string()),
            Just("2".to_string()),
            ".{0,40}",
        ]
        .prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("email".to_string()),
                    Just("kind".to_string()),
                    Just("at".to_string()),
                    Just("event".to_string()),
                    Just("type".to_string()),
                    Just("reason".to_string()),
                    Just("timestamp".to_string()),
                    Just("Type".to_string()),
                    Just("Message".to_string()),
                    Just("SubscribeURL".to_string()),
                    Just("RecordType".to_string()),
                    Just("ID".to_string()),
                    Just("Email".to_string()),
                    Just("notificationType".to_string()),
                    Just("bounce".to_string()),
                    Just("bounceType".to_string()),
                    Just("bouncedRecipients".to_string()),
                    Just("emailAddress".to_string()),
                    ".{0,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        value.prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
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
    fn json_feedback_bodies_never_panic(body in json_like()) {
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
