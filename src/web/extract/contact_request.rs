//! What every admin route about one contact starts with: an `admin` key, the address of
//! the path's `{email}`, and what events record about the request (the key's name as
//! `actor`). A wrong key or address is answered before the handler runs.

use std::future::{ready, Ready};

use actix_web::{web, FromRequest, HttpRequest};

use super::api_key::AdminKey;
use super::manual_change::parse_email;
use crate::domain::{EmailAddress, RequestMeta};
use crate::web::problem::Problem;
use crate::web::AppState;

pub struct ContactRequest {
    pub state: web::Data<AppState>,
    pub email: EmailAddress,
    pub meta: RequestMeta,
}

impl FromRequest for ContactRequest {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let mut build = || {
            let AdminKey(caller) = AdminKey::from_request(req, payload).into_inner()?;
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(Problem::internal)?;
            let email = parse_email(req.match_info().get("email").unwrap_or_default(), "email")?;
            let meta = state.meta(req, Some(&caller.name));
            Ok(Self { state, email, meta })
        };
        ready(build())
    }
}
