//! `GET /preferences/{token}` shows every type with its status; `POST` saves the choices
//! of the form (or "unsubscribe from all") in one go.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::page;
use super::AppState;
use crate::http::request_meta::request_meta;
use crate::subscriptions::{PreferenceChoice, PreferencesError, PreferencesView};

fn refused(state: &AppState, req: &HttpRequest, error: PreferencesError) -> HttpResponse {
    match error {
        PreferencesError::InvalidToken(crate::tokens::TokenError::Expired)
        | PreferencesError::Gone => page::link_invalid(state, req, true),
        PreferencesError::InvalidToken(_) => page::link_invalid(state, req, false),
        PreferencesError::Store(e) => page::store_error_page(state, req, e),
    }
}

fn show(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
    view: &PreferencesView,
    saved: bool,
) -> HttpResponse {
    let data = json!({
        "action_url": page::same_page_action(token),
        "types": view.types,
        "saved": saved,
        "restricted": view.restricted,
        "export_action": format!("{token}/export"),
        "erase_url": format!("{token}/erase"),
    });
    page::render(
        state,
        req,
        StatusCode::OK,
        "preferences",
        Some(&view.locale),
        data,
    )
}

pub async fn show_preferences(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    let locale = page::request_locale(&state, &req, None);
    match state
        .subscriptions
        .view_preferences(&token, Some(&locale))
        .await
    {
        Ok(view) => show(&state, &req, &token, &view, false),
        Err(error) => refused(&state, &req, error),
    }
}

/// Reads the form: `subscription_types` (checked boxes), `shown` (the types the form
/// covered), `notice_version.<id>` and `unsubscribe_all`.
pub(super) fn parse_choice(body: &[u8]) -> PreferenceChoice {
    let mut choice = PreferenceChoice::default();
    let mut shown = BTreeSet::new();
    let mut versions = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "subscription_types" => {
                choice.opted_in.insert(value.into_owned());
            }
            "shown" => {
                shown.insert(value.into_owned());
            }
            "unsubscribe_all" => choice.unsubscribe_all = value == "1",
            other => {
                if let Some(type_id) = other.strip_prefix("notice_version.") {
                    versions.insert(type_id.to_string(), value.into_owned());
                }
            }
        }
    }
    choice.notice_versions = versions;
    choice.shown = shown;
    choice
}

pub async fn save_preferences(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let choice = parse_choice(&body);
    let locale = page::request_locale(&state, &req, None);
    let meta = request_meta(&req, state.subscriptions.config(), None);
    match state
        .subscriptions
        .save_preferences(&token, &choice, Some(&locale), &meta)
        .await
    {
        Ok(view) => show(&state, &req, &token, &view, true),
        Err(error) => refused(&state, &req, error),
    }
}

/// `POST /preferences/{token}/export`: the person's own data as a JSON download.
pub async fn export_own_data(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    let meta = request_meta(&req, state.subscriptions.config(), None);
    match state.subscriptions.export_own_data(&token, &meta).await {
        Ok(export) => HttpResponse::Ok()
            .insert_header((
                "Content-Disposition",
                "attachment; filename=\"my-data.json\"",
            ))
            .insert_header(("Cache-Control", "no-store"))
            .json(export),
        Err(error) => refused(&state, &req, error),
    }
}

/// `GET /preferences/{token}/erase`: asks first; changes nothing.
pub async fn ask_to_erase(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state.subscriptions.check_preferences_token(&token) {
        Ok(()) => {
            let data =
                json!({ "action_url": "erase", "back_url": format!("../{}", token.as_str()) });
            page::render(&state, &req, StatusCode::OK, "erase_confirm", None, data)
        }
        Err(error) => refused(&state, &req, error),
    }
}

/// `POST /preferences/{token}/erase`: erases everything held on the person.
pub async fn erase_own_data(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    let meta = request_meta(&req, state.subscriptions.config(), None);
    match state.subscriptions.erase_own_data(&token, &meta).await {
        Ok(()) => page::render(&state, &req, StatusCode::OK, "erased", None, json!({})),
        Err(error) => refused(&state, &req, error),
    }
}
