//! `GET /unsubscribe/{token}` shows a button and changes nothing; `POST` unsubscribes at
//! once (RFC 8058 one-click, or the page's button) and answers 200 with a page, never a
//! redirect: browsers would turn a redirected POST into a GET.
//!
//! The page reaches no further than the link: it offers to rejoin the type through a new
//! confirmation mail, and to mail a preferences link (through a `manage` link). It never
//! holds a preferences link itself, since unsubscribe links travel in every newsletter.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::one_click::{is_one_click, urlencoded_field};
use super::page;
use crate::service::{UnsubscribeTarget, Unsubscribed};
use crate::web::extract::request_meta::request_meta;
use crate::web::pages::{self, SignupReceived, UnsubscribeData};
use crate::web::AppState;

fn page_data(
    state: &AppState,
    locale: &str,
    outcome: &Unsubscribed,
    token: &str,
    unsubscribed_now: bool,
) -> UnsubscribeData {
    // Rejoining is offered once the type is left, never beside the unsubscribe button.
    let offers_resubscribe = matches!(outcome.target, UnsubscribeTarget::Type(_))
        && (unsubscribed_now || outcome.already_unsubscribed);
    // Relative to /unsubscribe/{token}, so that it works behind any path prefix and
    // stays within the CSP's form-action 'self'.
    let manage_token = state
        .subscriptions
        .manage_url_for(&outcome.contact_id, locale);
    let manage_action = manage_token
        .rfind("/manage/")
        .map(|i| format!("..{}", &manage_token[i..]));
    UnsubscribeData {
        action_url: page::same_page_action(token),
        types: page::type_names(state, locale, outcome.types.iter().map(|t| t.as_str())),
        cancel_signup: matches!(outcome.target, UnsubscribeTarget::Signup(_)),
        stop_requests: matches!(outcome.target, UnsubscribeTarget::Requests),
        requests_blocked: outcome.requests_blocked,
        resubscribe_action: offers_resubscribe.then(|| format!("{token}/resubscribe")),
        manage_action,
        already_unsubscribed: outcome.already_unsubscribed,
    }
}

pub async fn show_unsubscribe_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    match state.subscriptions.describe_unsubscribe(&token).await {
        Ok(outcome) => {
            let locale = page::request_locale(&state, &req, outcome.locale.as_deref());
            let data = pages::Unsubscribe(page_data(&state, &locale, &outcome, &token, false));
            page::render(&state, &req, StatusCode::OK, Some(&locale), &data)
        }
        Err(error) => page::link_refused(&state, &req, error, None),
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
    let one_click = is_one_click(content_type, &body).await;
    let block = !one_click && urlencoded_field(&body, "block").is_some_and(|v| v == "1");
    let meta = request_meta(&req, state.subscriptions.config(), None);
    match state
        .subscriptions
        .unsubscribe(&token, one_click, block, &meta)
        .await
    {
        Ok(outcome) => {
            metrics::counter!("optin_unsubscribes_total", "source" => if one_click { "one_click" } else { "unsubscribe_page" }).increment(1);
            let locale = page::request_locale(&state, &req, outcome.locale.as_deref());
            let data = pages::Unsubscribed(page_data(&state, &locale, &outcome, &token, true));
            page::render(&state, &req, StatusCode::OK, Some(&locale), &data)
        }
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}

/// `POST /unsubscribe/{token}/resubscribe`: mails a new confirmation for the link's type.
/// The page is the same whether or not a mail went out.
pub async fn resubscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    let meta = request_meta(&req, state.subscriptions.config(), None);
    match state.subscriptions.resubscribe(&token, &meta).await {
        Ok(requested) => page::render(
            &state,
            &req,
            StatusCode::OK,
            requested.locale.as_deref(),
            &SignupReceived {},
        ),
        Err(error) => page::link_refused(&state, &req, error, None),
    }
}
