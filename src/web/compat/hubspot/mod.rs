//! HubSpot's communication preferences API: a subscription definition is a subscription
//! type and its `id` is the type's id; the key comes as `Authorization: Bearer`.
//!
//! - [`v3`]: definitions, the statuses of an address, subscribe and unsubscribe;
//! - [`v4`]: statuses by subscriber, single and batch reads and writes, unsubscribe-all,
//!   generated links, in the `{status, results, startedAt, completedAt}` envelope;
//! - here: HubSpot's error shape and the mappings both versions share.

mod v3;
mod v4;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use serde_json::{json, Value};

use super::{default_locale, timestamp};
use crate::domain::{
    Contact, Evidence, LawfulBasis, ManualChange, Source, Status, SubscriptionType,
};
use crate::service::{RequestError, StoreError};
use crate::web::problem::Problem;
use crate::web::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    v3::configure(cfg);
    v4::configure(cfg);
}

/// HubSpot's error body: `{"status": "error", "message", "correlationId", "category"}`.
/// Built from optin's own problem, so every rule keeps its one mapping to a status code.
#[derive(Debug)]
pub struct HubSpotError(Problem);

impl From<Problem> for HubSpotError {
    fn from(problem: Problem) -> Self {
        Self(problem)
    }
}

impl From<StoreError> for HubSpotError {
    fn from(error: StoreError) -> Self {
        Self(error.into())
    }
}

impl From<RequestError> for HubSpotError {
    fn from(error: RequestError) -> Self {
        Self(error.into())
    }
}

impl std::fmt::Display for HubSpotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// HubSpot's category for a status code.
fn category(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "INVALID_AUTHENTICATION",
        403 => "MISSING_SCOPES",
        404 => "OBJECT_NOT_FOUND",
        409 => "CONFLICT",
        429 => "RATE_LIMITS",
        400..=499 => "VALIDATION_ERROR",
        _ => "INTERNAL_ERROR",
    }
}

impl ResponseError for HubSpotError {
    fn status_code(&self) -> StatusCode {
        // HubSpot answers invalid input with 400, never 422; a person's block on
        // confirmation requests is one more validation error to it.
        match self.0.status_code() {
            _ if self.0.slug() == "signup-blocked" => StatusCode::BAD_REQUEST,
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            other => other,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = self
            .0
            .detail
            .clone()
            .unwrap_or_else(|| self.0.title.to_string());
        let mut body = json!({
            "status": "error",
            "message": message,
            "correlationId": uuid::Uuid::new_v4().to_string(),
            "category": category(status),
        });
        if let Some(field) = &self.0.field {
            body["context"] = json!({ "field": [field] });
        }
        self.0.response_builder(status).json(body)
    }
}

pub type HubSpotResult = Result<HttpResponse, HubSpotError>;

/// HubSpot's `legalBasis` as a lawful basis. `NON_GDPR` is refused for an opt-in (optin
/// records a GDPR basis for every opt-in) and ignored for any other change, which needs
/// no basis: an unsubscribe is never refused for its basis.
fn parse_legal_basis(raw: Option<&str>, opt_in: bool) -> Result<Option<LawfulBasis>, Problem> {
    let Some(raw) = raw else { return Ok(None) };
    match raw {
        "NON_GDPR" if !opt_in => Ok(None),
        "CONSENT_WITH_NOTICE" | "PROCESS_AND_STORE" => Ok(Some(LawfulBasis::Consent)),
        "LEGITIMATE_INTEREST_CLIENT" | "LEGITIMATE_INTEREST_OTHER" | "LEGITIMATE_INTEREST_PQL" => {
            Ok(Some(LawfulBasis::LegitimateInterests))
        }
        "PERFORMANCE_OF_CONTRACT" => Ok(Some(LawfulBasis::Contract)),
        "NON_GDPR" => Err(Problem::invalid_field(
            "legalBasis",
            "legalBasis: NON_GDPR is refused; optin records a GDPR lawful basis for every opt-in",
        )),
        _ => Err(Problem::invalid_field(
            "legalBasis",
            "legalBasis is one of CONSENT_WITH_NOTICE, PROCESS_AND_STORE, LEGITIMATE_INTEREST_CLIENT, LEGITIMATE_INTEREST_OTHER, LEGITIMATE_INTEREST_PQL, PERFORMANCE_OF_CONTRACT",
        )),
    }
}

/// The HubSpot name of a lawful basis, and for the three HubSpot has no name for, an
/// explanation that names it (HubSpot's clients refuse any other `legalBasis` value).
fn legal_basis_fields(basis: Option<LawfulBasis>) -> (Value, Value) {
    match basis {
        None => (Value::Null, Value::Null),
        Some(LawfulBasis::Consent) => (json!("CONSENT_WITH_NOTICE"), Value::Null),
        Some(LawfulBasis::LegitimateInterests) => (json!("LEGITIMATE_INTEREST_OTHER"), Value::Null),
        Some(LawfulBasis::Contract) => (json!("PERFORMANCE_OF_CONTRACT"), Value::Null),
        Some(other) => (
            Value::Null,
            json!(format!("optin lawful basis: {}", other.as_str())),
        ),
    }
}

/// A subscription definition as HubSpot's v3 lists it. optin keeps no creation time for
/// configured types: both times are the Unix epoch.
fn definition(state: &AppState, t: &SubscriptionType) -> Value {
    let locale = default_locale(state);
    let epoch = timestamp(chrono::DateTime::UNIX_EPOCH);
    json!({
        "id": t.id,
        "name": t.name_in(locale, locale),
        "description": t.description_in(locale, locale),
        "purpose": if t.is_marketing() { "Marketing" } else { "Service" },
        "communicationMethod": "Email",
        "isActive": true,
        "isDefault": false,
        "isInternal": false,
        "createdAt": epoch,
        "updatedAt": epoch,
    })
}

/// The subscription type a request names, or HubSpot's 400 naming the field.
fn known_type<'a>(
    state: &'a AppState,
    field: &str,
    id: &str,
) -> Result<&'a SubscriptionType, Problem> {
    super::subscription_type(state, id).ok_or_else(|| {
        Problem::invalid_field(
            field,
            format!(
                "{field}: unknown subscription id '{}'",
                id.chars().take(64).collect::<String>()
            ),
        )
    })
}

/// HubSpot sends v4 subscription ids as numbers; optin's are names. Either is read as text.
fn subscription_id(value: Option<&Value>, field: &str) -> Result<String, Problem> {
    match value {
        Some(Value::String(id)) => Ok(id.clone()),
        Some(Value::Number(id)) => Ok(id.to_string()),
        _ => Err(Problem::invalid_field(
            field,
            format!("{field} is required: the id of a subscription definition"),
        )),
    }
}

/// HubSpot's subscribe as a manual change. For consent, `legalBasisExplanation` is the
/// evidence; without it (or without any basis) optin asks the person by a double opt-in.
fn opt_in_change(
    t: &SubscriptionType,
    basis: Option<LawfulBasis>,
    explanation: Option<Evidence>,
) -> ManualChange {
    let mut change = plain_change(t, Status::OptedIn, None);
    change.lawful_basis = basis;
    match (basis, explanation) {
        (Some(LawfulBasis::Consent), Some(evidence)) => change.consent_evidence = Some(evidence),
        (None | Some(LawfulBasis::Consent), _) => {
            change.lawful_basis = Some(LawfulBasis::Consent);
            change.send_confirmation = true;
        }
        (Some(_), explanation) => change.explanation = explanation,
    }
    change
}

/// A change to `status` other than an opt-in; the explanation, if any, is recorded.
fn plain_change(
    t: &SubscriptionType,
    status: Status,
    explanation: Option<Evidence>,
) -> ManualChange {
    ManualChange {
        subscription_type: t.clone(),
        status,
        lawful_basis: None,
        explanation,
        consent_evidence: None,
        send_confirmation: false,
        source: Source::AdminApi,
        consented_at: None,
    }
}

/// The stored status of one type, if the contact holds one.
fn subscription<'a>(
    contact: Option<&'a Contact>,
    t: &SubscriptionType,
) -> Option<&'a crate::domain::Subscription> {
    contact.and_then(|c| c.subscription(&t.id))
}
