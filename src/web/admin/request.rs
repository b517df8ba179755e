//! What every console handler starts with: the state, the request and the signed-in
//! session ([`Console`]), and for a form post the form, once its CSRF token matched
//! ([`ConsolePost`]). A missing session redirects to the sign-in; a wrong token or a form
//! that does not parse is answered with its page before the handler runs.

use std::future::{ready, Ready};

use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::csrf::checked_form;
use super::session::{Session, SignInNeeded};
use super::ConsoleError;
use crate::domain::{Contact, ContactId, RequestMeta};
use crate::web::pages::{ConsoleNav, Page};
use crate::web::routes::page;
use crate::web::AppState;

pub struct Console {
    pub state: web::Data<AppState>,
    pub req: HttpRequest,
    pub session: Session,
}

impl FromRequest for Console {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Self::from(req, payload))
    }
}

impl Console {
    fn from(
        req: &HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Result<Self, actix_web::Error> {
        let session = Session::from_request(req, payload).into_inner()?;
        let state = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or(SignInNeeded)?;
        Ok(Self {
            state,
            req: req.clone(),
            session,
        })
    }

    /// The answer: the handler's, or the page of what went wrong.
    pub fn respond(&self, result: Result<HttpResponse, ConsoleError>) -> HttpResponse {
        result.unwrap_or_else(|error| error.page(&self.state, &self.req))
    }

    pub fn render<P: Page>(&self, status: StatusCode, data: &P) -> HttpResponse {
        page::render(&self.state, &self.req, status, None, data)
    }

    /// The navigation every console page shows.
    pub fn nav(&self) -> ConsoleNav {
        ConsoleNav {
            key_name: self.session.key_name.clone(),
            csrf: self.session.csrf.clone(),
        }
    }

    /// Who changed something: the signed-in key's name as `actor`, like the admin API.
    pub fn meta(&self) -> RequestMeta {
        self.state.meta(&self.req, Some(&self.session.key_name))
    }

    /// The page's language: the browser's.
    pub fn locale(&self) -> String {
        page::request_locale(&self.state, &self.req, None)
    }

    /// The stored contact a path's id names; 404 for an id that is malformed or holds
    /// nothing.
    pub async fn contact(&self, raw_id: &str) -> Result<Contact, ConsoleError> {
        let id = ContactId::parse(raw_id).map_err(|_| ConsoleError::NotFound)?;
        self.state
            .subscriptions
            .contact_by_id(&id)
            .await?
            .ok_or(ConsoleError::NotFound)
    }
}

/// A console form post: the console request and its form `T`.
pub struct ConsolePost<T> {
    pub console: Console,
    pub form: T,
}

impl<T: DeserializeOwned + 'static> FromRequest for ConsolePost<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let console = Console::from(req, payload);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let console = console?;
            let body = body.await?;
            match checked_form(&console.session, &body) {
                Ok(form) => Ok(Self { console, form }),
                Err(error) => {
                    let page = error.page(&console.state, &console.req);
                    Err(InternalError::from_response("console form refused", page).into())
                }
            }
        })
    }
}

impl<T> std::ops::Deref for ConsolePost<T> {
    type Target = Console;
    fn deref(&self) -> &Console {
        &self.console
    }
}
