//! `GET /.well-known/jwks.json`: the public keys consent receipts are signed with, for
//! anyone who checks a receipt. An empty set when receipts are off.

use actix_web::http::header::{HeaderValue, CACHE_CONTROL};
use actix_web::{web, HttpResponse};

use crate::receipts::Jwks;
use crate::web::AppState;

/// RFC 7517 §8.5's media type for a JWK Set.
const JWK_SET: &str = "application/jwk-set+json";

pub async fn publish_receipt_keys(state: web::Data<AppState>) -> HttpResponse {
    let jwks: Jwks = state
        .subscriptions
        .config()
        .receipts
        .as_ref()
        .map(|issuer| issuer.jwks())
        .unwrap_or_default();
    HttpResponse::Ok()
        .content_type(JWK_SET)
        // Verifiers may keep it a while; a rotation adds a key before it signs.
        .insert_header((
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
        .json(jwks)
}
