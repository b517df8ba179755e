//! `POST /v1/feedback/...`: bounces and complaints from the sending platforms, each in
//! its own format, and `DELETE /v1/contacts/{email}/unreachable`. Every input answers
//! 200 `{"accepted": n}` with the number of items read, known address or not.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use serde_json::json;

use crate::feedback::message::parse_message;
use crate::feedback::own::parse_own;
use crate::feedback::postmark::parse_postmark;
use crate::feedback::sendgrid::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::feedback::{FeedbackFormatError, FeedbackItem};
use crate::service::FeedbackError;
use crate::web::extract::api_key::{AdminKey, FeedbackKey};
use crate::web::extract::manual_change::parse_email;
use crate::web::extract::request_meta::request_meta;
use crate::web::problem::Problem;
use crate::web::AppState;

impl From<FeedbackError> for Problem {
    fn from(error: FeedbackError) -> Self {
        match error {
            FeedbackError::Format(e) => format_problem(e),
            FeedbackError::Signature(reason) => {
                tracing::debug!(%reason, "feedback signature refused");
                Problem::invalid_signature()
            }
            FeedbackError::SnsRefused(refusal) => {
                tracing::warn!(%refusal, "SNS message refused");
                Problem::sns_refused(&refusal)
            }
            // SNS retries a delivery that did not get a 2xx.
            FeedbackError::Upstream(what) => Problem::unavailable().with_detail(what),
            FeedbackError::Store(e) => e.into(),
        }
    }
}

fn format_problem(error: FeedbackFormatError) -> Problem {
    let mut problem = Problem::malformed_body(error.to_string());
    problem.field = error.field.map(str::to_string);
    problem
}

/// Reads the whole body, up to the configured limit.
async fn read_body(state: &AppState, mut payload: web::Payload) -> Result<Vec<u8>, Problem> {
    let limit = state
        .subscriptions
        .config()
        .settings
        .server
        .body_limit_bytes;
    let too_large = || Problem::payload_too_large("the body is larger than the configured limit");
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Problem::malformed_body(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn accepted(count: usize) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "accepted": count }))
}

fn feedback_meta(
    state: &AppState,
    req: &HttpRequest,
    caller: &FeedbackKey,
) -> crate::domain::RequestMeta {
    request_meta(req, state.subscriptions.config(), Some(&caller.0.name))
}

/// The inputs that need nothing but their parser.
async fn receive_parsed(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: FeedbackKey,
    payload: web::Payload,
    parse: fn(&[u8]) -> Result<Vec<FeedbackItem>, FeedbackFormatError>,
) -> Result<HttpResponse, Problem> {
    let body = read_body(&state, payload).await?;
    let items = parse(&body).map_err(format_problem)?;
    let meta = feedback_meta(&state, &req, &caller);
    let count = state.subscriptions.apply_feedback(items, &meta).await?;
    Ok(accepted(count))
}

/// `POST /v1/feedback`: optin's own JSON, one item or an array.
pub async fn receive_own(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: FeedbackKey,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    receive_parsed(state, req, caller, payload, parse_own).await
}

/// `POST /v1/feedback/postmark`: one Postmark bounce or spam complaint record.
pub async fn receive_postmark(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: FeedbackKey,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    receive_parsed(state, req, caller, payload, parse_postmark).await
}

/// `POST /v1/feedback/message`: one raw DSN or ARF mail, as a pipe delivers it.
pub async fn receive_message(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: FeedbackKey,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let is_message = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("message/rfc822"));
    if !is_message {
        return Err(Problem::unsupported_media_type("message/rfc822"));
    }
    receive_parsed(state, req, caller, payload, parse_message).await
}

/// `POST /v1/feedback/ses`: an SNS envelope (SNS sends it as `text/plain`).
pub async fn receive_ses(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: FeedbackKey,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let body = read_body(&state, payload).await?;
    let meta = feedback_meta(&state, &req, &caller);
    let count = state.subscriptions.receive_ses(&body, &meta).await?;
    Ok(accepted(count))
}

/// `POST /v1/feedback/sendgrid`: the Event Webhook's array, signed when configured.
pub async fn receive_sendgrid(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: FeedbackKey,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let body = read_body(&state, payload).await?;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let meta = feedback_meta(&state, &req, &caller);
    let count = state
        .subscriptions
        .receive_sendgrid(
            &body,
            header(SIGNATURE_HEADER),
            header(TIMESTAMP_HEADER),
            &meta,
        )
        .await?;
    Ok(accepted(count))
}

/// `DELETE /v1/contacts/{email}/unreachable`: the admin says the address works again.
pub async fn clear_unreachable(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminKey,
    email: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let email = parse_email(&email, "email")?;
    let meta = super::rights::admin_meta(&state, &req, &caller);
    let contact = state.subscriptions.clear_unreachable(&email, &meta).await?;
    Ok(HttpResponse::Ok().json(json!({
        "unreachable": contact.unreachable,
        "recent_soft_bounces": state.subscriptions.recent_soft_bounces(&contact),
    })))
}
