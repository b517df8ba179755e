//! `GET /confirm/{token}` shows one button and changes nothing (mail scanners fetch every
//! link); `POST` confirms. A link already used shows "already confirmed" with the types'
//! names, on GET and on POST alike, and never a preferences link. Both speak the
//! language of the confirmation mail.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::page;
use crate::domain::Confirmed as Outcome;
use crate::service::ConfirmPage;
use crate::web::extract::link_page::LinkPage;
use crate::web::pages::{Confirm, Confirmed};

pub async fn show_confirm_page(link: LinkPage) -> HttpResponse {
    let shown = link
        .state
        .subscriptions
        .confirmation_page(&link.token)
        .await;
    link.answer(shown, |answer| match answer.confirmed {
        Outcome::Now { ref locale, .. } => link.render(
            StatusCode::OK,
            Some(locale),
            &Confirm {
                action_url: link.same_page_action(),
            },
        ),
        Outcome::Already { .. } => confirmed_page(&link, answer),
    })
}

pub async fn confirm(link: LinkPage) -> HttpResponse {
    let done = link
        .state
        .subscriptions
        .confirm(&link.token, &link.meta())
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
    };
    link.render(StatusCode::OK, Some(&locale), &data)
}
