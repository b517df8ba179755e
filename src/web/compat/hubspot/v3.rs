//! HubSpot communication preferences v3, at `/communication-preferences/v3/…`. Its
//! statuses are `SUBSCRIBED` (opted in) or `NOT_SUBSCRIBED` (anything else).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    definition, known_type, legal_basis_fields, opt_in_change, parse_legal_basis, plain_change,
    subscription, HubSpotResult,
};
use crate::auth::Scope;
use crate::domain::{Contact, Status, SubscriptionType};
use crate::web::compat::{
    admin_meta, caller, default_locale, evidence, json_body, subscription_types,
};
use crate::web::extract::manual_change::parse_email;
use crate::web::middleware::no_store::no_store;
use crate::web::AppState;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/communication-preferences/v3")
            .wrap(no_store())
            .route("/definitions", web::get().to(list_definitions))
            .route("/status/email/{emailAddress}", web::get().to(show_statuses))
            .route("/subscribe", web::post().to(subscribe))
            .route("/unsubscribe", web::post().to(unsubscribe)),
    );
}

/// One type's status as v3 shows it.
fn status_of(state: &AppState, t: &SubscriptionType, contact: Option<&Contact>) -> Value {
    let locale = default_locale(state);
    let stored = subscription(contact, t);
    let subscribed = stored.is_some_and(|s| s.status == Status::OptedIn);
    let (legal_basis, explanation) = legal_basis_fields(stored.and_then(|s| s.lawful_basis));
    json!({
        "id": t.id,
        "name": t.name_in(locale, locale),
        "description": t.description_in(locale, locale),
        "status": if subscribed { "SUBSCRIBED" } else { "NOT_SUBSCRIBED" },
        "sourceOfStatus": "SUBSCRIPTION_STATUS",
        "legalBasis": legal_basis,
        "legalBasisExplanation": explanation,
    })
}

pub async fn list_definitions(state: web::Data<AppState>, req: HttpRequest) -> HubSpotResult {
    caller(&req, Scope::Send, false)?;
    let definitions: Vec<Value> = subscription_types(&state)
        .iter()
        .map(|t| definition(&state, t))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "subscriptionDefinitions": definitions })))
}

pub async fn show_statuses(
    state: web::Data<AppState>,
    req: HttpRequest,
    email: web::Path<String>,
) -> HubSpotResult {
    caller(&req, Scope::Send, false)?;
    let email = parse_email(&email, "emailAddress")?;
    let contact = state.subscriptions.contact(&email).await?;
    let statuses: Vec<Value> = subscription_types(&state)
        .iter()
        .map(|t| status_of(&state, t, contact.as_ref()))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "recipient": email.as_str(),
        "subscriptionStatuses": statuses,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChangeBody {
    email_address: Option<String>,
    subscription_id: Option<String>,
    legal_basis: Option<String>,
    legal_basis_explanation: Option<String>,
}

pub async fn subscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HubSpotResult {
    change_status(state, req, body, true).await
}

pub async fn unsubscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HubSpotResult {
    change_status(state, req, body, false).await
}

/// Subscribe or unsubscribe, as a manual change recorded with source `admin_api`.
/// Unsubscribing someone already unsubscribed is not an error here (HubSpot answers
/// 400): the request's wish holds either way.
async fn change_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
    subscribe: bool,
) -> HubSpotResult {
    let key = caller(&req, Scope::Admin, false)?;
    let body: StatusChangeBody = json_body(body)?;
    let email = parse_email(
        body.email_address.as_deref().unwrap_or_default(),
        "emailAddress",
    )?;
    let t = known_type(
        &state,
        "subscriptionId",
        body.subscription_id.as_deref().unwrap_or_default(),
    )?;
    let explanation = evidence(
        "legalBasisExplanation",
        body.legal_basis_explanation.as_deref(),
    )?;
    let basis = parse_legal_basis(body.legal_basis.as_deref(), subscribe)?;
    let change = if subscribe {
        opt_in_change(t, basis, explanation)
    } else {
        plain_change(t, Status::Unsubscribed, explanation)
    };
    let meta = admin_meta(&state, &req, &key);
    let result = state
        .subscriptions
        .change_manually(&email, &change, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(status_of(&state, t, Some(&result.contact))))
}
