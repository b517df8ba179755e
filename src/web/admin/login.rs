//! Signing in with an `admin` API key, and signing out. Attempts are limited per client
//! network; a refused key is logged without the key; a sign-in posted from another site
//! is refused.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::csrf::TokenOnly;
use super::request::ConsolePost;
use super::session::{cleared_cookie, Session};
use super::{page, see_other};
use crate::auth::Scope;
use crate::web::extract::client_ip::limit_network;
use crate::web::pages::AdminLogin;
use crate::web::AppState;

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    key: String,
}

pub async fn show_login(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let data = AdminLogin {
        refused: false,
        rate_limited: false,
    };
    page::render(&state, &req, StatusCode::OK, None, &data)
}

pub async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if posted_from_another_site(&req) {
        tracing::warn!("console sign-in refused: the form was posted from another site");
        return super::ConsoleError::Forbidden.page(&state, &req);
    }
    let subscriptions = &state.subscriptions;
    let site = &state.site;
    let network = state
        .client_ip(&req)
        .map_or_else(|| "unknown".to_string(), limit_network);
    match subscriptions.count_sign_in_from(&network).await {
        Ok(None) => {}
        Ok(Some(retry_after)) => {
            tracing::warn!("console sign-in refused: too many attempts from this network");
            let data = AdminLogin {
                refused: false,
                rate_limited: true,
            };
            let mut page = page::render(&state, &req, StatusCode::TOO_MANY_REQUESTS, None, &data);
            crate::web::problem::set_retry_after(&mut page, retry_after);
            return page;
        }
        Err(error) => return super::ConsoleError::Store(error).page(&state, &req),
    }
    let form: SignInForm =
        serde_html_form::from_bytes(&body).unwrap_or(SignInForm { key: String::new() });
    let now = subscriptions.now();
    let session = site
        .api_keys
        .authenticate_plain(&form.key, Scope::Admin)
        .map_err(|error| tracing::warn!(reason = %error, "console sign-in refused"))
        .ok()
        .and_then(|key| Session::start(site, &key.name, now));
    let Some(session) = session else {
        let data = AdminLogin {
            refused: true,
            rate_limited: false,
        };
        return page::render(&state, &req, StatusCode::UNAUTHORIZED, None, &data);
    };
    tracing::info!(key = %session.key_name, "console sign-in");
    let mut response = see_other("/admin".to_string());
    if let Ok(cookie) = header::HeaderValue::from_str(&session.cookie(site, now)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Whether a browser says the sign-in form came from another site. Before sign-in there
/// is no session and so no CSRF token; without this check another site could sign a
/// visitor into a console session of its own choosing (login CSRF). Browsers send
/// `Sec-Fetch-Site` on every request; scripts and older clients send none and pass.
fn posted_from_another_site(req: &HttpRequest) -> bool {
    req.headers()
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|site| !matches!(site, "same-origin" | "none"))
}

pub async fn sign_out(post: ConsolePost<TokenOnly>) -> HttpResponse {
    tracing::info!(key = %post.session.key_name, "console sign-out");
    let mut response = see_other(super::session::LOGIN_PATH.to_string());
    let cleared = cleared_cookie(&post.state.site);
    if let Ok(cookie) = header::HeaderValue::from_str(&cleared) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
