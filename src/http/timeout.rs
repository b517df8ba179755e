//! Every request gets a deadline: past it the client gets a 503 instead of a hang. A
//! streamed answer (imports) only needs its first bytes within the deadline.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::problem::Problem;
use crate::routes::AppState;

pub async fn enforce_deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|state| {
            state
                .subscriptions
                .config()
                .settings
                .server
                .request_timeout_secs
        })
        .unwrap_or(10);
    match tokio::time::timeout(Duration::from_secs(limit), next.call(req)).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!("request timed out");
            metrics::counter!("optin_request_timeouts_total").increment(1);
            // Returned as an error: actix answers it with the problem's own response.
            Err(Problem::unavailable()
                .with_detail("the request took too long")
                .into())
        }
    }
}
