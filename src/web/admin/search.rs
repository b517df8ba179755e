//! The start page: a search by address. The address travels in the POST body only; a
//! hit redirects to the contact's page under its id.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::csrf::checked_form;
use super::session::Session;
use super::{message_from_query, nav, render, respond, see_other, ConsoleError};
use crate::domain::EmailAddress;
use crate::web::pages::AdminSearch;
use crate::web::AppState;

#[derive(Deserialize)]
struct SearchForm {
    #[serde(default)]
    email: String,
}

pub async fn show_search(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
) -> HttpResponse {
    let data = AdminSearch {
        nav: nav(&session),
        message: message_from_query(&req, &["admin_done_erased"]),
    };
    render(&state, &req, StatusCode::OK, &data)
}

pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    body: web::Bytes,
) -> HttpResponse {
    let result = find(&state, &req, &session, &body).await;
    respond(&state, &req, result)
}

async fn find(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
    body: &[u8],
) -> Result<HttpResponse, ConsoleError> {
    let form: SearchForm = checked_form(session, body)?;
    let miss = |status, message| {
        let data = AdminSearch {
            nav: nav(session),
            message: Some(message),
        };
        Ok(render(state, req, status, &data))
    };
    let Ok(email) = EmailAddress::parse(&form.email) else {
        return miss(StatusCode::BAD_REQUEST, "admin_invalid_email");
    };
    match state.subscriptions.contact(&email).await? {
        Some(contact) => Ok(see_other(format!(
            "/admin/contacts/{}",
            contact.id().as_str()
        ))),
        None => miss(StatusCode::NOT_FOUND, "admin_not_found"),
    }
}
