use std::sync::OnceLock;

use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::RsaPrivateKey;

use super::*;

const BOUNCE: &str = include_str!("../../../tests/fixtures/feedback/ses-bounce-permanent.json");
const COMPLAINT: &str = include_str!("../../../tests/fixtures/feedback/ses-complaint.json");
const TRANSIENT: &str =
    include_str!("../../../tests/fixtures/feedback/ses-event-bounce-transient.json");
const DELIVERY: &str = include_str!("../../../tests/fixtures/feedback/ses-delivery.json");
const CONFIRMATION: &str =
    include_str!("../../../tests/fixtures/feedback/ses-subscription-confirmation.json");

/// A signing key and its self-signed certificate, standing in for SNS's. Made once:
/// RSA key generation is slow.
struct Signer {
    key: RsaPrivateKey,
    cert_pem: String,
}

fn make_signer() -> Signer {
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8");
    let key_pair =
        rcgen::KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).expect("rcgen key");
    let cert = rcgen::CertificateParams::new(vec!["sns.us-east-1.amazonaws.com".to_string()])
        .expect("params")
        .self_signed(&key_pair)
        .expect("certificate");
    Signer {
        key,
        cert_pem: cert.pem(),
    }
}

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(make_signer)
}

fn other_signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(make_signer)
}

fn field<'a>(envelope: &'a serde_json::Value, name: &str) -> &'a str {
    envelope[name].as_str().unwrap_or_default()
}

/// The string AWS documents as signed, written out here apart from the code under test.
fn documented_string_to_sign(envelope: &serde_json::Value) -> String {
    let mut out = String::new();
    let mut add = |name: &str| {
        if envelope.get(name).is_some() {
            out.push_str(name);
            out.push('\n');
            out.push_str(field(envelope, name));
            out.push('\n');
        }
    };
    if field(envelope, "Type") == "Notification" {
        for name in [
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ] {
            add(name);
        }
    } else {
        for name in [
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ] {
            add(name);
        }
    }
    out
}

/// The fixture signed as SNS would, with SignatureVersion `version`.
fn signed(fixture: &str, version: &str, by: &Signer) -> serde_json::Value {
    let mut envelope: serde_json::Value = serde_json::from_str(fixture).expect("fixture");
    envelope["SignatureVersion"] = version.into();
    let text = documented_string_to_sign(&envelope);
    let signature = match version {
        "1" => SigningKey::<sha1::Sha1>::new(by.key.clone())
            .sign(text.as_bytes())
            .to_vec(),
        _ => SigningKey::<sha2::Sha256>::new(by.key.clone())
            .sign(text.as_bytes())
            .to_vec(),
    };
    envelope["Signature"] = base64::engine::general_purpose::STANDARD
        .encode(signature)
        .into();
    envelope
}

fn envelope_of(value: &serde_json::Value) -> SnsEnvelope {
    parse_sns_envelope(&serde_json::to_vec(value).expect("json")).expect("envelope")
}

#[test]
fn the_published_permanent_bounce_is_a_hard_bounce() {
    let SnsOutcome::Feedback(items) = parse_ses(BOUNCE.as_bytes()).expect("valid") else {
        panic!("not feedback");
    };
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.email, "jane@example.com");
    assert_eq!(item.kind, FeedbackKind::HardBounce);
    assert_eq!(
        item.provider_event_id.as_deref(),
        Some("ses:00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000")
    );
    assert_eq!(item.bounce_type.as_deref(), Some("Permanent/General"));
    assert_eq!(
        item.reason.as_deref(),
        Some("smtp; 550 5.1.1 [address] User")
    );
    assert_eq!(
        item.at.map(|at| at.timestamp_millis()),
        Some(1_453_906_778_237)
    );
}

#[test]
fn the_published_complaint_is_a_complaint() {
    let SnsOutcome::Feedback(items) = parse_ses(COMPLAINT.as_bytes()).expect("valid") else {
        panic!("not feedback");
    };
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].email, "richard@example.com");
    assert_eq!(items[0].kind, FeedbackKind::Complaint);
    assert_eq!(items[0].bounce_type.as_deref(), Some("abuse"));
    assert_eq!(
        items[0].provider_event_id.as_deref(),
        Some("ses:000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000")
    );
}

#[test]
fn an_event_publishing_transient_bounce_gives_one_soft_bounce_per_recipient() {
    let SnsOutcome::Feedback(items) = parse_ses(TRANSIENT.as_bytes()).expect("valid") else {
        panic!("not feedback");
    };
    let read: Vec<_> = items.iter().map(|i| (i.email.as_str(), i.kind)).collect();
    assert_eq!(
        read,
        [
            ("recipient@example.com", FeedbackKind::SoftBounce),
            ("other.recipient@example.com", FeedbackKind::SoftBounce),
        ]
    );
    // Both recipients share the notification's feedback id.
    assert_eq!(items[0].provider_event_id, items[1].provider_event_id);
    assert_eq!(items[1].reason.as_deref(), Some("Transient/MailboxFull"));
}

#[test]
fn an_undetermined_bounce_is_soft() {
    let undetermined = BOUNCE.replace(
        r#"\"bounceType\":\"Permanent\""#,
        r#"\"bounceType\":\"Undetermined\""#,
    );
    assert_ne!(undetermined, BOUNCE);
    let SnsOutcome::Feedback(items) = parse_ses(undetermined.as_bytes()).expect("valid") else {
        panic!("not feedback");
    };
    assert_eq!(items[0].kind, FeedbackKind::SoftBounce);
}

#[test]
fn deliveries_are_ignored() {
    assert_eq!(
        parse_ses(DELIVERY.as_bytes()).expect("valid"),
        SnsOutcome::Feedback(vec![])
    );
}

#[test]
fn a_subscription_confirmation_gives_its_url() {
    let SnsOutcome::ConfirmSubscription { subscribe_url } =
        parse_ses(CONFIRMATION.as_bytes()).expect("valid")
    else {
        panic!("not a confirmation");
    };
    assert_eq!(
        subscribe_url.host_str(),
        Some("sns.us-east-1.amazonaws.com")
    );
    assert!(subscribe_url
        .query()
        .is_some_and(|q| q.contains("Action=ConfirmSubscription")));
}

#[test]
fn a_subscription_confirmation_to_a_foreign_host_is_refused() {
    let mut envelope: serde_json::Value = serde_json::from_str(CONFIRMATION).expect("fixture");
    envelope["SubscribeURL"] =
        "https://sns.us-east-1.amazonaws.com.evil.example/?Action=ConfirmSubscription".into();
    let err = parse_ses(&serde_json::to_vec(&envelope).expect("json")).expect_err("foreign");
    assert_eq!(err.field, Some("SubscribeURL"));
}

#[test]
fn wrong_formats_are_rejected() {
    assert!(parse_ses(b"[]").is_err());
    assert!(parse_ses(b"{}").is_err());
    assert!(parse_ses(br#"{"Type":"Notice","Message":"{}"}"#).is_err());
    let not_ses = br#"{"Type":"Notification","MessageId":"1","Message":"Hello world!"}"#;
    assert_eq!(
        parse_ses(not_ses).expect_err("not ses").field,
        Some("Message")
    );
    let no_kind = br#"{"Type":"Notification","MessageId":"1","Message":"{\"mail\":{}}"}"#;
    assert_eq!(
        parse_ses(no_kind).expect_err("no kind").field,
        Some("Message")
    );
    let no_bounce =
        br#"{"Type":"Notification","MessageId":"1","Message":"{\"notificationType\":\"Bounce\"}"}"#;
    assert!(parse_ses(no_bounce).is_err());
    // A raw-delivery body (the SES message without the SNS envelope) is not the format.
    let mut envelope: serde_json::Value = serde_json::from_str(BOUNCE).expect("fixture");
    let raw = envelope["Message"].take();
    assert!(parse_ses(raw.as_str().unwrap_or_default().as_bytes()).is_err());
}

#[test]
fn a_redelivered_notification_keeps_its_event_id() {
    let first = parse_ses(BOUNCE.as_bytes()).expect("valid");
    let again = parse_ses(BOUNCE.as_bytes()).expect("valid");
    assert_eq!(first, again);
}

#[test]
fn the_sns_message_id_stands_in_for_a_missing_feedback_id() {
    let without = COMPLAINT.replace(r#"\"feedbackId\""#, r#"\"otherId\""#);
    let SnsOutcome::Feedback(items) = parse_ses(without.as_bytes()).expect("valid") else {
        panic!("not feedback");
    };
    assert_eq!(
        items[0].provider_event_id.as_deref(),
        Some("ses:a9a7f2d0-4b2f-5c39-9a2b-3c4cf0d6e1b2")
    );
}

#[test]
fn the_string_to_sign_is_the_documented_one() {
    for fixture in [BOUNCE, COMPLAINT, CONFIRMATION] {
        let value: serde_json::Value = serde_json::from_str(fixture).expect("fixture");
        assert_eq!(
            envelope_of(&value).string_to_sign().expect("fields"),
            documented_string_to_sign(&value)
        );
    }
}

#[test]
fn signatures_of_both_versions_verify() {
    let signer = signer();
    for fixture in [BOUNCE, COMPLAINT, CONFIRMATION] {
        for version in ["1", "2"] {
            let envelope = envelope_of(&signed(fixture, version, signer));
            assert_eq!(
                verify_sns_signature(&envelope, signer.cert_pem.as_bytes()),
                Ok(()),
                "version {version}"
            );
        }
    }
}

#[test]
fn bad_signatures_are_refused() {
    let signer = signer();
    let good = signed(BOUNCE, "2", signer);
    let cert = signer.cert_pem.as_bytes();

    // The message changed after signing: a hard bounce for someone else.
    let mut tampered = good.clone();
    tampered["Message"] = field(&good, "Message")
        .replace("jane@example.com", "john@example.com")
        .into();
    assert_eq!(
        verify_sns_signature(&envelope_of(&tampered), cert),
        Err(SnsSignatureError::Mismatch)
    );
    // A Subject added after signing is covered too.
    let mut with_subject = good.clone();
    with_subject["Subject"] = "changed".into();
    assert_eq!(
        verify_sns_signature(&envelope_of(&with_subject), cert),
        Err(SnsSignatureError::Mismatch)
    );
    // Signed with version 2, claiming version 1.
    let mut downgraded = good.clone();
    downgraded["SignatureVersion"] = "1".into();
    assert_eq!(
        verify_sns_signature(&envelope_of(&downgraded), cert),
        Err(SnsSignatureError::Mismatch)
    );
    // Signed by another key than the certificate's.
    let foreign = signed(BOUNCE, "2", other_signer());
    assert_eq!(
        verify_sns_signature(&envelope_of(&foreign), cert),
        Err(SnsSignatureError::Mismatch)
    );
    let mut unknown_version = good.clone();
    unknown_version["SignatureVersion"] = "3".into();
    assert_eq!(
        verify_sns_signature(&envelope_of(&unknown_version), cert),
        Err(SnsSignatureError::UnsupportedVersion)
    );
    let mut not_base64 = good.clone();
    not_base64["Signature"] = "%%%".into();
    assert_eq!(
        verify_sns_signature(&envelope_of(&not_base64), cert),
        Err(SnsSignatureError::SignatureNotBase64)
    );
    let mut unsigned_field = good.clone();
    unsigned_field
        .as_object_mut()
        .expect("object")
        .remove("TopicArn");
    assert_eq!(
        verify_sns_signature(&envelope_of(&unsigned_field), cert),
        Err(SnsSignatureError::MissingField("TopicArn"))
    );
    assert_eq!(
        verify_sns_signature(&envelope_of(&good), b"not a certificate"),
        Err(SnsSignatureError::UnreadableCertificate)
    );
    // The published example's placeholder signature does not verify either.
    assert_eq!(
        verify_sns_signature(
            &envelope_of(&serde_json::from_str(BOUNCE).expect("fixture")),
            cert
        ),
        Err(SnsSignatureError::Mismatch)
    );
}

#[test]
fn a_certificate_without_an_rsa_key_is_refused() {
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = rcgen::CertificateParams::new(vec!["sns.us-east-1.amazonaws.com".to_string()])
        .expect("params")
        .self_signed(&key_pair)
        .expect("certificate");
    let envelope = envelope_of(&signed(BOUNCE, "2", signer()));
    assert_eq!(
        verify_sns_signature(&envelope, cert.pem().as_bytes()),
        Err(SnsSignatureError::NotRsaKey)
    );
}

#[test]
fn only_sns_hosts_are_trusted_urls() {
    for good in [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
        "https://sns.eu-central-1.amazonaws.com/?Action=ConfirmSubscription&Token=abc",
        "https://SNS.US-WEST-2.AMAZONAWS.COM/cert.pem",
        "https://sns.us-east-1.amazonaws.com:443/cert.pem",
    ] {
        assert!(sns_url(good).is_some(), "{good}");
    }
    for bad in [
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/cert.pem",
        "https://evil.com/sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com@evil.com/cert.pem",
        "https://user:pass@sns.us-east-1.amazonaws.com/cert.pem",
        "https://evil.com#@sns.us-east-1.amazonaws.com/cert.pem",
        "https://evil.com?sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com./cert.pem",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
        "https://sns..amazonaws.com/cert.pem",
        "https://sns.amazonaws.com/cert.pem",
        "https://sns.a.b.amazonaws.com/cert.pem",
        "https://xsns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.cn/cert.pem",
        "https://sns.us_east_1.amazonaws.com/cert.pem",
        "https://52.94.0.1/cert.pem",
        "//sns.us-east-1.amazonaws.com/cert.pem",
        "sns.us-east-1.amazonaws.com/cert.pem",
        "",
    ] {
        assert!(sns_url(bad).is_none(), "{bad}");
    }
}

#[test]
fn the_signing_certificate_url_is_checked() {
    let mut envelope: serde_json::Value = serde_json::from_str(BOUNCE).expect("fixture");
    assert!(envelope_of(&envelope).signing_cert_url().is_ok());
    envelope["SigningCertURL"] = "https://evil.com/sns.us-east-1.amazonaws.com/cert.pem".into();
    assert_eq!(
        envelope_of(&envelope).signing_cert_url(),
        Err(SnsSignatureError::CertUrlNotSns)
    );
}

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-feedback";

fn sent_at(at: DateTime<Utc>) -> SnsEnvelope {
    let mut envelope: serde_json::Value = serde_json::from_str(BOUNCE).expect("fixture");
    envelope["Timestamp"] = at.to_rfc3339().into();
    envelope_of(&envelope)
}

#[test]
fn a_message_from_a_listed_topic_or_with_no_list_is_taken() {
    let now = Utc::now();
    let envelope = sent_at(now);
    assert_eq!(envelope.topic_arn.as_deref(), Some(TOPIC));
    assert_eq!(envelope.check_origin(&[], now), Ok(()));
    assert_eq!(
        envelope.check_origin(
            &[
                "arn:aws:sns:eu-west-1:123456789012:other".into(),
                TOPIC.into()
            ],
            now
        ),
        Ok(())
    );
}

#[test]
fn a_message_from_a_foreign_topic_is_refused() {
    let now = Utc::now();
    let allowed = ["arn:aws:sns:us-east-1:123456789012:our-bounces".to_string()];
    assert_eq!(
        sent_at(now).check_origin(&allowed, now),
        Err(SnsRefusal::TopicNotAllowed)
    );
    let mut without_topic: serde_json::Value = serde_json::from_str(BOUNCE).unwrap();
    without_topic["Timestamp"] = now.to_rfc3339().into();
    without_topic.as_object_mut().unwrap().remove("TopicArn");
    assert_eq!(
        envelope_of(&without_topic).check_origin(&allowed, now),
        Err(SnsRefusal::TopicNotAllowed)
    );
}

#[test]
fn a_message_older_than_an_hour_or_from_the_future_is_refused() {
    let now = Utc::now();
    let minute = Duration::minutes(1);
    assert_eq!(sent_at(now - minute * 59).check_origin(&[], now), Ok(()));
    assert_eq!(
        sent_at(now - minute * 61).check_origin(&[], now),
        Err(SnsRefusal::Stale)
    );
    assert_eq!(sent_at(now + minute * 4).check_origin(&[], now), Ok(()));
    assert_eq!(
        sent_at(now + minute * 6).check_origin(&[], now),
        Err(SnsRefusal::AheadOfClock)
    );
    // The published example, sent in 2016.
    assert_eq!(
        envelope_of(&serde_json::from_str(BOUNCE).unwrap()).check_origin(&[], now),
        Err(SnsRefusal::Stale)
    );
}

#[test]
fn a_message_without_a_readable_timestamp_is_malformed() {
    let mut envelope: serde_json::Value = serde_json::from_str(BOUNCE).unwrap();
    envelope["Timestamp"] = "yesterday".into();
    assert!(matches!(
        envelope_of(&envelope).check_origin(&[], Utc::now()),
        Err(SnsRefusal::Malformed(FeedbackFormatError {
            field: Some("Timestamp"),
            ..
        }))
    ));
}
