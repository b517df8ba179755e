//! Who is asking: client IP, user agent and request id, as recorded in consent events.

use actix_web::HttpRequest;

use crate::domain::RequestMeta;

/// User agents are recorded as evidence; cap them so a client cannot bloat the log.
const MAX_USER_AGENT_CHARS: usize = 512;

/// The id of this request, set by the access log middleware.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|id| id.0.clone())
}

/// The client's address: the socket peer. Proxies are not trusted until configured.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|addr| addr.ip().to_string())
}

/// Builds the metadata for events. With `record_ip` off, IP and user agent stay empty.
pub fn request_meta(req: &HttpRequest, record_ip: bool, actor: Option<&str>) -> RequestMeta {
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect());
    RequestMeta {
        ip: if record_ip { client_ip(req) } else { None },
        user_agent: if record_ip { user_agent } else { None },
        actor: actor.map(str::to_string),
        request_id: request_id(req),
    }
}

use actix_web::HttpMessage;
