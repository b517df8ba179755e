//! Extractors that admit a request only with an API key of the needed scope.

use std::future::{ready, Ready};

use actix_web::{web, FromRequest, HttpRequest};

use crate::auth::{ApiKeys, Scope};
use crate::web::problem::Problem;

/// The name of the key that authenticated the request; recorded as `actor` in events.
pub struct Caller {
    pub name: String,
}

fn authenticate(req: &HttpRequest, scope: Scope) -> Result<Caller, Problem> {
    // The server registers the configured keys as app data of their own.
    let keys = req
        .app_data::<web::Data<ApiKeys>>()
        .ok_or_else(Problem::internal)?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let key = keys.authenticate(header, scope)?;
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
