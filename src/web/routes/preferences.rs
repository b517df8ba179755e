//! `GET /preferences/{token}` shows every type with its status; `POST` saves the choices
//! of the form (or "unsubscribe from all") in one go. Export and erasure need a link
//! issued within `links.rights_max_age_minutes`; an older one is offered a fresh link.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use crate::domain::PreferenceChoice;
use crate::service::PreferencesView;
use crate::web::extract::link_page::LinkPage;
use crate::web::pages::{EraseConfirm, Erased, LinkSent, Preferences};

/// Whether the page answers a save.
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    Viewing,
    Saving,
}

fn show(link: &LinkPage, view: &PreferencesView, after: After) -> HttpResponse {
    let token = &link.token;
    let notice_changed = view.refused.is_some();
    let data = Preferences {
        action_url: link.same_page_action(),
        types: &view.types,
        saved: after == After::Saving && !notice_changed,
        notice_changed,
        restricted: view.restricted,
        signups_blocked: view.signups_blocked,
        rights_allowed: view.rights_allowed,
        export_action: format!("{token}/export"),
        erase_url: format!("{token}/erase"),
        fresh_link_action: format!("{token}/fresh-link"),
        receipts_url: link
            .state
            .site
            .receipts
            .then(|| format!("{token}/receipts")),
    };
    let status = if notice_changed {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    link.render(status, Some(&view.locale), &data)
}

pub async fn show_preferences(link: LinkPage) -> HttpResponse {
    let locale = link.locale(None);
    let view = link
        .state
        .subscriptions
        .view_preferences(&link.token, &locale)
        .await;
    link.answer(view, |view| show(&link, &view, After::Viewing))
}

/// Reads the form: `subscription_types` (checked boxes), `shown` (the types the form
/// covered), `notice_version.<id>`, `unsubscribe_all` and `allow_signups`.
pub(super) fn parse_choice(body: &[u8]) -> PreferenceChoice {
    let mut choice = PreferenceChoice::default();
    let mut shown = BTreeSet::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "subscription_types" => {
                choice.opted_in.insert(value.into_owned());
            }
            "shown" => {
                shown.insert(value.into_owned());
            }
            "unsubscribe_all" => choice.unsubscribe_all = value == "1",
            "allow_signups" => choice.allow_signups = value == "1",
            _ => {}
        }
    }
    choice.notice_versions = super::signup::notice_versions_by_type(body);
    choice.shown = shown;
    choice
}

pub async fn save_preferences(link: LinkPage, body: web::Bytes) -> HttpResponse {
    let choice = parse_choice(&body);
    let locale = link.locale(None);
    let saved = link
        .state
        .subscriptions
        .save_preferences(&link.token, &choice, &locale, &link.meta())
        .await;
    link.answer(saved, |view| show(&link, &view, After::Saving))
}

/// `POST /preferences/{token}/export`: the person's own data as a JSON download.
pub async fn export_own_data(link: LinkPage) -> HttpResponse {
    let export = link
        .state
        .subscriptions
        .export_own_data(&link.token, &link.meta())
        .await;
    link.answer(export, |export| {
        HttpResponse::Ok()
            .insert_header((
                "Content-Disposition",
                "attachment; filename=\"my-data.json\"",
            ))
            .insert_header(("Cache-Control", "no-store"))
            .json(export)
    })
}

/// `GET /preferences/{token}/erase`: asks first; changes nothing.
pub async fn ask_to_erase(link: LinkPage) -> HttpResponse {
    let checked = link.state.subscriptions.check_rights_link(&link.token);
    link.answer(checked, |locale| {
        let data = EraseConfirm {
            action_url: "erase".to_string(),
            back_url: format!("../{}", link.token),
        };
        link.render(StatusCode::OK, locale.as_deref(), &data)
    })
}

/// `POST /preferences/{token}/erase`: erases everything held on the person.
pub async fn erase_own_data(link: LinkPage) -> HttpResponse {
    let erased = link
        .state
        .subscriptions
        .erase_own_data(&link.token, &link.meta())
        .await;
    link.answer(erased, |locale| {
        link.render(StatusCode::OK, locale.as_deref(), &Erased {})
    })
}

/// `POST /preferences/{token}/fresh-link`: mails a new preferences link, for export and
/// erasure from an aged one.
pub async fn mail_fresh_link(link: LinkPage) -> HttpResponse {
    let mailed = link
        .state
        .subscriptions
        .mail_fresh_preferences_link(&link.token)
        .await;
    link.answer(mailed, |locale| {
        link.render(StatusCode::OK, locale.as_deref(), &LinkSent {})
    })
}
