//! optin's own feedback JSON: `{"email", "kind", "reason"?, "at"?}` or an array of them,
//! for senders whose provider optin does not read natively.

use serde::Deserialize;

use super::{clean_reason, FeedbackFormatError, FeedbackInput, FeedbackItem, FeedbackKind};

const INPUT: FeedbackInput = FeedbackInput::Own;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    email: String,
    kind: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    at: Option<String>,
}

/// Reads one item or an array of them. Every item must be whole: a bad one rejects the
/// body, so that a sender learns of its mistake instead of losing part of a batch.
pub fn parse_own(body: &[u8]) -> Result<Vec<FeedbackItem>, FeedbackFormatError> {
    // The shape is told first, then each record is read on its own, so that an error
    // names the item and the field at fault.
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| FeedbackFormatError::json(INPUT, &e))?;
    let records = match value {
        serde_json::Value::Array(values) => values,
        object @ serde_json::Value::Object(_) => vec![object],
        _ => {
            return Err(FeedbackFormatError::new(
                INPUT,
                "expected an object or an array of objects",
            ))
        }
    };
    records
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let record: Record = serde_json::from_value(value).map_err(|e| {
                FeedbackFormatError::new(INPUT, format!("item {index}: {}", record_problem(&e)))
            })?;
            record_item(record).map_err(|mut err| {
                err.problem = format!("item {index}: {}", err.problem);
                err
            })
        })
        .collect()
}

/// `from_value` errors carry no position; say what serde says when it names a field
/// and never repeat a value.
fn record_problem(err: &serde_json::Error) -> String {
    let text = err.to_string();
    if text.starts_with("missing field") || text.starts_with("unknown field") {
        // "unknown field `x`, expected one of ..." names only field names.
        text
    } else {
        "a field has the wrong type (`email`, `kind`, `reason` and `at` are strings)".to_string()
    }
}

fn record_item(record: Record) -> Result<FeedbackItem, FeedbackFormatError> {
    if record.email.trim().is_empty() {
        return Err(FeedbackFormatError::field(
            INPUT,
            "email",
            "`email` is empty",
        ));
    }
    let kind = FeedbackKind::from_name(&record.kind).ok_or_else(|| {
        FeedbackFormatError::field(
            INPUT,
            "kind",
            "`kind` must be one of hard_bounce, soft_bounce, complaint",
        )
    })?;
    let at = match record.at.as_deref() {
        None => None,
        Some(text) => Some(super::parse_rfc3339(Some(text)).ok_or_else(|| {
            FeedbackFormatError::field(INPUT, "at", "`at` must be an RFC 3339 date-time")
        })?),
    };
    Ok(FeedbackItem {
        email: record.email,
        kind,
        reason: record.reason.as_deref().and_then(clean_reason),
        at,
        provider_event_id: None,
        bounce_type: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_item_is_read() {
        let items = parse_own(
            br#"{"email":"jane@example.com","kind":"hard_bounce","reason":"550 5.1.1 <jane@example.com> unknown","at":"2026-01-27T14:59:38Z"}"#,
        )
        .expect("valid");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].email, "jane@example.com");
        assert_eq!(items[0].kind, FeedbackKind::HardBounce);
        assert_eq!(
            items[0].reason.as_deref(),
            Some("550 5.1.1 [address] unknown")
        );
        assert_eq!(
            items[0].at.map(|at| at.to_rfc3339()),
            Some("2026-01-27T14:59:38+00:00".to_string())
        );
    }

    #[test]
    fn an_array_is_read_in_order() {
        let items = parse_own(
            br#"[{"email":"a@example.com","kind":"soft_bounce"},{"email":"b@example.com","kind":"complaint"}]"#,
        )
        .expect("valid");
        let kinds: Vec<_> = items.iter().map(|i| (i.email.as_str(), i.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("a@example.com", FeedbackKind::SoftBounce),
                ("b@example.com", FeedbackKind::Complaint)
            ]
        );
        assert_eq!(parse_own(b"[]").expect("empty array"), vec![]);
    }

    #[test]
    fn wrong_shapes_are_rejected_naming_the_field() {
        let err = parse_own(br#"{"email":"a@example.com","kind":"bounce"}"#).expect_err("kind");
        assert_eq!(err.field, Some("kind"));
        let err = parse_own(br#"{"email":"a@example.com","kind":"complaint","at":"yesterday"}"#)
            .expect_err("at");
        assert_eq!(err.field, Some("at"));
        let err =
            parse_own(br#"[{"email":"a@example.com","kind":"complaint"},{"kind":"complaint"}]"#)
                .expect_err("missing email");
        assert!(err.problem.contains("item 1"), "{err}");
        assert!(err.problem.contains("`email`"), "{err}");
        let err = parse_own(br#"{"email":"a@example.com","kind":"complaint","extra":1}"#)
            .expect_err("unknown field");
        assert!(err.problem.contains("unknown field `extra`"), "{err}");
        let err = parse_own(br#"{"email":7,"kind":"complaint"}"#).expect_err("type");
        assert!(err.problem.contains("wrong type"), "{err}");
        assert!(parse_own(br#""a@example.com""#).is_err());
        assert!(parse_own(b"not json").is_err());
        assert!(parse_own(br#"{"email":" ","kind":"complaint"}"#).is_err());
    }
}
