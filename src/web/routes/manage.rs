//! `GET /manage/{token}` shows one button and changes nothing; `POST` mails a preferences
//! link to the address. Both pages are the same whatever the address's state, so a
//! `manage` link (in every newsletter footer) tells nothing and shows nothing.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use crate::web::extract::link_page::LinkPage;
use crate::web::pages::{LinkSent, Manage};

pub async fn show_manage_page(link: LinkPage) -> HttpResponse {
    let checked = link.state.subscriptions.check_manage_token(&link.token);
    link.answer(checked, |claims| {
        let data = Manage {
            action_url: link.same_page_action(),
        };
        link.render(StatusCode::OK, claims.locale.as_deref(), &data)
    })
}

pub async fn mail_preferences_link(link: LinkPage) -> HttpResponse {
    let asked = link
        .state
        .subscriptions
        .request_preferences_link(&link.token)
        .await;
    link.answer(asked, |claims| {
        link.render(StatusCode::OK, claims.locale.as_deref(), &LinkSent {})
    })
}
