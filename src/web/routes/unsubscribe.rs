//! `GET /unsubscribe/{token}` shows a button and changes nothing; `POST` unsubscribes at
//! once (RFC 8058 one-click, or the page's button) and answers 200 with a page, never a
//! redirect: browsers would turn a redirected POST into a GET.
//!
//! The page reaches no further than the link: it offers to rejoin the type through a new
//! confirmation mail, and to mail a preferences link (through a `manage` link). It never
//! holds a preferences link itself, since unsubscribe links travel in every newsletter.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::one_click::{is_one_click, urlencoded_field};
use super::page;
use crate::domain::{BlockRequests, SubscriptionTypeId, UnsubscribeTarget};
use crate::service::{UnsubscribeKind, UnsubscribePage};
use crate::web::extract::link_page::LinkPage;
use crate::web::pages::{self, SignupReceived, UnsubscribeData};

/// Whether the page is shown before the POST or as its answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    Before,
    After,
}

fn page_data(
    link: &LinkPage,
    locale: &str,
    answer: &UnsubscribePage,
    shown: Shown,
) -> UnsubscribeData {
    let token = &link.token;
    let outcome = &answer.outcome;
    // Rejoining is offered once the type is left, never beside the unsubscribe button.
    let offers_resubscribe = matches!(outcome.target, UnsubscribeTarget::Type(_))
        && (shown == Shown::After || outcome.already_unsubscribed);
    // Relative to /unsubscribe/{token}, so that it works behind any path prefix and
    // stays within the CSP's form-action 'self'.
    let manage_action = answer
        .manage_url
        .rfind("/manage/")
        .map(|i| format!("..{}", &answer.manage_url[i..]));
    UnsubscribeData {
        action_url: link.same_page_action(),
        types: page::type_names(
            &link.state,
            locale,
            outcome.types.iter().map(SubscriptionTypeId::as_str),
        ),
        cancel_signup: matches!(outcome.target, UnsubscribeTarget::Signup(_)),
        stop_requests: matches!(outcome.target, UnsubscribeTarget::Requests),
        requests_blocked: outcome.requests_blocked,
        resubscribe_action: offers_resubscribe.then(|| format!("{token}/resubscribe")),
        manage_action,
        already_unsubscribed: outcome.already_unsubscribed,
        nothing_pending: matches!(outcome.target, UnsubscribeTarget::Signup(_))
            && outcome.types.is_empty(),
    }
}

pub async fn show_unsubscribe_page(link: LinkPage) -> HttpResponse {
    let described = link
        .state
        .subscriptions
        .describe_unsubscribe(&link.token)
        .await;
    link.answer(described, |answer| {
        let locale = link.locale(Some(&answer.locale));
        let data = pages::Unsubscribe(page_data(&link, &locale, &answer, Shown::Before));
        link.render(StatusCode::OK, Some(&locale), &data)
    })
}

pub async fn unsubscribe(link: LinkPage, body: web::Bytes) -> HttpResponse {
    let content_type = link
        .req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let kind = if is_one_click(content_type, &body).await {
        UnsubscribeKind::OneClick
    } else if urlencoded_field(&body, "block").is_some_and(|v| v == "1") {
        UnsubscribeKind::Page(BlockRequests::Yes)
    } else {
        UnsubscribeKind::Page(BlockRequests::No)
    };
    let done = link
        .state
        .subscriptions
        .unsubscribe(&link.token, kind, &link.meta())
        .await;
    link.answer(done, |answer| {
        let locale = link.locale(Some(&answer.locale));
        let data = pages::Unsubscribed(page_data(&link, &locale, &answer, Shown::After));
        link.render(StatusCode::OK, Some(&locale), &data)
    })
}

/// `POST /unsubscribe/{token}/resubscribe`: mails a new confirmation for the link's type.
/// The page is the same whether or not a mail went out.
pub async fn resubscribe(link: LinkPage) -> HttpResponse {
    let asked = link
        .state
        .subscriptions
        .resubscribe(&link.token, &link.meta())
        .await;
    link.answer(asked, |requested| {
        link.render(
            StatusCode::OK,
            requested.locale.as_deref(),
            &SignupReceived::plain(),
        )
    })
}
