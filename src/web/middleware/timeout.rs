//! Every request gets a deadline: past it the client gets a 503 instead of a hang. A
//! streamed answer (imports) only needs its first bytes within the deadline.

use std::time::Duration;

use crate::web::extract::locale;
use crate::web::pages::{ErrorKey, ErrorPage, Pages};
use crate::web::problem::Problem;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::ACCEPT_LANGUAGE;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

/// What the deadline middleware needs, registered as app data of its own so that it
/// does not depend on the whole application state.
pub struct Deadline {
    pub limit: Duration,
    /// The page language when the request names none we have.
    pub default_locale: String,
}

pub async fn enforce_deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let deadline = req.app_data::<web::Data<Deadline>>().cloned();
    let pages = req.app_data::<web::Data<Pages>>().cloned();
    let limit = deadline
        .as_ref()
        .map_or(Duration::from_secs(10), |d| d.limit);
    // What the answer needs if time runs out: the request itself is gone by then.
    let page_locale = (!req.path().starts_with("/v1/")).then(|| {
        let accept = req
            .headers()
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let default = deadline
            .as_ref()
            .map_or("en", |d| d.default_locale.as_str());
        locale::negotiate(accept, None, default)
    });
    if let Ok(result) = tokio::time::timeout(limit, next.call(req)).await {
        result
    } else {
        tracing::warn!("request timed out");
        metrics::counter!("optin_request_timeouts_total").increment(1);
        Err(timed_out(
            pages.as_ref().map(web::Data::get_ref),
            page_locale.as_deref(),
        ))
    }
}

/// A 503: problem+json under `/v1`, the localized error page elsewhere.
fn timed_out(pages: Option<&Pages>, page_locale: Option<&str>) -> actix_web::Error {
    let problem = Problem::unavailable().with_detail("the request took too long");
    let (Some(pages), Some(locale)) = (pages, page_locale) else {
        return problem.into();
    };
    let data = ErrorPage {
        status: StatusCode::SERVICE_UNAVAILABLE.as_u16(),
        error_key: ErrorKey::Unavailable,
    };
    match pages.render_page(locale, &data) {
        Ok(html) => {
            let response = HttpResponse::ServiceUnavailable()
                .content_type("text/html; charset=utf-8")
                .insert_header(("Retry-After", "2"))
                .body(html);
            InternalError::from_response("the request took too long", response).into()
        }
        Err(_) => problem.into(),
    }
}
