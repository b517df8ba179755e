//! Arbitrary request bodies never panic any of our parsers: JSON bodies, the signup and
//! preferences forms, NDJSON import lines and the one-click body.

use proptest::prelude::*;

use super::{eligibility, imports, one_click, preferences, signup};

/// JSON-ish text: arbitrary values in the shapes our bodies use, and garbage.
fn json_like() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("email".to_string()),
                    Just("subscription_types".to_string()),
                    Just("notice_version".to_string()),
                    Just("source".to_string()),
                    Just("status".to_string()),
                    Just("emails".to_string()),
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
        proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

proptest! {
    #[test]
    fn json_bodies_never_panic(body in json_like()) {
        let _ = serde_json::from_slice::<signup::SignupBody>(&body);
        let _ = serde_json::from_slice::<eligibility::BatchBody>(&body);
        let _ = serde_json::from_slice::<crate::web::extract::manual_change::ManualChangeBody>(&body);
        let _ = serde_json::from_slice::<imports::ImportLine>(&body);
    }

    #[test]
    fn form_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300), text in "[a-z_.=&%0-9-]{0,200}") {
        let _ = serde_html_form::from_bytes::<signup::SignupForm>(&body);
        let _ = serde_html_form::from_bytes::<signup::SignupForm>(text.as_bytes());
        let choice = preferences::parse_choice(&body);
        prop_assert!(choice.opted_in.len() <= body.len());
        let _ = preferences::parse_choice(text.as_bytes());
        let body = actix_web::web::Bytes::copy_from_slice(text.as_bytes());
        let _ = futures_util::FutureExt::now_or_never(one_click::is_one_click(Some("application/x-www-form-urlencoded"), &body));
    }
}
