//! Admin routes for the data subject's rights and manual changes: provenance, export,
//! rectification, restriction, erasure, lifting a signup block, and
//! `PUT …/subscriptions/{type}`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{Restriction, Source};
use crate::service::Export;
use crate::web::extract::contact_request::ContactRequest;
use crate::web::extract::json_body::JsonObject;
use crate::web::extract::manual_change::{parse_email, ManualChangeBody};
use crate::web::problem::Problem;

type Answer = Result<HttpResponse, Problem>;

pub async fn change_subscription(
    contact: ContactRequest,
    path: web::Path<(String, String)>,
    body: JsonObject<ManualChangeBody>,
) -> Answer {
    let (_, type_id) = path.into_inner();
    let subscriptions = &contact.state.subscriptions;
    let change = body
        .into_inner()
        .parse(subscriptions.catalog(), &type_id, Source::AdminApi)?;
    let result = subscriptions
        .change_manually(&contact.email, &change, &contact.meta)
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

pub async fn show_events(contact: ContactRequest) -> Answer {
    let provenance = contact
        .state
        .subscriptions
        .provenance(&contact.email)
        .await?;
    Ok(HttpResponse::Ok().json(provenance))
}

pub async fn export(contact: ContactRequest) -> Answer {
    let export = contact.state.subscriptions.export(&contact.email).await?;
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

pub async fn rectify(contact: ContactRequest, body: JsonObject<RectificationBody>) -> Answer {
    let new = body
        .into_inner()
        .new_email
        .ok_or_else(|| Problem::invalid_field("new_email", "new_email is required"))?;
    let new = parse_email(&new, "new_email")?;
    contact
        .state
        .subscriptions
        .rectify(&contact.email, &new, &contact.meta)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "rectified", "email": new })))
}

pub async fn restrict(contact: ContactRequest) -> Answer {
    set_restriction(contact, Restriction::Restrict).await
}

pub async fn lift_restriction(contact: ContactRequest) -> Answer {
    set_restriction(contact, Restriction::Lift).await
}

async fn set_restriction(contact: ContactRequest, to: Restriction) -> Answer {
    let after = contact
        .state
        .subscriptions
        .set_restriction(&contact.email, to, &contact.meta)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "restricted": after.is_restricted(),
        "restricted_since": after.restricted_since(),
    })))
}

/// `DELETE /v1/contacts/{email}/signup-block`: the person may be asked to confirm again.
pub async fn lift_signup_block(contact: ContactRequest) -> Answer {
    let after = contact
        .state
        .subscriptions
        .lift_signup_block(&contact.email, &contact.meta)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "signup_blocked_since": after.signup_blocked_since() })))
}

pub async fn erase(contact: ContactRequest) -> Answer {
    contact
        .state
        .subscriptions
        .erase(&contact.email, &contact.meta)
        .await?;
    tracing::info!(to = %contact.email.masked(), "contact erased");
    Ok(HttpResponse::NoContent().finish())
}
