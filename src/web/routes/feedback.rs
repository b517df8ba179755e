//! `POST /v1/feedback/...`: bounces and complaints from the sending platforms, each in
//! its own format, and `DELETE /v1/contacts/{email}/unreachable`. Every input answers
//! 200 `{"accepted": n}` with the number of items read, known address or not.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt as _;
use serde_json::json;

use crate::domain::RequestMeta;
use crate::feedback::message::parse_message;
use crate::feedback::own::parse_own;
use crate::feedback::postmark::parse_postmark;
use crate::feedback::sendgrid::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::feedback::{FeedbackFormatError, FeedbackItem};
use crate::web::extract::api_key::FeedbackKey;
use crate::web::extract::contact_request::ContactRequest;
use crate::web::problem::Problem;
use crate::web::AppState;

/// A feedback input's post: the `feedback` key checked, its metadata, and the whole body,
/// read up to the configured limit.
pub struct FeedbackPost {
    state: web::Data<AppState>,
    req: HttpRequest,
    meta: RequestMeta,
    body: Vec<u8>,
}

impl FromRequest for FeedbackPost {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let caller = FeedbackKey::from_request(req, payload).into_inner();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let mut payload = payload.take();
        let req = req.clone();
        Box::pin(async move {
            let FeedbackKey(caller) = caller?;
            let state = state.ok_or_else(Problem::internal)?;
            let limit = state.site.body_limit_bytes;
            let mut body = Vec::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| Problem::malformed_body(e.to_string()))?;
                if body.len() + chunk.len() > limit {
                    return Err(Problem::payload_too_large(
                        "the body is larger than the configured limit",
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            let meta = state.meta(&req, Some(&caller.name));
            Ok(Self {
                state,
                req,
                meta,
                body,
            })
        })
    }
}

type Answer = Result<HttpResponse, Problem>;

fn accepted(count: usize) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "accepted": count }))
}

impl FeedbackPost {
    /// The inputs that need nothing but their parser.
    async fn apply(self, parse: Parser) -> Answer {
        let items = parse(&self.body).map_err(Problem::from)?;
        let count = self
            .state
            .subscriptions
            .apply_feedback(items, &self.meta)
            .await?;
        Ok(accepted(count))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.req.headers().get(name).and_then(|v| v.to_str().ok())
    }
}

type Parser = fn(&[u8]) -> Result<Vec<FeedbackItem>, FeedbackFormatError>;

/// `POST /v1/feedback`: optin's own JSON, one item or an array.
pub async fn receive_own(post: FeedbackPost) -> Answer {
    post.apply(parse_own).await
}

/// `POST /v1/feedback/postmark`: one Postmark bounce or spam complaint record.
pub async fn receive_postmark(post: FeedbackPost) -> Answer {
    post.apply(parse_postmark).await
}

/// `POST /v1/feedback/message`: one raw DSN or ARF mail, as a pipe delivers it.
pub async fn receive_message(post: FeedbackPost) -> Answer {
    let is_message = post
        .header(CONTENT_TYPE.as_str())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("message/rfc822"));
    if !is_message {
        return Err(Problem::unsupported_media_type("message/rfc822"));
    }
    post.apply(parse_message).await
}

/// `POST /v1/feedback/ses`: an SNS envelope (SNS sends it as `text/plain`).
pub async fn receive_ses(post: FeedbackPost) -> Answer {
    let count = post
        .state
        .subscriptions
        .receive_ses(&post.body, &post.meta)
        .await?;
    Ok(accepted(count))
}

/// `POST /v1/feedback/sendgrid`: the Event Webhook's array, signed when configured.
pub async fn receive_sendgrid(post: FeedbackPost) -> Answer {
    let count = post
        .state
        .subscriptions
        .receive_sendgrid(
            &post.body,
            post.header(SIGNATURE_HEADER),
            post.header(TIMESTAMP_HEADER),
            &post.meta,
        )
        .await?;
    Ok(accepted(count))
}

/// `DELETE /v1/contacts/{email}/unreachable`: the admin says the address works again.
pub async fn clear_unreachable(request: ContactRequest) -> Result<HttpResponse, Problem> {
    let subscriptions = &request.state.subscriptions;
    let contact = subscriptions
        .clear_unreachable(&request.email, &request.meta)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "unreachable": contact.unreachable(),
        "recent_soft_bounces": subscriptions.recent_soft_bounces(&contact),
    })))
}
