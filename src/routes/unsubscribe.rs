//! `GET /unsubscribe/{token}` shows a button and changes nothing; `POST` unsubscribes at
//! once (RFC 8058 one-click, or the page's button) and answers 200 with a page, never a
//! redirect: browsers would turn a redirected POST into a GET.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::one_click::{is_one_click, urlencoded_field};
use super::page;
use super::AppState;
use crate::domain::Source;
use crate::http::request_meta::request_meta;
use crate::subscriptions::{UnsubscribeError, UnsubscribeTarget, Unsubscribed};

fn refused(state: &AppState, req: &HttpRequest, error: UnsubscribeError) -> HttpResponse {
    match error {
        UnsubscribeError::InvalidToken(crate::tokens::TokenError::Expired) => {
            page::link_invalid(state, req, true)
        }
        UnsubscribeError::InvalidToken(_) => page::link_invalid(state, req, false),
        UnsubscribeError::Store(e) => page::store_error_page(state, req, e),
    }
}

fn page_data(
    state: &AppState,
    locale: &str,
    outcome: &Unsubscribed,
    token: &str,
) -> serde_json::Value {
    // Relative to /unsubscribe/{token}, so that it works behind any path prefix and
    // stays within the CSP's form-action 'self'.
    let preferences_url = state.subscriptions.preferences_url_for(&outcome.contact_id);
    let preferences_path = preferences_url
        .rfind("/preferences/")
        .map(|i| format!("..{}", &preferences_url[i..]));
    let cancel_signup = matches!(outcome.target, UnsubscribeTarget::Signup(_));
    json!({
        "action_url": page::same_page_action(token),
        "types": page::type_names(state, locale, outcome.types.iter().map(|t| t.as_str())),
        "cancel_signup": cancel_signup,
        "preferences_url": preferences_path,
        "resubscribe_action": if cancel_signup { None } else { preferences_path.clone() },
        "already_unsubscribed": outcome.already_unsubscribed,
    })
}

pub async fn show_unsubscribe_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state.subscriptions.describe_unsubscribe(&token).await {
        Ok(outcome) => {
            let locale = page::request_locale(&state, &req, outcome.locale.as_deref());
            let data = page_data(&state, &locale, &outcome, &token);
            page::render(
                &state,
                &req,
                StatusCode::OK,
                "unsubscribe",
                Some(&locale),
                data,
            )
        }
        Err(error) => refused(&state, &req, error),
    }
}

pub async fn unsubscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let one_click = is_one_click(content_type, &body);
    let source = if one_click {
        Source::OneClick
    } else {
        Source::UnsubscribePage
    };
    let block = !one_click && urlencoded_field(&body, "block").is_some_and(|v| v == "1");
    let meta = request_meta(&req, state.subscriptions.config(), None);
    match state
        .subscriptions
        .unsubscribe(&token, source, block, &meta)
        .await
    {
        Ok(outcome) => {
            metrics::counter!("optin_unsubscribes_total", "source" => if one_click { "one_click" } else { "unsubscribe_page" }).increment(1);
            let locale = page::request_locale(&state, &req, outcome.locale.as_deref());
            let data = page_data(&state, &locale, &outcome, &token);
            page::render(
                &state,
                &req,
                StatusCode::OK,
                "unsubscribed",
                Some(&locale),
                data,
            )
        }
        Err(error) => refused(&state, &req, error),
    }
}
