//! Admin routes for the data subject's rights and manual changes: provenance, export,
//! rectification, restriction, erasure, and `PUT …/subscriptions/{type}`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::Source;
use crate::service::{Export, ManualChangeError, RightsError};
use crate::web::extract::api_key::AdminKey;
use crate::web::extract::json_body::JsonObject;
use crate::web::extract::manual_change::{parse_email, ManualChangeBody};
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

pub(super) fn admin_meta(
    state: &AppState,
    req: &HttpRequest,
    caller: &AdminKey,
) -> crate::domain::RequestMeta {
    request_meta(req, state.subscriptions.config(), Some(&caller.0.name))
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
    let change = body.into_inner().parse(&state.subscriptions, &type_id)?;
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
    Ok(export_download(&export))
}

/// Everything held on a person as a JSON download, for the API and the console alike.
pub(in crate::web) fn export_download(export: &Export) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"optin-export.json\"",
        ))
        .insert_header(("Cache-Control", "no-store"))
        .json(export)
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
