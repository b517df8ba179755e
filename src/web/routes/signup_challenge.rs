//! `GET /v1/signup-challenge`: an ALTCHA challenge for a signup to solve, when
//! `signup.proof_of_work` is on. The ALTCHA widget's `challengeurl` (`challenge` from
//! widget 3 on) and the hosted form fetch it; every answer is new, so none is cached.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{web, HttpResponse};

use crate::web::problem::Problem;
use crate::web::AppState;

pub async fn issue_challenge(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let challenge = state
        .subscriptions
        .signup_challenge()
        .ok_or_else(|| Problem::not_found().with_detail("signup.proof_of_work is off"))?
        .map_err(|error| {
            tracing::error!(%error, "no randomness for a signup challenge");
            Problem::internal()
        })?;
    Ok(HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(challenge))
}
