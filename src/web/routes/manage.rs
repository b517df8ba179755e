//! `GET /manage/{token}` shows one button and changes nothing; `POST` mails a preferences
//! link to the address. Both pages are the same whatever the address's state, so a
//! `manage` link (in every newsletter footer) tells nothing and shows nothing.

use super::page;
use crate::web::pages::{LinkSent, Manage};
use crate::web::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

pub async fn show_manage_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state.subscriptions.check_manage_token(&token) {
        Ok(claims) => page::render(
            &state,
            &req,
            StatusCode::OK,
            claims.locale.as_deref(),
            &Manage {
                action_url: page::same_page_action(&token),
            },
        ),
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}

pub async fn mail_preferences_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state.subscriptions.request_preferences_link(&token).await {
        Ok(claims) => page::render(
            &state,
            &req,
            StatusCode::OK,
            claims.locale.as_deref(),
            &LinkSent {},
        ),
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}
