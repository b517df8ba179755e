//! `X-Frame-Options: DENY` on every answer but those a page marked [`Frameable`]: the
//! hosted form and the pages that follow it, which the configured origins may frame
//! (their CSP `frame-ancestors` names them). Browsers obey the stricter of the two
//! headers, so a frameable page must send no `X-Frame-Options` at all.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, X_FRAME_OPTIONS};
use actix_web::middleware::Next;

/// Put in a response's extensions by a page that the allowed origins may frame.
#[derive(Clone, Copy, Debug)]
pub struct Frameable;

pub async fn deny_framing(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let frameable = response
        .response()
        .extensions()
        .get::<Frameable>()
        .is_some();
    if !frameable {
        response
            .headers_mut()
            .insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Ok(response)
}
