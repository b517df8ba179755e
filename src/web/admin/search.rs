//! The start page: a search by address. The address travels in the POST body only; a
//! hit redirects to the contact's page under its id.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Deserialize;

use super::request::{Console, ConsolePost};
use super::{message_from_query, see_other, ConsoleError};
use crate::domain::EmailAddress;
use crate::web::pages::AdminSearch;

#[derive(Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    email: String,
}

pub async fn show_search(console: Console) -> HttpResponse {
    let data = AdminSearch {
        nav: console.nav(),
        message: message_from_query(&console.req, &["admin_done_erased"]),
    };
    console.render(StatusCode::OK, &data)
}

pub async fn search(post: ConsolePost<SearchForm>) -> HttpResponse {
    let result = find(&post).await;
    post.respond(result)
}

async fn find(post: &ConsolePost<SearchForm>) -> Result<HttpResponse, ConsoleError> {
    let miss = |status, message| {
        let data = AdminSearch {
            nav: post.nav(),
            message: Some(message),
        };
        Ok(post.render(status, &data))
    };
    let Ok(email) = EmailAddress::parse(&post.form.email) else {
        return miss(StatusCode::BAD_REQUEST, "admin_invalid_email");
    };
    match post.state.subscriptions.contact(&email).await? {
        Some(contact) => Ok(see_other(format!(
            "/admin/contacts/{}",
            contact.id().as_str()
        ))),
        None => miss(StatusCode::NOT_FOUND, "admin_not_found"),
    }
}
