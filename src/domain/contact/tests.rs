//! What the transition tests share: a small catalog and a fresh contact.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};

use super::{Contact, FeedbackPolicy, SignupIntent};
use crate::domain::funnel::SignupDoor;
use crate::domain::rules::{MailAllowance, Rules};
use crate::domain::{
    Catalog, ContactId, EmailAddress, NoticeRef, RequestMeta, SubscriptionType, SubscriptionTypeId,
};

pub static META: LazyLock<RequestMeta> = LazyLock::new(|| RequestMeta {
    ip: Some("192.0.2.7".into()),
    user_agent: Some("test".into()),
    actor: None,
    request_id: Some("req-1".into()),
});

/// `news` and `offers` (marketing, double opt-in), `alerts` (service, single opt-in).
pub fn rules() -> Rules {
    rules_adjusted(|_| {})
}

/// [`rules`] with a consent of `type_id` that lasts `valid_days`, renewal asked
/// `renewal_days` before its end.
pub fn rules_with_validity(type_id: &str, valid_days: u32, renewal_days: u32) -> Rules {
    rules_adjusted(|t| {
        if t.id.as_str() == type_id {
            t.consent_valid_days = Some(valid_days);
            t.consent_renewal_days = renewal_days;
        }
    })
}

fn rules_adjusted(adjust: impl Fn(&mut SubscriptionType)) -> Rules {
    let types: Vec<SubscriptionType> = ["news", "offers", "alerts"]
        .into_iter()
        .map(|id| {
            let mut t: SubscriptionType = serde_json::from_value(serde_json::json!({
                "id": id,
                "purpose": if id == "alerts" { "service" } else { "marketing" },
                "double_opt_in": id != "alerts",
                "name": { "en": format!("{id} (en)"), "nl": format!("{id} (nl)") },
                "consent_notice": {
                    "en": { "version": "v2", "text": format!("We mail you {id}.") },
                    "nl": { "version": "v2", "text": format!("We mailen je {id}.") }
                },
                "past_notices": [{ "locale": "en", "version": "v1", "text": "Old text." }]
            }))
            .expect("a test type");
            adjust(&mut t);
            t
        })
        .collect();
    let catalog = Catalog::new(types, "en").expect("a test catalog");
    Rules::new(
        catalog,
        Duration::days(7),
        FeedbackPolicy {
            soft_bounce_limit: 3,
            window: Duration::days(14),
        },
    )
    .with_reminder_after(Some(Duration::hours(24)))
}

pub fn type_id(id: &str) -> SubscriptionTypeId {
    SubscriptionTypeId::parse(id).expect("a test type id")
}

/// The current English notice of a test type.
pub fn notice(id: &str) -> NoticeRef {
    let rules = rules();
    rules
        .catalog()
        .lookup(id)
        .expect("a test type")
        .notice_shown("en", "en", None)
        .expect("the current notice")
}

pub fn contact(now: DateTime<Utc>) -> Contact {
    let email = EmailAddress::parse("ann+news@example.com").expect("a test address");
    Contact::new(contact_id("c1"), email, "en", now)
}

pub fn contact_id(seed: &str) -> ContactId {
    ContactId::parse(&seed.repeat(32 / seed.len())).expect("a test contact id")
}

/// A signup from the `footer` form for `types`, in Dutch.
pub fn intent(types: &[&str]) -> SignupIntent {
    SignupIntent {
        types: types.iter().map(|t| (type_id(t), notice(t))).collect(),
        locale: "nl".into(),
        door: SignupDoor::Form,
        form_id: crate::domain::Evidence::parse(Some("footer")).expect("short evidence"),
        page_url: None,
        meta: META.clone(),
    }
}

/// A new contact that signed up for `news` in `locale` from a form, and its pending
/// confirmation's id.
pub fn signed_up(locale: &str, now: DateTime<Utc>) -> (Contact, uuid::Uuid) {
    let intent = SignupIntent {
        types: vec![(type_id("news"), notice("news"))],
        locale: locale.into(),
        door: SignupDoor::HostedForm,
        form_id: None,
        page_url: None,
        meta: META.clone(),
    };
    let planned = contact(now).sign_up(&intent, &rules(), MailAllowance::Available, now);
    let after = planned
        .plan()
        .and_then(|plan| plan.after())
        .cloned()
        .expect("a signup writes the contact");
    let id = after.pending()[0].id;
    (after, id)
}
