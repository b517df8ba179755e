//! Who is asking: client IP, user agent and request id, as recorded in consent events.

use actix_web::HttpRequest;

use std::net::IpAddr;

use ipnet::IpNet;

use super::client_ip;
use crate::domain::RequestMeta;
use crate::web::Site;

/// User agents are recorded as evidence; cap them so a client cannot bloat the log.
const MAX_USER_AGENT_CHARS: usize = 512;

/// The id of this request, set by the access log middleware.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|id| id.0.clone())
}

/// The client's address: the socket peer, or the forwarded client behind a trusted proxy.
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    // Every header line counts: a proxy may append its own line instead of extending the
    // first, and reading only one line would let a client's own line pass as the proxy's.
    // An unreadable line stays in place as garbage, so the walk stops there.
    let lines: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|v| v.to_str().unwrap_or("unreadable"))
        .collect();
    let forwarded = (!lines.is_empty()).then(|| lines.join(","));
    client_ip::resolve(
        req.peer_addr().map(|addr| addr.ip()),
        forwarded.as_deref(),
        trusted_proxies,
    )
}

/// Builds the metadata for events. With `privacy.record_ip` off, IP and user agent stay empty.
pub fn request_meta(req: &HttpRequest, site: &Site, actor: Option<&str>) -> RequestMeta {
    let record_ip = site.record_ip;
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect());
    RequestMeta {
        ip: if record_ip {
            client_ip(req, &site.trusted_proxies).map(|ip| ip.to_string())
        } else {
            None
        },
        user_agent: if record_ip { user_agent } else { None },
        actor: actor.map(str::to_string),
        request_id: request_id(req),
    }
}

use actix_web::HttpMessage;
