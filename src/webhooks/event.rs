//! The webhook payload `{"type", "timestamp", "data"}`, one typed `data` per event type
//! (DESIGN.md, "Webhooks"), and the rule for which endpoint wants which event.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::event::{ConfirmMethod, Source};
use crate::domain::{ErasureReason, LawfulBasis, QuarantineReason, Status};

/// Every event type a receiver can get; the names are those of the wire and of the
/// `events` filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "subscription.opted_in")]
    SubscriptionOptedIn,
    #[serde(rename = "subscription.unsubscribed")]
    SubscriptionUnsubscribed,
    #[serde(rename = "subscription.not_subscribed")]
    SubscriptionNotSubscribed,
    #[serde(rename = "contact.restricted")]
    ContactRestricted,
    #[serde(rename = "contact.restriction_lifted")]
    ContactRestrictionLifted,
    #[serde(rename = "contact.rectified")]
    ContactRectified,
    #[serde(rename = "contact.erased")]
    ContactErased,
    #[serde(rename = "contact.bounced")]
    ContactBounced,
    #[serde(rename = "contact.complained")]
    ContactComplained,
    #[serde(rename = "signup.quarantined")]
    SignupQuarantined,
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::SubscriptionOptedIn,
        EventType::SubscriptionUnsubscribed,
        EventType::SubscriptionNotSubscribed,
        EventType::ContactRestricted,
        EventType::ContactRestrictionLifted,
        EventType::ContactRectified,
        EventType::ContactErased,
        EventType::ContactBounced,
        EventType::ContactComplained,
        EventType::SignupQuarantined,
        EventType::WebhookTest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SubscriptionOptedIn => "subscription.opted_in",
            EventType::SubscriptionUnsubscribed => "subscription.unsubscribed",
            EventType::SubscriptionNotSubscribed => "subscription.not_subscribed",
            EventType::ContactRestricted => "contact.restricted",
            EventType::ContactRestrictionLifted => "contact.restriction_lifted",
            EventType::ContactRectified => "contact.rectified",
            EventType::ContactErased => "contact.erased",
            EventType::ContactBounced => "contact.bounced",
            EventType::ContactComplained => "contact.complained",
            EventType::SignupQuarantined => "signup.quarantined",
            EventType::WebhookTest => "webhook.test",
        }
    }

    /// `subscription.*`: a notice about one subscription type of a contact.
    pub fn is_about_a_subscription(self) -> bool {
        matches!(
            self,
            EventType::SubscriptionOptedIn
                | EventType::SubscriptionUnsubscribed
                | EventType::SubscriptionNotSubscribed
        )
    }

    /// The event announcing that a subscription's status became `status`.
    pub fn for_status(status: Status) -> EventType {
        match status {
            Status::OptedIn => EventType::SubscriptionOptedIn,
            Status::Unsubscribed => EventType::SubscriptionUnsubscribed,
            Status::NotSubscribed => EventType::SubscriptionNotSubscribed,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

/// `data` of the three `subscription.*` events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionChanged {
    pub email: String,
    pub subscription_type: String,
    pub status: Status,
    pub previous_status: Status,
    pub source: Source,
    /// `null` when the subscription has none, e.g. after an unsubscribe.
    pub lawful_basis: Option<LawfulBasis>,
    /// The provenance event that recorded the change.
    pub event_id: Uuid,
    pub at: DateTime<Utc>,
    /// The contact's version after the change: a receiver drops anything older.
    pub version: u64,
    /// Only on an opt-in by a confirmation: `same_browser`, `button` or `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_method: Option<ConfirmMethod>,
    /// Only on an opt-in by a confirmation: seconds since its mail was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_since_sent: Option<u64>,
}

/// `data` of `contact.restricted`, `contact.restriction_lifted` and `contact.complained`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactChanged {
    pub email: String,
    pub at: DateTime<Utc>,
    pub version: u64,
}

/// `data` of `contact.rectified`: `email` is the new address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRectified {
    pub email: String,
    pub previous_email: String,
    pub at: DateTime<Utc>,
    pub version: u64,
}

/// `data` of `contact.erased`. No version: the contact no longer exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactErased {
    pub email: String,
    pub reason: ErasureReason,
    pub at: DateTime<Utc>,
}

/// Defined in the domain, which records it on the `marked_unreachable` event.
pub use crate::domain::BounceType;

/// `data` of `contact.bounced`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactBounced {
    pub email: String,
    pub bounce_type: BounceType,
    pub at: DateTime<Utc>,
    pub version: u64,
}

/// `data` of `signup.quarantined`: a signup held instead of mailed. `id` is what
/// `POST /v1/quarantine/{id}/release` and `DELETE /v1/quarantine/{id}` take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignupQuarantined {
    pub id: String,
    pub email: String,
    pub types: Vec<String>,
    pub reason: QuarantineReason,
    pub at: DateTime<Utc>,
}

/// `data` of `webhook.test`: serialized as `{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `type` and `data` together, so that a payload can only pair a type with its own data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EventData {
    #[serde(rename = "subscription.opted_in")]
    SubscriptionOptedIn(SubscriptionChanged),
    #[serde(rename = "subscription.unsubscribed")]
    SubscriptionUnsubscribed(SubscriptionChanged),
    #[serde(rename = "subscription.not_subscribed")]
    SubscriptionNotSubscribed(SubscriptionChanged),
    #[serde(rename = "contact.restricted")]
    ContactRestricted(ContactChanged),
    #[serde(rename = "contact.restriction_lifted")]
    ContactRestrictionLifted(ContactChanged),
    #[serde(rename = "contact.rectified")]
    ContactRectified(ContactRectified),
    #[serde(rename = "contact.erased")]
    ContactErased(ContactErased),
    #[serde(rename = "contact.bounced")]
    ContactBounced(ContactBounced),
    #[serde(rename = "contact.complained")]
    ContactComplained(ContactChanged),
    #[serde(rename = "signup.quarantined")]
    SignupQuarantined(SignupQuarantined),
    #[serde(rename = "webhook.test")]
    WebhookTest(Empty),
}

impl EventData {
    /// The `subscription.*` event for a status change; the type follows `data.status`,
    /// so the two cannot disagree.
    pub fn subscription_changed(data: SubscriptionChanged) -> EventData {
        match EventType::for_status(data.status) {
            EventType::SubscriptionOptedIn => EventData::SubscriptionOptedIn(data),
            EventType::SubscriptionUnsubscribed => EventData::SubscriptionUnsubscribed(data),
            _ => EventData::SubscriptionNotSubscribed(data),
        }
    }

    pub fn event_type(&self) -> EventType {
        match self {
            EventData::SubscriptionOptedIn(_) => EventType::SubscriptionOptedIn,
            EventData::SubscriptionUnsubscribed(_) => EventType::SubscriptionUnsubscribed,
            EventData::SubscriptionNotSubscribed(_) => EventType::SubscriptionNotSubscribed,
            EventData::ContactRestricted(_) => EventType::ContactRestricted,
            EventData::ContactRestrictionLifted(_) => EventType::ContactRestrictionLifted,
            EventData::ContactRectified(_) => EventType::ContactRectified,
            EventData::ContactErased(_) => EventType::ContactErased,
            EventData::ContactBounced(_) => EventType::ContactBounced,
            EventData::ContactComplained(_) => EventType::ContactComplained,
            EventData::SignupQuarantined(_) => EventType::SignupQuarantined,
            EventData::WebhookTest(_) => EventType::WebhookTest,
        }
    }

    /// The subscription type a `subscription.*` event is about; `None` for the others.
    pub fn subscription_type(&self) -> Option<&str> {
        match self {
            EventData::SubscriptionOptedIn(d)
            | EventData::SubscriptionUnsubscribed(d)
            | EventData::SubscriptionNotSubscribed(d) => Some(&d.subscription_type),
            _ => None,
        }
    }
}

/// One delivery body. `timestamp` is when the event happened, fixed when it is queued,
/// so that every retry sends (and signs) the same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    #[serde(flatten)]
    pub data: EventData,
    pub timestamp: DateTime<Utc>,
}

impl WebhookEvent {
    pub fn new(data: EventData, timestamp: DateTime<Utc>) -> Self {
        Self { data, timestamp }
    }

    /// The JSON body as sent. Render it once, when queueing: every retry must send the
    /// same bytes, or the receiver's deduplication by `webhook-id` sees two payloads.
    pub fn to_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// The body of a `contact.erased` notice with its address removed (`"email": null`), as
/// it is kept once it is dead-lettered: the erased person's address stays only until the
/// notice is delivered or given up. `None` for any other body.
pub fn without_erased_address(body: &str) -> Option<String> {
    let mut notice: serde_json::Value = serde_json::from_str(body).ok()?;
    if notice.get("type")?.as_str()? != EventType::ContactErased.as_str() {
        return None;
    }
    *notice.get_mut("data")?.get_mut("email")? = serde_json::Value::Null;
    serde_json::to_string(&notice).ok()
}

/// What one endpoint asked for. `None` means "all".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointFilter {
    pub events: Option<Vec<EventType>>,
    pub subscription_types: Option<Vec<String>>,
}

impl EndpointFilter {
    /// Whether an endpoint with this filter gets `event`. The subscription type filter
    /// applies only to `subscription.*`: a `contact.*` notice concerns every type, and
    /// erasures and restrictions must reach every holder of the data (Art. 17(2), 19).
    /// `webhook.test` is addressed to one endpoint by the admin, so it always goes.
    pub fn wants(&self, event: &EventData) -> bool {
        self.admits(event.event_type(), event.subscription_type())
    }

    fn admits(&self, event_type: EventType, subscription_type: Option<&str>) -> bool {
        if event_type == EventType::WebhookTest {
            return true;
        }
        if let Some(events) = &self.events {
            if !events.contains(&event_type) {
                return false;
            }
        }
        match (subscription_type, &self.subscription_types) {
            (Some(subscription_type), Some(wanted)) => {
                wanted.iter().any(|w| w == subscription_type)
            }
            _ => true,
        }
    }

    /// Whether the endpoint receives personal data of people subscribed to
    /// `subscription_type`: that type's `subscription.*` notices, or any `contact.*`
    /// notice (those concern people whatever their types). For the record of processing.
    pub fn receives_contacts_of(&self, subscription_type: &str) -> bool {
        EventType::ALL
            .into_iter()
            .filter(|event_type| *event_type != EventType::WebhookTest)
            .any(|event_type| {
                let about_the_type = event_type.is_about_a_subscription();
                self.admits(event_type, about_the_type.then_some(subscription_type))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_receives_a_types_contacts_through_its_notices_or_any_contact_notice() {
        let filter = |events: Option<Vec<EventType>>, types: Option<Vec<&str>>| EndpointFilter {
            events,
            subscription_types: types.map(|t| t.into_iter().map(String::from).collect()),
        };
        let everything = filter(None, None);
        assert!(everything.receives_contacts_of("news"));
        let other_type_only = filter(
            Some(vec![EventType::SubscriptionOptedIn]),
            Some(vec!["billing"]),
        );
        assert!(!other_type_only.receives_contacts_of("news"));
        assert!(other_type_only.receives_contacts_of("billing"));
        // Erasures reach every endpoint that takes them, whatever its type filter.
        let erasures_too = filter(
            Some(vec![
                EventType::SubscriptionOptedIn,
                EventType::ContactErased,
            ]),
            Some(vec!["billing"]),
        );
        assert!(erasures_too.receives_contacts_of("news"));
        let tests_only = filter(Some(vec![EventType::WebhookTest]), None);
        assert!(!tests_only.receives_contacts_of("news"));
    }

    #[test]
    fn only_an_erasure_notice_loses_its_address_when_given_up() {
        let erased = WebhookEvent::new(
            EventData::ContactErased(ContactErased {
                email: "ann@example.com".into(),
                reason: ErasureReason::Retention,
                at: at(),
            }),
            at(),
        );
        let body = String::from_utf8(erased.to_body().unwrap()).unwrap();
        let kept = without_erased_address(&body).expect("an erasure notice");
        assert!(!kept.contains("ann@example.com"), "{kept}");
        let kept: serde_json::Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(kept["data"]["email"], serde_json::Value::Null);
        assert_eq!(kept["data"]["reason"], "retention");
        let other = String::from_utf8(opted_in_event().to_body().unwrap()).unwrap();
        assert_eq!(without_erased_address(&other), None);
    }

    fn opted_in_event() -> WebhookEvent {
        WebhookEvent::new(opted_in("blog-updates"), at())
    }
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
    }

    fn opted_in(subscription_type: &str) -> EventData {
        EventData::subscription_changed(SubscriptionChanged {
            email: "ann@example.com".into(),
            subscription_type: subscription_type.into(),
            status: Status::OptedIn,
            previous_status: Status::NotSubscribed,
            source: Source::ConfirmLink,
            lawful_basis: Some(LawfulBasis::Consent),
            event_id: Uuid::nil(),
            at: at(),
            version: 7,
            confirm_method: None,
            seconds_since_sent: None,
        })
    }

    fn restricted() -> EventData {
        EventData::ContactRestricted(ContactChanged {
            email: "ann@example.com".into(),
            at: at(),
            version: 8,
        })
    }

    #[test]
    fn every_event_type_round_trips_through_its_name() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert!("subscription.opted-in".parse::<EventType>().is_err());
    }

    #[test]
    fn a_subscription_event_serializes_with_type_timestamp_and_data() {
        let event = WebhookEvent::new(opted_in("blog"), at());
        let json: serde_json::Value = serde_json::from_slice(&event.to_body().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "subscription.opted_in",
                "timestamp": "2026-01-02T03:04:05Z",
                "data": {
                    "email": "ann@example.com",
                    "subscription_type": "blog",
                    "status": "opted_in",
                    "previous_status": "not_subscribed",
                    "source": "confirm_link",
                    "lawful_basis": "consent",
                    "event_id": "00000000-0000-0000-0000-000000000000",
                    "at": "2026-01-02T03:04:05Z",
                    "version": 7
                }
            })
        );
        let back: WebhookEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn the_subscription_event_type_follows_the_new_status() {
        let mut data = match opted_in("blog") {
            EventData::SubscriptionOptedIn(d) => d,
            other => panic!("{other:?}"),
        };
        data.status = Status::Unsubscribed;
        assert_eq!(
            EventData::subscription_changed(data.clone()).event_type(),
            EventType::SubscriptionUnsubscribed
        );
        data.status = Status::NotSubscribed;
        assert_eq!(
            EventData::subscription_changed(data).event_type(),
            EventType::SubscriptionNotSubscribed
        );
    }

    #[test]
    fn contact_events_carry_the_fields_design_names() {
        let erased = WebhookEvent::new(
            EventData::ContactErased(ContactErased {
                email: "ann@example.com".into(),
                reason: ErasureReason::SelfService,
                at: at(),
            }),
            at(),
        );
        let json = serde_json::to_value(&erased).unwrap();
        assert_eq!(json["type"], "contact.erased");
        assert_eq!(
            json["data"],
            serde_json::json!({"email": "ann@example.com", "reason": "self_service", "at": "2026-01-02T03:04:05Z"})
        );
        let rectified = serde_json::to_value(WebhookEvent::new(
            EventData::ContactRectified(ContactRectified {
                email: "new@example.com".into(),
                previous_email: "old@example.com".into(),
                at: at(),
                version: 3,
            }),
            at(),
        ))
        .unwrap();
        assert_eq!(rectified["data"]["previous_email"], "old@example.com");
        assert_eq!(rectified["data"]["version"], 3);
        let bounced = serde_json::to_value(WebhookEvent::new(
            EventData::ContactBounced(ContactBounced {
                email: "ann@example.com".into(),
                bounce_type: BounceType::HardBounce,
                at: at(),
                version: 4,
            }),
            at(),
        ))
        .unwrap();
        assert_eq!(bounced["data"]["bounce_type"], "hard_bounce");
        let test = serde_json::to_value(WebhookEvent::new(EventData::WebhookTest(Empty {}), at()))
            .unwrap();
        assert_eq!(test["type"], "webhook.test");
        assert_eq!(test["data"], serde_json::json!({}));
    }

    #[test]
    fn a_quarantined_signup_carries_id_email_types_reason_and_time() {
        let held = WebhookEvent::new(
            EventData::SignupQuarantined(SignupQuarantined {
                id: "00aa.0193".into(),
                email: "ann@example.com".into(),
                types: vec!["blog".into(), "offers".into()],
                reason: QuarantineReason::IpBurst,
                at: at(),
            }),
            at(),
        );
        let json = serde_json::to_value(&held).unwrap();
        assert_eq!(json["type"], "signup.quarantined");
        assert_eq!(
            json["data"],
            serde_json::json!({"id": "00aa.0193", "email": "ann@example.com",
                "types": ["blog", "offers"], "reason": "ip_burst", "at": "2026-01-02T03:04:05Z"})
        );
        // Not a subscription.* notice: an endpoint's type filter lets it through.
        let filter = EndpointFilter {
            events: None,
            subscription_types: Some(vec!["other".into()]),
        };
        assert!(filter.wants(&held.data));
    }

    #[test]
    fn no_filter_wants_everything() {
        let all = EndpointFilter::default();
        assert!(all.wants(&opted_in("blog")));
        assert!(all.wants(&restricted()));
    }

    #[test]
    fn the_event_filter_drops_other_types() {
        let filter = EndpointFilter {
            events: Some(vec![EventType::SubscriptionOptedIn]),
            subscription_types: None,
        };
        assert!(filter.wants(&opted_in("blog")));
        assert!(!filter.wants(&restricted()));
    }

    #[test]
    fn the_type_filter_applies_to_subscription_events_only() {
        let filter = EndpointFilter {
            events: None,
            subscription_types: Some(vec!["blog".into()]),
        };
        assert!(filter.wants(&opted_in("blog")));
        assert!(!filter.wants(&opted_in("offers")));
        assert!(filter.wants(&restricted()));
    }

    #[test]
    fn both_filters_must_agree() {
        let filter = EndpointFilter {
            events: Some(vec![EventType::ContactRestricted]),
            subscription_types: Some(vec!["blog".into()]),
        };
        assert!(!filter.wants(&opted_in("blog")));
        assert!(filter.wants(&restricted()));
    }

    #[test]
    fn a_test_delivery_ignores_the_filters() {
        let filter = EndpointFilter {
            events: Some(vec![EventType::ContactErased]),
            subscription_types: Some(vec!["blog".into()]),
        };
        assert!(filter.wants(&EventData::WebhookTest(Empty {})));
    }
}
