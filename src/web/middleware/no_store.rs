//! `Cache-Control: no-store` for every answer that carries personal data, so that no
//! browser, proxy or CDN keeps a copy of a contact, its events or an export.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::middleware::DefaultHeaders;

/// Wraps a resource; applies to all its answers, errors and 405s included, since even a
/// 404 for `/v1/contacts/{email}` tells whether an address is known.
pub fn no_store() -> DefaultHeaders {
    DefaultHeaders::new().add(CacheControl(vec![CacheDirective::NoStore]))
}
