//! The console's sign-in session: a cookie signed with the link signing keys, holding
//! the admin key's name (never the key), the session's CSRF token and its expiry. It
//! lives in the browser only; signing out clears it there.

use std::future::{ready, Ready};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};

use crate::auth::Scope;
use crate::clock;
use crate::web::{AppState, Site};

pub const COOKIE_NAME: &str = "optin_admin";
/// The MAC covers this too, so that no link token passes for a session or back.
const SIGNING_CONTEXT: &str = "optin console session v1";
pub const LOGIN_PATH: &str = "/admin/login";

/// A verified sign-in.
#[derive(Clone, Debug)]
pub struct Session {
    /// The name of the admin key that signed in: the `actor` of every change made.
    pub key_name: String,
    /// Every console form carries it; see [`super::csrf`].
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    /// A new session for `key_name`, lasting `admin.session_minutes`.
    pub fn start(site: &Site, key_name: &str, now: DateTime<Utc>) -> Option<Self> {
        let mut token = [0u8; 32];
        getrandom::fill(&mut token).ok()?;
        Some(Self {
            key_name: key_name.to_string(),
            csrf: URL_SAFE_NO_PAD.encode(token),
            expires_at: clock::later(now, clock::minutes(site.session_minutes.into())),
        })
    }

    /// The `Set-Cookie` value that stores this session in the browser.
    pub fn cookie(&self, site: &Site, now: DateTime<Utc>) -> String {
        // The key name goes last: it is the only field that may hold a '|'.
        let payload = format!(
            "{}|{}|{}",
            self.expires_at.timestamp(),
            self.csrf,
            self.key_name
        );
        let value = site.signer.sign_opaque(SIGNING_CONTEXT, &payload);
        let max_age = (self.expires_at - now).num_seconds().max(0);
        cookie_header(site, &value, max_age)
    }

    /// The session in the request's cookie, when its signature verifies, it has not
    /// expired and its key is still configured with the `admin` scope.
    fn from_request(req: &HttpRequest, site: &Site, now: DateTime<Utc>) -> Option<Self> {
        let value = cookie_value(req, COOKIE_NAME)?;
        let payload = site.signer.verify_opaque(SIGNING_CONTEXT, &value)?;
        let mut fields = payload.splitn(3, '|');
        let (expires, csrf, key_name) = (fields.next()?, fields.next()?, fields.next()?);
        let expires_at = DateTime::from_timestamp(expires.parse().ok()?, 0)?;
        if expires_at <= now {
            tracing::debug!("console session expired");
            return None;
        }
        site.api_keys.named(key_name, Scope::Admin)?;
        Some(Self {
            key_name: key_name.to_string(),
            csrf: csrf.to_string(),
            expires_at,
        })
    }
}

/// The `Set-Cookie` value that removes the session from the browser.
pub fn cleared_cookie(site: &Site) -> String {
    cookie_header(site, "", 0)
}

fn cookie_header(site: &Site, value: &str, max_age: i64) -> String {
    let secure = if site.secure_cookies { "; Secure" } else { "" };
    format!(
        "{COOKIE_NAME}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    )
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_string())
}

/// No valid session: every console page but the sign-in answers this.
#[derive(Debug, thiserror::Error)]
#[error("a console sign-in is needed")]
pub struct SignInNeeded;

impl ResponseError for SignInNeeded {
    fn status_code(&self) -> StatusCode {
        StatusCode::SEE_OTHER
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, HeaderValue::from_static(LOGIN_PATH)))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()
    }
}

impl FromRequest for Session {
    type Error = SignInNeeded;
    type Future = Ready<Result<Self, SignInNeeded>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let session = req
            .app_data::<web::Data<AppState>>()
            .and_then(|state| Session::from_request(req, &state.site, state.subscriptions.now()));
        ready(session.ok_or(SignInNeeded))
    }
}
