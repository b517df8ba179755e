//! `GET /confirm/{token}` changes nothing (mail scanners fetch every link); `POST`
//! confirms. The GET shows the button, except to the browser that signed up (its
//! `optin_bind` cookie is for this very signup): that page submits itself, by a script
//! its own nonce allows, so the click in the mail is all the person does. A link already
//! used shows "already confirmed" with the types' names, on GET and on POST alike, and
//! never a preferences link. Both speak the language of the confirmation mail.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::hosted;
use super::one_click::urlencoded_field;
use super::page;
use crate::domain::Confirmed as Outcome;
use crate::service::{ConfirmPage, ConfirmRequest, Submitted};
use crate::web::extract::link_page::LinkPage;
use crate::web::page_policy::{new_nonce, PagePolicy};
use crate::web::pages::{Confirm, Confirmed};

/// The hidden field only the self-submitting page's form has.
const AUTO_SUBMITTED: (&str, &str) = ("method", "same_browser");

pub async fn show_confirm_page(link: LinkPage) -> HttpResponse {
    let binding = hosted::binding(&link.state, &link.req);
    let shown = link
        .state
        .subscriptions
        .confirmation_page(&link.token, binding.as_ref())
        .await;
    link.answer(shown, |answer| match answer.confirmed {
        Outcome::Now { ref locale, .. } => {
            let nonce = answer.bound.then(new_nonce).flatten();
            let data = Confirm {
                action_url: link.same_page_action(),
                auto_submit_nonce: nonce.clone(),
            };
            let mut response = link.render(StatusCode::OK, Some(locale), &data);
            if let Some(nonce) = nonce {
                PagePolicy::default()
                    .with_nonce(&nonce)
                    .apply(&mut response);
            }
            response
        }
        Outcome::Already { .. } => confirmed_page(&link, answer),
    })
}

pub async fn confirm(link: LinkPage, body: web::Bytes) -> HttpResponse {
    let submitted =
        if urlencoded_field(&body, AUTO_SUBMITTED.0).is_some_and(|v| v == AUTO_SUBMITTED.1) {
            Submitted::Automatically
        } else {
            Submitted::ByButton
        };
    let request = ConfirmRequest {
        submitted,
        binding: hosted::binding(&link.state, &link.req),
        meta: link.meta(),
    };
    let done = link
        .state
        .subscriptions
        .confirm(&link.token, &request)
        .await;
    link.answer(done, |answer| confirmed_page(&link, answer))
}

fn confirmed_page(link: &LinkPage, done: ConfirmPage) -> HttpResponse {
    let locale = link.locale(Some(done.confirmed.locale()));
    let data = Confirmed {
        types: page::type_names(
            &link.state,
            &locale,
            done.confirmed
                .types()
                .iter()
                .map(crate::domain::subscription_type::SubscriptionTypeId::as_str),
        ),
        already: matches!(done.confirmed, Outcome::Already { .. }),
        preferences_url: done.preferences_url,
        embed: None,
    };
    link.render(StatusCode::OK, Some(&locale), &data)
}
