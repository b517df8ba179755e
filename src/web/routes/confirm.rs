//! `GET /confirm/{token}` shows one button and changes nothing (mail scanners fetch every
//! link); `POST` confirms. A repeated POST shows the same page. Both speak the language
//! of the confirmation mail.

use super::page;
use crate::web::extract::request_meta::request_meta;
use crate::web::pages::{Confirm, Confirmed};
use crate::web::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

pub async fn show_confirm_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state.subscriptions.check_confirm_token(&token) {
        Ok((claims, _)) => page::render(
            &state,
            &req,
            StatusCode::OK,
            claims.locale.as_deref(),
            &Confirm {
                action_url: page::same_page_action(&token),
            },
        ),
        Err(error) => page::link_refused(&state, &req, error, None),
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
            let data = Confirmed {
                types,
                preferences_url: confirmed.preferences_url,
            };
            page::render(&state, &req, StatusCode::OK, Some(&locale), &data)
        }
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}
