//! Extractors that admit a request only with an API key of the needed scope.

use std::future::{ready, Ready};

use actix_web::{web, FromRequest, HttpRequest};

use crate::auth::{ApiKey, ApiKeys, AuthError, Scope};
use crate::web::problem::Problem;
use crate::web::AppState;

/// The name of the key that authenticated the request; recorded as `actor` in events.
pub struct Caller {
    pub name: String,
}

fn authenticate(req: &HttpRequest, scope: Scope) -> Result<Caller, Problem> {
    authenticate_with(req, |keys, header| keys.authenticate(header, scope))
}

/// For handlers that answer auth failures in a shape of their own (the compatible APIs):
/// the key as Bearer, or with `basic` also as the HTTP Basic password.
pub fn authorize(req: &HttpRequest, scope: Scope, basic: bool) -> Result<Caller, Problem> {
    if basic {
        authenticate_with(req, |keys, header| {
            keys.authenticate_bearer_or_basic(header, scope)
        })
    } else {
        authenticate(req, scope)
    }
}

/// Runs one of the key checks of [`ApiKeys`] on the request's `Authorization` header.
fn authenticate_with(
    req: &HttpRequest,
    check: impl for<'k> FnOnce(&'k ApiKeys, Option<&str>) -> Result<&'k ApiKey, AuthError>,
) -> Result<Caller, Problem> {
    // The server registers the configured keys as app data of their own.
    let keys = req
        .app_data::<web::Data<ApiKeys>>()
        .ok_or_else(Problem::internal)?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let key = check(keys, header)?;
    Ok(Caller {
        name: key.name.clone(),
    })
}

/// A caller with the `send` scope (or `admin`).
pub struct SendKey(pub Caller);

impl FromRequest for SendKey {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authenticate(req, Scope::Send).map(SendKey))
    }
}

/// A caller with the `admin` scope.
pub struct AdminKey(pub Caller);

impl FromRequest for AdminKey {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authenticate(req, Scope::Admin).map(AdminKey))
    }
}

/// A caller that may read `GET /metrics`: from an address in `server.metrics_allowed_ips`
/// (the client address as every limit sees it, behind trusted proxies too), or with a key
/// of scope `metrics` (or `admin`). The counters tell how the service is used, so they
/// are not for everyone.
pub struct MetricsReader;

impl FromRequest for MetricsReader {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let allowed_address = req.app_data::<web::Data<AppState>>().is_some_and(|state| {
            state.client_ip(req).is_some_and(|ip| {
                // A dual-stack socket shows an IPv4 client as ::ffff:a.b.c.d.
                let ip = ip.to_canonical();
                state
                    .site
                    .metrics_allowed_ips
                    .iter()
                    .any(|range| range.contains(&ip))
            })
        });
        ready(if allowed_address {
            Ok(MetricsReader)
        } else {
            authenticate(req, Scope::Metrics).map(|_| MetricsReader)
        })
    }
}

/// A caller with the `feedback` scope (or `admin`), as Bearer or as the HTTP Basic
/// password: sending platforms put credentials inside the webhook URL.
pub struct FeedbackKey(pub Caller);

impl FromRequest for FeedbackKey {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authenticate_with(req, ApiKeys::authenticate_feedback).map(FeedbackKey))
    }
}

/// The key a signup came with, if any: `None` without an `Authorization` header, else a
/// key of scope `signup` (or `admin`), which spares the signup the proof of work. A
/// header with a wrong key is refused (401 or 403), never taken for no key at all.
pub struct SignupCaller(pub Option<Caller>);

impl FromRequest for SignupCaller {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let caller = if req
            .headers()
            .contains_key(actix_web::http::header::AUTHORIZATION)
        {
            authenticate(req, Scope::Signup).map(Some)
        } else {
            Ok(None)
        };
        ready(caller.map(SignupCaller))
    }
}
