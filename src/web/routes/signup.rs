//! `POST /v1/signups` (JSON) and `POST /signup` (HTML form). Both answer the same way
//! whatever the address's state, so nobody can learn who is subscribed.

use std::collections::BTreeMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::page;
use crate::domain::{EmailAddress, Evidence, Source};
use crate::firewall::hosted_solver;
use crate::service::{NoticeVersions, SignupError, SignupRequest};
use crate::web::extract::api_key::SignupCaller;
use crate::web::extract::client_ip::limit_network;
use crate::web::extract::json_body::{from_object, JsonObject};
use crate::web::pages::{ErrorKey, Signup, SignupReceived};
use crate::web::problem::{set_retry_after, Problem};
use crate::web::AppState;

#[derive(Deserialize)]
pub struct SignupSource {
    form_id: Option<String>,
    page_url: Option<String>,
}

#[derive(Deserialize)]
pub struct SignupBody {
    email: Option<String>,
    subscription_types: Option<Vec<String>>,
    locale: Option<String>,
    notice_version: Option<NoticeVersions>,
    /// Read as a value first: it must be an object (or absent/null), never an array.
    source: Option<serde_json::Value>,
    /// The solved proof of work, when `signup.proof_of_work` is on.
    altcha: Option<String>,
}

#[derive(Deserialize)]
pub struct SignupForm {
    email: Option<String>,
    #[serde(default)]
    subscription_types: Vec<String>,
    locale: Option<String>,
    notice_version: Option<String>,
    form_id: Option<String>,
    page_url: Option<String>,
    /// Honeypot: hidden from people, filled in by naive bots.
    #[serde(default)]
    website: String,
    /// The solved proof of work (the hosted form's solver and the ALTCHA widget).
    altcha: Option<String>,
    /// The hosted form's signed render time.
    rendered_at: Option<String>,
}

struct RawSignup {
    email: Option<String>,
    types: Vec<String>,
    locale: Option<String>,
    notice_version: NoticeVersions,
    form_id: Option<String>,
    page_url: Option<String>,
    origin: Source,
    proof: Option<String>,
    /// The caller's `signup` key, by name; `None` for a public signup.
    key_name: Option<String>,
    form_rendered: Option<String>,
}

#[derive(Debug, thiserror::Error)]
enum InvalidSignup {
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error(transparent)]
    Signup(#[from] SignupError),
}

impl From<InvalidSignup> for Problem {
    fn from(error: InvalidSignup) -> Self {
        match error {
            InvalidSignup::Field { field, reason } => Problem::invalid_field(field, reason),
            InvalidSignup::Signup(error) => error.into(),
        }
    }
}

fn evidence(field: &'static str, raw: Option<String>) -> Result<Option<Evidence>, InvalidSignup> {
    Evidence::parse(raw.as_deref()).map_err(|e| InvalidSignup::Field {
        field,
        reason: e.to_string(),
    })
}

/// Parses a signup and runs it; shared by the JSON and the form route.
async fn run_signup(
    state: &AppState,
    req: &HttpRequest,
    raw: RawSignup,
) -> Result<(), InvalidSignup> {
    let email = raw.email.ok_or(InvalidSignup::Field {
        field: "email",
        reason: "email is required".into(),
    })?;
    let email = EmailAddress::parse(&email).map_err(|e| InvalidSignup::Field {
        field: "email",
        reason: e.to_string(),
    })?;
    let request = SignupRequest {
        email,
        types: raw.types,
        locale: page::request_locale(state, req, raw.locale.as_deref()),
        notice_versions: raw.notice_version,
        origin: raw.origin,
        form_id: evidence("source.form_id", raw.form_id)?,
        page_url: evidence("source.page_url", raw.page_url)?,
        meta: state.meta(req, raw.key_name.as_deref()),
        client_network: state.client_ip(req).map(limit_network),
        proof: raw.proof,
        keyed: raw.key_name.is_some(),
        form_rendered: raw.form_rendered,
    };
    state.subscriptions.sign_up(request).await?;
    Ok(())
}

pub async fn subscribe_json(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: SignupCaller,
    body: JsonObject<SignupBody>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let source: Option<SignupSource> = match body.source {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(from_object(value, "source")?),
    };
    let (form_id, page_url) = source.map_or((None, None), |s| (s.form_id, s.page_url));
    let raw = RawSignup {
        email: body.email,
        types: body.subscription_types.ok_or_else(|| {
            Problem::invalid_field("subscription_types", "subscription_types is required")
        })?,
        locale: body.locale,
        notice_version: body.notice_version.unwrap_or_default(),
        form_id,
        page_url,
        origin: Source::SignupApi,
        proof: body.altcha,
        key_name: caller.0.map(|caller| caller.name),
        form_rendered: None,
    };
    run_signup(&state, &req, raw).await?;
    Ok(HttpResponse::Accepted().json(json!({ "status": "pending_confirmation" })))
}

pub async fn subscribe_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return page::error_page(
            &state,
            &req,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKey::BadRequest,
        );
    }
    let Ok(form) = serde_html_form::from_bytes::<SignupForm>(&body) else {
        return page::error_page(&state, &req, StatusCode::BAD_REQUEST, ErrorKey::BadRequest);
    };
    // What the form again shows when the firewall refuses the signup.
    let again = FormAgain {
        types: form.subscription_types.clone(),
        locale: page::request_locale(&state, &req, form.locale.as_deref()),
    };
    if form.website.is_empty() {
        // The hosted form posts the version beside each checkbox; other forms one for all.
        let per_type = notice_versions_by_type(&body);
        let notice_version = if per_type.is_empty() {
            form.notice_version
                .map_or(NoticeVersions::Current, NoticeVersions::All)
        } else {
            NoticeVersions::PerType(per_type)
        };
        let raw = RawSignup {
            email: form.email,
            types: form.subscription_types,
            locale: form.locale,
            notice_version,
            form_id: form.form_id,
            page_url: form.page_url,
            origin: Source::SignupForm,
            proof: form.altcha,
            key_name: None,
            form_rendered: form.rendered_at,
        };
        match run_signup(&state, &req, raw).await {
            Ok(()) => {}
            Err(InvalidSignup::Signup(SignupError::Store(e))) => {
                return page::store_error_page(&state, &req, e)
            }
            Err(InvalidSignup::Signup(SignupError::RateLimited {
                retry_after_secs: retry_after,
            })) => {
                let mut page = page::error_page(
                    &state,
                    &req,
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorKey::TooManyRequests,
                );
                set_retry_after(&mut page, retry_after);
                return page;
            }
            Err(InvalidSignup::Signup(SignupError::ProofOfWork(refusal))) => {
                tracing::debug!(%refusal, "form signup without an accepted proof of work");
                return again.show(&state, &req, StatusCode::BAD_REQUEST, "signup_proof_failed");
            }
            Err(InvalidSignup::Signup(SignupError::Undeliverable(_))) => {
                return again.show(
                    &state,
                    &req,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "signup_undeliverable",
                );
            }
            Err(error) => {
                tracing::debug!(%error, "form signup refused");
                return page::error_page(
                    &state,
                    &req,
                    StatusCode::BAD_REQUEST,
                    ErrorKey::BadRequest,
                );
            }
        }
    } else {
        // A bot filled the honeypot: answer exactly as for a person, do nothing.
        tracing::debug!("signup honeypot filled; ignored");
        metrics::counter!("optin_signups_ignored_total", "reason" => "honeypot").increment(1);
    }
    let target = state
        .site
        .thank_you_url
        .clone()
        .unwrap_or_else(|| "/signup/received".to_string());
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target))
        .finish()
}

/// The `notice_version.<type>` fields of a form: the notice version shown beside each
/// type's checkbox.
pub(super) fn notice_versions_by_type(body: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body)
        .filter_map(|(key, value)| {
            key.strip_prefix("notice_version.")
                .map(|type_id| (type_id.to_string(), value.into_owned()))
        })
        .collect()
}

#[derive(Deserialize)]
pub struct SignupFormQuery {
    /// Comma-separated type ids; all types when absent.
    types: Option<String>,
    locale: Option<String>,
}

/// `GET /signup?types=a,b&locale=nl`: optin's own form, showing for each type the notice
/// that a tick agrees to. Framed only by `server.embed_allowed_origins`.
pub async fn show_signup_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let Ok(query) = serde_html_form::from_str::<SignupFormQuery>(req.query_string()) else {
        return page::error_page(&state, &req, StatusCode::BAD_REQUEST, ErrorKey::BadRequest);
    };
    let ids: Vec<String> = query
        .types
        .iter()
        .flat_map(|types| types.split(','))
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect();
    let locale = page::request_locale(&state, &req, query.locale.as_deref());
    signup_page(&state, &req, &ids, &locale, StatusCode::OK, None)
}

/// The hosted form shown again after the firewall refused what it posted, with the
/// types it posted and a message.
struct FormAgain {
    types: Vec<String>,
    locale: String,
}

impl FormAgain {
    fn show(
        &self,
        state: &AppState,
        req: &HttpRequest,
        status: StatusCode,
        message: &'static str,
    ) -> HttpResponse {
        signup_page(state, req, &self.types, &self.locale, status, Some(message))
    }
}

/// The hosted form with its firewall parts: the solver script (allowed by its hash in
/// the page's CSP, with `connect-src 'self'` for the challenge) and the signed render
/// time.
fn signup_page(
    state: &AppState,
    req: &HttpRequest,
    ids: &[String],
    locale: &str,
    status: StatusCode,
    message: Option<&'static str>,
) -> HttpResponse {
    let form = match state.subscriptions.signup_form(ids, locale) {
        Ok(form) => form,
        Err(error) => {
            tracing::debug!(%error, "signup form asked for unknown types");
            return page::error_page(state, req, StatusCode::BAD_REQUEST, ErrorKey::BadRequest);
        }
    };
    let data = Signup {
        action_url: "signup".to_string(),
        locale: locale.to_string(),
        types: &form.types,
        challenge_url: form.proof_of_work.then_some("v1/signup-challenge"),
        rendered_at: form.rendered_at,
        message,
    };
    let mut response = page::render(state, req, status, Some(locale), &data);
    let mut policy =
        crate::web::content_security_policy_framed_by(&state.site.embed_allowed_origins);
    if form.proof_of_work {
        policy = format!(
            "{policy}; script-src {}; connect-src 'self'",
            hosted_solver::csp_source()
        );
    }
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

pub async fn signup_received(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    page::render(&state, &req, StatusCode::OK, None, &SignupReceived {})
}
