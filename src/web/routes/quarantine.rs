//! The quarantine on the admin API: `GET /v1/quarantine` lists the held signups,
//! `POST /v1/quarantine/{id}/release` mails the confirmation they would have had,
//! `DELETE /v1/quarantine/{id}` drops one.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::domain::QuarantineId;
use crate::service::MAX_QUARANTINE_PAGE;
use crate::web::extract::api_key::AdminKey;
use crate::web::problem::Problem;
use crate::web::AppState;

/// Held signups one listing answers unless `?limit=` says otherwise.
const DEFAULT_PAGE: usize = 100;

#[derive(serde::Deserialize)]
struct ListQuery {
    /// Read as text: an empty `?limit=` is a mistake to answer, not the default.
    limit: Option<String>,
}

pub async fn list_quarantine(
    state: web::Data<AppState>,
    req: HttpRequest,
    _caller: AdminKey,
) -> Result<HttpResponse, Problem> {
    let bad_limit = || {
        Problem::invalid_field(
            "limit",
            format!("limit: a number from 1 to {MAX_QUARANTINE_PAGE}"),
        )
    };
    let query =
        serde_html_form::from_str::<ListQuery>(req.query_string()).map_err(|_| bad_limit())?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(raw) => raw.parse::<usize>().map_err(|_| bad_limit())?,
    };
    if !(1..=MAX_QUARANTINE_PAGE).contains(&limit) {
        return Err(bad_limit());
    }
    let held = state.subscriptions.quarantine(limit).await?;
    Ok(HttpResponse::Ok().json(json!({ "quarantined": held })))
}

pub async fn release(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminKey,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let id = parse_id(&id)?;
    let meta = state.meta(&req, Some(&caller.0.name));
    state.subscriptions.release_quarantined(&id, &meta).await?;
    Ok(HttpResponse::Accepted().json(json!({ "status": "released" })))
}

pub async fn drop_held(
    state: web::Data<AppState>,
    _caller: AdminKey,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    state
        .subscriptions
        .drop_quarantined(&parse_id(&id)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An id that is not one of ours names nothing held: 404, like one released meanwhile.
fn parse_id(raw: &str) -> Result<QuarantineId, Problem> {
    raw.parse()
        .map_err(|_| Problem::not_found().with_detail("no held signup with that id"))
}
