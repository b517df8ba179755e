//! `GET /confirm/{token}` shows one button and changes nothing (mail scanners fetch every
//! link); `POST` confirms. A repeated POST shows the same page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::page;
use super::AppState;
use crate::http::request_meta::request_meta;
use crate::subscriptions::ConfirmError;

fn refused(state: &AppState, req: &HttpRequest, error: ConfirmError) -> HttpResponse {
    match error {
        ConfirmError::InvalidToken(_) => page::link_invalid(state, req, false),
        ConfirmError::Expired => page::link_invalid(state, req, true),
        ConfirmError::Store(e) => page::store_error_page(state, req, e),
    }
}

pub async fn show_confirm_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state.subscriptions.check_confirm_token(&token) {
        Ok(_) => {
            let action_url = page::same_page_action(&token);
            page::render(
                &state,
                &req,
                StatusCode::OK,
                "confirm",
                None,
                json!({ "action_url": action_url }),
            )
        }
        Err(error) => refused(&state, &req, error),
    }
}

pub async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    let meta = request_meta(&req, state.subscriptions.config(), None);
    match state.subscriptions.confirm(&token, &meta).await {
        Ok(confirmed) => {
            metrics::counter!("optin_confirmations_total")
                .increment(u64::from(!confirmed.types.is_empty()));
            let locale = page::request_locale(&state, &req, confirmed.locale.as_deref());
            let types =
                page::type_names(&state, &locale, confirmed.types.iter().map(|t| t.as_str()));
            let data = json!({ "types": types, "preferences_url": confirmed.preferences_url });
            page::render(
                &state,
                &req,
                StatusCode::OK,
                "confirmed",
                confirmed.locale.as_deref(),
                data,
            )
        }
        Err(error) => refused(&state, &req, error),
    }
}
