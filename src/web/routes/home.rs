//! `GET /`: a small page that says what this is and leads to the signup form, and
//! `GET /favicon.ico`, which browsers ask for on every visit.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::page;
use crate::web::extract::locale::match_supported;
use crate::web::pages::Home;
use crate::web::AppState;

/// The front page, in the browser's language or the one `?locale=` asks for. Its link is
/// relative, so it leads to the form behind any path prefix, and carries the asked locale
/// along.
pub async fn show_home(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let asked = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(key, _)| key == "locale")
        .and_then(|(_, value)| match_supported(&value));
    let signup_url = match asked {
        Some(locale) => format!("signup?locale={locale}"),
        None => "signup".to_string(),
    };
    page::render(&state, &req, StatusCode::OK, asked, &Home { signup_url })
}

/// No icon: 204, kept by the browser for a week so that it stops asking.
pub async fn favicon() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "public, max-age=604800"))
        .finish()
}
