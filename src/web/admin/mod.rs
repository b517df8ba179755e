//! The admin console at `/admin`: server-rendered pages for the people who answer data
//! subjects. Every page but the sign-in needs a [`session::Session`]; every form carries
//! its CSRF token. Each action calls the same service operation as the admin API, with
//! the signed-in key's name as `actor`. No console URL holds an address: a search is a
//! POST, and contacts are reached by their id.

mod contact;
mod csrf;
mod deliveries;
mod funnel;
mod login;
mod quarantine;
mod record;
mod request;
mod search;
pub mod session;
mod stats;
pub mod svg;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};

use super::routes::page;
use super::{resource, AppState};
use crate::service::StoreError;
use crate::web::pages::ErrorKey;

/// The console's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/admin", "GET").route(web::get().to(search::show_search)))
        .service(resource("/admin/", "GET").route(web::get().to(to_console)))
        .service(
            resource(session::LOGIN_PATH, "GET, POST")
                .route(web::get().to(login::show_login))
                .route(web::post().to(login::sign_in)),
        )
        .service(resource("/admin/logout", "POST").route(web::post().to(login::sign_out)))
        .service(resource("/admin/search", "POST").route(web::post().to(search::search)))
        .service(
            resource("/admin/contacts/{id}", "GET").route(web::get().to(contact::show_contact)),
        )
        .service(
            resource("/admin/contacts/{id}/export", "POST").route(web::post().to(contact::export)),
        )
        .service(
            resource("/admin/contacts/{id}/erase", "GET, POST")
                .route(web::get().to(contact::ask_to_erase))
                .route(web::post().to(contact::erase)),
        )
        .service(
            resource("/admin/contacts/{id}/restriction", "POST")
                .route(web::post().to(contact::set_restriction)),
        )
        .service(
            resource("/admin/contacts/{id}/subscriptions", "POST")
                .route(web::post().to(contact::change_subscription)),
        )
        .service(
            resource("/admin/contacts/{id}/unreachable", "POST")
                .route(web::post().to(contact::clear_unreachable)),
        )
        .service(resource("/admin/stats", "GET").route(web::get().to(stats::show_stats)))
        .service(resource("/admin/funnel", "GET").route(web::get().to(funnel::show_funnel)))
        .service(
            resource("/admin/processing-record", "GET").route(web::get().to(record::show_record)),
        )
        .service(
            resource("/admin/deliveries", "GET").route(web::get().to(deliveries::show_deliveries)),
        )
        .service(
            resource("/admin/deliveries/dead/{id}/retry", "POST")
                .route(web::post().to(deliveries::retry_dead_letter)),
        )
        .service(
            resource("/admin/deliveries/webhooks/{id}/enable", "POST")
                .route(web::post().to(deliveries::enable_webhook)),
        )
        .service(
            resource("/admin/quarantine", "GET").route(web::get().to(quarantine::show_quarantine)),
        )
        .service(
            resource("/admin/quarantine/{id}/release", "POST")
                .route(web::post().to(quarantine::release)),
        )
        .service(
            resource("/admin/quarantine/{id}/drop", "POST")
                .route(web::post().to(quarantine::drop_held)),
        );
}

/// `/admin/` is the console's start page too: a permanent redirect to `/admin`,
/// relative, so that it holds behind a path prefix.
async fn to_console(req: HttpRequest) -> HttpResponse {
    let location = match req.query_string() {
        "" => "../admin".to_string(),
        query => format!("../admin?{query}"),
    };
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Why a console request could not be done; each becomes a localized page.
#[derive(Debug)]
pub enum ConsoleError {
    /// The form's CSRF token is missing or wrong.
    Forbidden,
    BadRequest,
    NotFound,
    Store(StoreError),
}

impl From<StoreError> for ConsoleError {
    fn from(error: StoreError) -> Self {
        ConsoleError::Store(error)
    }
}

impl ConsoleError {
    fn page(self, state: &AppState, req: &HttpRequest) -> HttpResponse {
        let (status, key) = match self {
            ConsoleError::Forbidden => (StatusCode::FORBIDDEN, ErrorKey::BadRequest),
            ConsoleError::BadRequest => (StatusCode::BAD_REQUEST, ErrorKey::BadRequest),
            ConsoleError::NotFound => (StatusCode::NOT_FOUND, ErrorKey::NotFound),
            ConsoleError::Store(error) => return page::store_error_page(state, req, error),
        };
        page::error_page(state, req, status, key)
    }
}

/// Post/redirect/get: after an action, the page it concerns, with a message key.
fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Times as the console shows them: to the second, in UTC.
fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The message named by a `?done=` query parameter, when it is one of `known`.
fn message_from_query(req: &HttpRequest, known: &[&'static str]) -> Option<&'static str> {
    let done = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(key, _)| key == "done")
        .map(|(_, value)| value.into_owned())?;
    known
        .iter()
        .copied()
        .find(|key| key.strip_prefix("admin_done_") == Some(done.as_str()))
}
