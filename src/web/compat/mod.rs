//! Drop-in answers for clients written against HubSpot's communication preferences API
//! (v3 and v4) and Mailchimp's Marketing API (lists and list members): such a client
//! works against optin by changing its base URL and key. These handlers only translate
//! shapes and errors; every rule is the service's, reached through the same operations
//! as optin's own API (manual changes as `admin_api`, double opt-ins as `signup_api`).

pub mod hubspot;
pub mod mailchimp;

use actix_web::{web, HttpRequest};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::auth::Scope;
use crate::domain::{Evidence, RequestMeta, SubscriptionType};
use crate::web::extract::api_key::{authorize, Caller};
use crate::web::extract::json_body::from_object;
use crate::web::extract::manual_change::parse_evidence;
use crate::web::problem::Problem;
use crate::web::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    hubspot::configure(cfg);
    mailchimp::configure(cfg);
}

/// An unknown path under a compatible API: 404 in that vendor's error shape, so its
/// clients read it as they read the vendor's own.
pub fn not_found(req: &HttpRequest) -> Option<actix_web::HttpResponse> {
    use actix_web::ResponseError;
    let path = req.path();
    let problem = Problem::not_found().with_detail("The requested resource could not be found.");
    if path.starts_with("/communication-preferences/") {
        Some(hubspot::HubSpotError::from(problem).error_response())
    } else if path == "/3.0" || path.starts_with("/3.0/") {
        Some(mailchimp::MailchimpError::from(problem).error_response())
    } else {
        None
    }
}

/// The key's name for events; reads need `send` (or `admin`), writes `admin`. `basic`
/// also takes the key as the HTTP Basic password, as Mailchimp's clients send it.
fn caller(req: &HttpRequest, scope: Scope, basic: bool) -> Result<Caller, Problem> {
    authorize(req, scope, basic)
}

/// What events record about an API write: the client, and the key's name as `actor`.
fn admin_meta(state: &AppState, req: &HttpRequest, caller: &Caller) -> RequestMeta {
    state.meta(req, Some(&caller.name))
}

/// A JSON object body, read here rather than by actix's extractor so that every failure
/// (too large, not JSON, a field of the wrong type) is answered in the vendor's shape.
fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<T, Problem> {
    let bytes = body.map_err(|error| {
        if error.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE
        {
            Problem::payload_too_large("the body is larger than the configured limit")
        } else {
            Problem::malformed_body("the body could not be read")
        }
    })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Problem::malformed_body(format!("the body is not JSON: {e}")))?;
    from_object(value, "body")
}

/// A configured subscription type by id: a HubSpot subscription definition, a Mailchimp list.
fn subscription_type<'a>(state: &'a AppState, id: &str) -> Option<&'a SubscriptionType> {
    state.subscriptions.catalog().get(id)
}

/// Every configured type, in configuration order.
fn subscription_types(state: &AppState) -> &[SubscriptionType] {
    state.subscriptions.catalog().all()
}

/// Names and descriptions are shown in the default locale, as a single-language API expects.
fn default_locale(state: &AppState) -> &str {
    state.default_locale()
}

/// RFC 3339 with milliseconds and `Z`, as both vendors write times.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Free text kept as evidence or explanation, under the same rule as on the own API.
fn evidence(field: &str, value: Option<&str>) -> Result<Option<Evidence>, Problem> {
    parse_evidence(value, field)
}
