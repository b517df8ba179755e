//! `GET /preferences/{token}` shows every type with its status; `POST` saves the choices
//! of the form (or "unsubscribe from all") in one go. Export and erasure need a link
//! issued within `links.rights_max_age_minutes`; an older one is offered a fresh link.

use std::collections::BTreeSet;

use super::page;
use crate::domain::PreferenceChoice;
use crate::service::PreferencesView;
use crate::web::pages::{EraseConfirm, Erased, LinkSent, Preferences};
use crate::web::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

fn show(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
    view: &PreferencesView,
    saved: bool,
) -> HttpResponse {
    let notice_changed = view.refused.is_some();
    let data = Preferences {
        action_url: page::same_page_action(token),
        types: &view.types,
        saved: saved && !notice_changed,
        notice_changed,
        restricted: view.restricted,
        signups_blocked: view.signups_blocked,
        rights_allowed: view.rights_allowed,
        export_action: format!("{token}/export"),
        erase_url: format!("{token}/erase"),
        fresh_link_action: format!("{token}/fresh-link"),
    };
    let status = if notice_changed {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    page::render(state, req, status, Some(&view.locale), &data)
}

pub async fn show_preferences(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    let locale = page::request_locale(&state, &req, None);
    match state.subscriptions.view_preferences(&token, &locale).await {
        Ok(view) => show(&state, &req, &token, &view, false),
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}

/// Reads the form: `subscription_types` (checked boxes), `shown` (the types the form
/// covered), `notice_version.<id>`, `unsubscribe_all` and `allow_signups`.
pub(super) fn parse_choice(body: &[u8]) -> PreferenceChoice {
    let mut choice = PreferenceChoice::default();
    let mut shown = BTreeSet::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "subscription_types" => {
                choice.opted_in.insert(value.into_owned());
            }
            "shown" => {
                shown.insert(value.into_owned());
            }
            "unsubscribe_all" => choice.unsubscribe_all = value == "1",
            "allow_signups" => choice.allow_signups = value == "1",
            _ => {}
        }
    }
    choice.notice_versions = super::signup::notice_versions_by_type(body);
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
    match state
        .subscriptions
        .save_preferences(&token, &choice, &locale, &state.meta(&req, None))
        .await
    {
        Ok(view) => show(&state, &req, &token, &view, true),
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}

/// `POST /preferences/{token}/export`: the person's own data as a JSON download.
pub async fn export_own_data(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state
        .subscriptions
        .export_own_data(&token, &state.meta(&req, None))
        .await
    {
        Ok(export) => HttpResponse::Ok()
            .insert_header((
                "Content-Disposition",
                "attachment; filename=\"my-data.json\"",
            ))
            .insert_header(("Cache-Control", "no-store"))
            .json(export),
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}

/// `GET /preferences/{token}/erase`: asks first; changes nothing.
pub async fn ask_to_erase(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state.subscriptions.check_rights_link(&token) {
        Ok(locale) => {
            let data = EraseConfirm {
                action_url: "erase".to_string(),
                back_url: format!("../{}", token.as_str()),
            };
            page::render(&state, &req, StatusCode::OK, locale.as_deref(), &data)
        }
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}

/// `POST /preferences/{token}/erase`: erases everything held on the person.
pub async fn erase_own_data(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state
        .subscriptions
        .erase_own_data(&token, &state.meta(&req, None))
        .await
    {
        Ok(locale) => page::render(&state, &req, StatusCode::OK, locale.as_deref(), &Erased {}),
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}

/// `POST /preferences/{token}/fresh-link`: mails a new preferences link, for export and
/// erasure from an aged one.
pub async fn mail_fresh_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state
        .subscriptions
        .mail_fresh_preferences_link(&token)
        .await
    {
        Ok(locale) => page::render(
            &state,
            &req,
            StatusCode::OK,
            locale.as_deref(),
            &LinkSent {},
        ),
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}
