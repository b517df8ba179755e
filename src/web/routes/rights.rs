//! Admin routes for the data subject's rights and manual changes: provenance, export,
//! rectification, restriction, erasure, and `PUT …/subscriptions/{type}`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{EmailAddress, LawfulBasis, Source, Status};
use crate::service::{ManualChange, ManualChangeError, RightsError, MAX_EVIDENCE_CHARS};
use crate::web::extract::api_key::AdminKey;
use crate::web::extract::json_body::JsonObject;
use crate::web::extract::request_meta::request_meta;
use crate::web::problem::Problem;
use crate::web::AppState;

impl From<RightsError> for Problem {
    fn from(error: RightsError) -> Self {
        match error {
            RightsError::NotFound => Problem::not_found().with_detail(error.to_string()),
            RightsError::TargetExists => Problem::conflict("new_email", error.to_string()),
            RightsError::SameAddress => Problem::invalid_field("new_email", error.to_string()),
            RightsError::Store(e) => e.into(),
        }
    }
}

impl From<ManualChangeError> for Problem {
    fn from(error: ManualChangeError) -> Self {
        let field = match &error {
            ManualChangeError::BasisRequired => "lawful_basis",
            ManualChangeError::EvidenceRequired
            | ManualChangeError::Unsubscribed
            | ManualChangeError::Erased => "consent_evidence",
            ManualChangeError::ConfirmationNeedsOptIn | ManualChangeError::MailLimitReached => {
                "send_confirmation"
            }
            ManualChangeError::UnknownType(_) => "subscription_type",
            ManualChangeError::Store(_) => "",
        };
        match error {
            ManualChangeError::Store(e) => e.into(),
            ManualChangeError::MailLimitReached => {
                Problem::rate_limited(24 * 3600).with_detail(error.to_string())
            }
            other => Problem::invalid_field(field, other.to_string()),
        }
    }
}

pub fn parse_email(raw: &str, field: &str) -> Result<EmailAddress, Problem> {
    EmailAddress::parse(raw).map_err(|e| Problem::invalid_field(field, e.to_string()))
}

fn admin_meta(
    state: &AppState,
    req: &HttpRequest,
    caller: &AdminKey,
) -> crate::domain::RequestMeta {
    request_meta(req, state.subscriptions.config(), Some(&caller.0.name))
}

/// The body of a manual change, as the PUT route and each import line carry it.
#[derive(Deserialize)]
pub struct ManualChangeBody {
    pub status: Option<String>,
    pub lawful_basis: Option<String>,
    pub explanation: Option<String>,
    pub consent_evidence: Option<String>,
    #[serde(default)]
    pub send_confirmation: bool,
}

impl ManualChangeBody {
    /// Parses into a domain change for `type_id`, naming the field at fault.
    pub fn parse(self, state: &AppState, type_id: &str) -> Result<ManualChange, Problem> {
        let subscription_type = state
            .subscriptions
            .known_type(type_id)
            .map_err(|e| Problem::invalid_field("subscription_type", e.to_string()))?;
        let status = self
            .status
            .ok_or_else(|| Problem::invalid_field("status", "status is required"))?;
        let status: Status = status.parse().map_err(|_| {
            Problem::invalid_field(
                "status",
                "status is one of opted_in, not_subscribed, unsubscribed",
            )
        })?;
        let lawful_basis = self
            .lawful_basis
            .map(|b| b.parse::<LawfulBasis>())
            .transpose()
            .map_err(|_| {
                Problem::invalid_field(
                    "lawful_basis",
                    "lawful_basis is one of the six bases of GDPR Art. 6(1)",
                )
            })?;
        for (field, value) in [
            ("explanation", &self.explanation),
            ("consent_evidence", &self.consent_evidence),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_EVIDENCE_CHARS)
            {
                return Err(Problem::invalid_field(
                    field,
                    format!("at most {MAX_EVIDENCE_CHARS} characters"),
                ));
            }
        }
        let non_empty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        Ok(ManualChange {
            subscription_type,
            status,
            lawful_basis,
            explanation: non_empty(self.explanation),
            consent_evidence: non_empty(self.consent_evidence),
            send_confirmation: self.send_confirmation,
        })
    }
}

pub async fn change_subscription(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminKey,
    path: web::Path<(String, String)>,
    body: JsonObject<ManualChangeBody>,
) -> Result<HttpResponse, Problem> {
    let (email, type_id) = path.into_inner();
    let email = parse_email(&email, "email")?;
    let change = body.into_inner().parse(&state, &type_id)?;
    let meta = admin_meta(&state, &req, &caller);
    let result = state
        .subscriptions
        .change_manually(&email, &change, Source::AdminApi, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

pub async fn show_events(
    state: web::Data<AppState>,
    _caller: AdminKey,
    email: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let email = parse_email(&email, "email")?;
    Ok(HttpResponse::Ok().json(state.subscriptions.provenance(&email).await?))
}

pub async fn export(
    state: web::Data<AppState>,
    _caller: AdminKey,
    email: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let email = parse_email(&email, "email")?;
    let export = state.subscriptions.export(&email).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"optin-export.json\"",
        ))
        .json(export))
}

#[derive(Deserialize)]
pub struct RectificationBody {
    new_email: Option<String>,
}

pub async fn rectify(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminKey,
    email: web::Path<String>,
    body: JsonObject<RectificationBody>,
) -> Result<HttpResponse, Problem> {
    let old = parse_email(&email, "email")?;
    let new = body
        .into_inner()
        .new_email
        .ok_or_else(|| Problem::invalid_field("new_email", "new_email is required"))?;
    let new = parse_email(&new, "new_email")?;
    state
        .subscriptions
        .rectify(&old, &new, &admin_meta(&state, &req, &caller))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "rectified", "email": new })))
}

pub async fn restrict(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminKey,
    email: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    set_restriction(&state, &req, &caller, &email, true).await
}

pub async fn lift_restriction(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminKey,
    email: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    set_restriction(&state, &req, &caller, &email, false).await
}

async fn set_restriction(
    state: &AppState,
    req: &HttpRequest,
    caller: &AdminKey,
    email: &str,
    restricted: bool,
) -> Result<HttpResponse, Problem> {
    let email = parse_email(email, "email")?;
    let contact = state
        .subscriptions
        .set_restriction(&email, restricted, &admin_meta(state, req, caller))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "restricted": contact.is_restricted(), "restricted_since": contact.restricted_since })))
}

pub async fn erase(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminKey,
    email: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let email = parse_email(&email, "email")?;
    state
        .subscriptions
        .erase(&email, &admin_meta(&state, &req, &caller))
        .await?;
    tracing::info!(to = %email.masked(), "contact erased");
    Ok(HttpResponse::NoContent().finish())
}
