//! Operations endpoints: liveness, readiness and the API description, with no key;
//! metrics, for allowed addresses and `metrics` keys; and the client side of readiness,
//! for `optin health`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use actix_web::{web, HttpResponse};

use crate::web::extract::api_key::MetricsReader;
use crate::web::AppState;

/// The spec, as served and as committed at the top of the repository.
const OPENAPI: &str = include_str!("../../../openapi.yaml");
/// `/readyz` answers within this, even when the store hangs.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match tokio::time::timeout(READINESS_TIMEOUT, state.subscriptions.check_store()).await {
        Ok(Ok(())) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ready"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("store unavailable")
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("store timed out"),
    }
}

pub async fn metrics(state: web::Data<AppState>, _reader: MetricsReader) -> HttpResponse {
    if let Ok(depth) = state.subscriptions.outbox_depth().await {
        metrics::gauge!("optin_outbox_queued").set(depth.queued as f64);
        metrics::gauge!("optin_outbox_dead").set(depth.dead as f64);
    }
    let body = state
        .metrics
        .as_ref()
        .map(metrics_exporter_prometheus::PrometheusHandle::render)
        .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml; charset=utf-8")
        .body(OPENAPI)
}

/// Asks `GET /readyz` of the server bound to `bind` (as `server.bind` is written) and
/// succeeds only on a 200 within `timeout`. A container image without curl can probe
/// itself with it: plain HTTP/1.1 over a socket, no client library.
pub fn probe_readiness(bind: &str, timeout: Duration) -> Result<(), String> {
    let address = probe_address(bind)?;
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|e| format!("nothing answers on {address}: {e}"))?;
    let io_error = |e: std::io::Error| format!("{address}: {e}");
    stream.set_read_timeout(Some(timeout)).map_err(io_error)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_error)?;
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(io_error)?;
    // The status line is all we need; the body says why when it is not 200.
    let mut answer = Vec::new();
    stream
        .take(4096)
        .read_to_end(&mut answer)
        .map_err(io_error)?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
    match status.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        Some(code) => Err(format!("{address}/readyz answered {code}: {body}")),
        None => Err(format!("{address}/readyz gave no HTTP answer")),
    }
}

/// Where to reach a server bound to `bind`: an unspecified address (`0.0.0.0`, `[::]`)
/// is reached over loopback.
fn probe_address(bind: &str) -> Result<SocketAddr, String> {
    let mut address = bind
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| format!("server.bind `{bind}` is not an address"))?;
    if address.ip().is_unspecified() {
        let loopback: std::net::IpAddr = if address.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        address.set_ip(loopback);
    }
    Ok(address)
}
