//! What every page opened from a link starts with (the shared state, the request, the
//! link's token from the path), and the one way its answer is made: a page for what the
//! service answered, or the page that explains why the link could not do it.

use std::future::{ready, Ready};

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};

use crate::domain::RequestMeta;
use crate::service::LinkError;
use crate::web::pages::Page;
use crate::web::routes::page;
use crate::web::AppState;

pub struct LinkPage {
    pub state: web::Data<AppState>,
    pub req: HttpRequest,
    /// The `{token}` of the path.
    pub token: String,
}

impl FromRequest for LinkPage {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req.match_info().get("token").map(str::to_string);
        ready(match (state, token) {
            (Some(state), Some(token)) => Ok(Self {
                state,
                req: req.clone(),
                token,
            }),
            // Only registered on `{token}` routes of an app with its state.
            _ => Err(actix_web::error::ErrorInternalServerError("no link here")),
        })
    }
}

impl LinkPage {
    /// What events record about this request (pages carry no key).
    pub fn meta(&self) -> RequestMeta {
        self.state.meta(&self.req, None)
    }

    /// The language of the page: the link's, else the browser's, else the default.
    pub fn locale(&self, preferred: Option<&str>) -> String {
        page::request_locale(&self.state, &self.req, preferred)
    }

    pub fn render<P: Page>(
        &self,
        status: StatusCode,
        locale: Option<&str>,
        data: &P,
    ) -> HttpResponse {
        page::render(&self.state, &self.req, status, locale, data)
    }

    /// A form action that posts back to this link's own page.
    pub fn same_page_action(&self) -> String {
        page::same_page_action(&self.token)
    }

    /// `show(answer)` when the service did what the link asked, else the refusal page.
    pub fn answer<T>(
        &self,
        result: Result<T, LinkError>,
        show: impl FnOnce(T) -> HttpResponse,
    ) -> HttpResponse {
        match result {
            Ok(answer) => show(answer),
            Err(error) => page::link_refused(&self.state, &self.req, error, None),
        }
    }
}
