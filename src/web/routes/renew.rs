//! `GET /renew/{token}` asks "do you still want …?" with one button and changes nothing
//! (mail scanners fetch every link); `POST` renews the consent against the notice the
//! page showed. Both speak the language of the renewal mail.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use crate::domain::Renewal;
use crate::service::{LinkError, RenewalPage};
use crate::web::extract::link_page::LinkPage;
use crate::web::pages::Renew;

/// What the page answers: the question, or what the click did.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    Asking,
    /// The notice changed between the page and its click: asked again, nothing renewed.
    AskingAgain,
    Answered,
}

fn show(link: &LinkPage, page: &RenewalPage, shown: Shown) -> HttpResponse {
    let catalog = link.state.subscriptions.catalog();
    let type_name = catalog.get(page.subscription_type.as_str()).map_or_else(
        || page.subscription_type.to_string(),
        |t| t.name_in(&page.locale, catalog.default_locale()),
    );
    let (until, already) = match page.renewal {
        Renewal::Now { until } => (until, false),
        Renewal::Already { until } => (until, true),
    };
    let data = Renew {
        action_url: link.same_page_action(),
        type_name,
        notice_text: page.notice_text.clone(),
        notice_version: page.notice.version.clone(),
        until: until.format("%Y-%m-%d").to_string(),
        renewed: shown == Shown::Answered && !already,
        already,
        notice_changed: shown == Shown::AskingAgain,
    };
    let status = if shown == Shown::AskingAgain {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    link.render(status, Some(&page.locale), &data)
}

pub async fn show_renewal_page(link: LinkPage) -> HttpResponse {
    let page = link.state.subscriptions.renewal_page(&link.token).await;
    link.answer(page, |page| show(&link, &page, Shown::Asking))
}

/// Reads `notice_version` from the form.
fn notice_version(body: &[u8]) -> String {
    url::form_urlencoded::parse(body)
        .find(|(key, _)| key == "notice_version")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

pub async fn renew(link: LinkPage, body: web::Bytes) -> HttpResponse {
    let subscriptions = &link.state.subscriptions;
    match subscriptions
        .renew(&link.token, &notice_version(&body), &link.meta())
        .await
    {
        Err(LinkError::NoticeNotShown(_)) => {
            let page = subscriptions.renewal_page(&link.token).await;
            link.answer(page, |page| show(&link, &page, Shown::AskingAgain))
        }
        renewed => link.answer(renewed, |page| show(&link, &page, Shown::Answered)),
    }
}
