//! Rendering pages for the public routes, and the error pages they answer with.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::service::{LinkError, StoreError};
use crate::web::extract::locale;
use crate::web::pages::{ErrorKey, ErrorPage, FreshLinkNeeded, LinkInvalid, Page, TypeName};
use crate::web::AppState;

/// Renders the page that `data` is for, in the best locale for this request.
pub fn render<P: Page>(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    preferred_locale: Option<&str>,
    data: &P,
) -> HttpResponse {
    let locale = request_locale(state, req, preferred_locale);
    let page = P::NAME;
    match state.pages.render_page(&locale, data) {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(html),
        Err(error) => {
            tracing::error!(%error, page, "page did not render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Internal error")
        }
    }
}

pub fn request_locale(state: &AppState, req: &HttpRequest, preferred: Option<&str>) -> String {
    let accept = req
        .headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    locale::negotiate(accept, preferred, state.default_locale())
}

/// The page for a link that is forged, malformed (400) or expired (410).
pub fn link_invalid(state: &AppState, req: &HttpRequest, expired: bool) -> HttpResponse {
    let status = if expired {
        StatusCode::GONE
    } else {
        StatusCode::BAD_REQUEST
    };
    let signup_url = state.site.signup_page_url.clone();
    render(
        state,
        req,
        status,
        None,
        &LinkInvalid {
            expired,
            signup_url,
        },
    )
}

/// The one mapping from a refused link to the page that explains it.
pub fn link_refused(
    state: &AppState,
    req: &HttpRequest,
    error: LinkError,
    locale: Option<&str>,
) -> HttpResponse {
    match error {
        LinkError::Invalid(_) => link_invalid(state, req, false),
        LinkError::Expired | LinkError::Gone => link_invalid(state, req, true),
        LinkError::TooManyRequests => {
            let mut page = render(
                state,
                req,
                StatusCode::TOO_MANY_REQUESTS,
                locale,
                &ErrorPage {
                    status: StatusCode::TOO_MANY_REQUESTS.as_u16(),
                    error_key: ErrorKey::TooManyRequests,
                },
            );
            crate::web::problem::set_retry_after(&mut page, 3600);
            page
        }
        // Export and erasure are refused on an aged link; the page offers a fresh one,
        // posted to `/preferences/{token}/fresh-link` (relative to `…/export` or `…/erase`).
        LinkError::NeedsFreshLink => render(
            state,
            req,
            StatusCode::FORBIDDEN,
            locale,
            &FreshLinkNeeded {
                action_url: "fresh-link".to_string(),
            },
        ),
        // Pages that offer opt-ins answer this with the page again; elsewhere it is a
        // request the page did not make.
        LinkError::NoticeNotShown(_) => {
            error_page(state, req, StatusCode::BAD_REQUEST, ErrorKey::BadRequest)
        }
        LinkError::Store(e) => store_error_page(state, req, e),
    }
}

pub fn error_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    error_key: ErrorKey,
) -> HttpResponse {
    render(
        state,
        req,
        status,
        None,
        &ErrorPage {
            status: status.as_u16(),
            error_key,
        },
    )
}

pub fn store_error_page(state: &AppState, req: &HttpRequest, error: StoreError) -> HttpResponse {
    match error {
        StoreError::Corrupt(reason) => {
            tracing::error!(%reason, "stored data could not be decoded");
            error_page(
                state,
                req,
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorKey::Internal,
            )
        }
        other => {
            tracing::warn!(error = %other, "store unavailable for a page");
            error_page(
                state,
                req,
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKey::Unavailable,
            )
        }
    }
}

/// Localized names of the given types, for pages.
pub fn type_names(
    state: &AppState,
    locale: &str,
    ids: impl IntoIterator<Item = impl AsRef<str>>,
) -> Vec<TypeName> {
    let catalog = state.subscriptions.catalog();
    ids.into_iter()
        .filter_map(|id| catalog.get(id.as_ref()))
        .map(|t| TypeName {
            id: t.id.as_str().to_string(),
            name: t.name_in(locale, catalog.default_locale()),
        })
        .collect()
}

/// A form action that posts back to `/<resource>/{token}`: the token alone, as a URL
/// relative to the page, so it works behind any path prefix.
pub fn same_page_action(token: &str) -> String {
    token.to_string()
}
