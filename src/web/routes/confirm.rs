//! `GET /confirm/{token}` shows one button and changes nothing (mail scanners fetch every
//! link); `POST` confirms. A link already used shows "already confirmed" with the types'
//! names, on GET and on POST alike, and never a preferences link. Both speak the
//! language of the confirmation mail.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::page;
use crate::domain::Confirmed as Outcome;
use crate::service::ConfirmPage;
use crate::web::pages::{Confirm, Confirmed};
use crate::web::AppState;

pub async fn show_confirm_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state.subscriptions.confirmation_page(&token).await {
        Ok(ConfirmPage {
            confirmed: Outcome::Now { locale, .. },
            ..
        }) => page::render(
            &state,
            &req,
            StatusCode::OK,
            Some(&locale),
            &Confirm {
                action_url: page::same_page_action(&token),
            },
        ),
        Ok(done) => confirmed_page(&state, &req, done),
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}

pub async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state
        .subscriptions
        .confirm(&token, &state.meta(&req, None))
        .await
    {
        Ok(done) => confirmed_page(&state, &req, done),
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}

fn confirmed_page(state: &AppState, req: &HttpRequest, done: ConfirmPage) -> HttpResponse {
    let locale = page::request_locale(state, req, Some(done.confirmed.locale()));
    let data = Confirmed {
        types: page::type_names(
            state,
            &locale,
            done.confirmed
                .types()
                .iter()
                .map(crate::domain::subscription_type::SubscriptionTypeId::as_str),
        ),
        already: matches!(done.confirmed, Outcome::Already { .. }),
        preferences_url: done.preferences_url,
    };
    page::render(state, req, StatusCode::OK, Some(&locale), &data)
}
