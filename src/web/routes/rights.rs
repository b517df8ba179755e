//! Admin routes for the data subject's rights and manual changes: provenance, export,
//! rectification, restriction, erasure, lifting a signup block, and
//! `PUT …/subscriptions/{type}`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{Contact, RequestMeta, Restriction, Source};
use crate::service::Export;
use crate::web::extract::api_key::AdminKey;
use crate::web::extract::json_body::JsonObject;
use crate::web::extract::manual_change::{parse_email, ManualChangeBody};
use crate::web::problem::Problem;
use crate::web::AppState;

fn admin_meta(state: &AppState, req: &HttpRequest, caller: &AdminKey) -> RequestMeta {
    state.meta(req, Some(&caller.0.name))
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
    let change =
        body.into_inner()
            .parse(state.subscriptions.catalog(), &type_id, Source::AdminApi)?;
    let result = state
        .subscriptions
        .change_manually(&email, &change, &admin_meta(&state, &req, &caller))
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
    set_restriction(&state, &req, &caller, &email, Restriction::Restrict).await
}

pub async fn lift_restriction(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminKey,
    email: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    set_restriction(&state, &req, &caller, &email, Restriction::Lift).await
}

async fn set_restriction(
    state: &AppState,
    req: &HttpRequest,
    caller: &AdminKey,
    email: &str,
    to: Restriction,
) -> Result<HttpResponse, Problem> {
    let email = parse_email(email, "email")?;
    let contact = state
        .subscriptions
        .set_restriction(&email, to, &admin_meta(state, req, caller))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "restricted": contact.is_restricted(), "restricted_since": contact.restricted_since() })))
}

/// `DELETE /v1/contacts/{email}/signup-block`: the person may be asked to confirm again.
pub async fn lift_signup_block(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminKey,
    email: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let email = parse_email(&email, "email")?;
    let contact: Contact = state
        .subscriptions
        .lift_signup_block(&email, &admin_meta(&state, &req, &caller))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "signup_blocked_since": contact.signup_blocked_since() })))
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
