//! One delivery attempt: a signed `POST` to one endpoint, and what its answer means.
//! Retrying, backing off and dead-lettering are the outbox worker's, as for mail.

use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;

use super::settings::Endpoint;
use super::signature::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::clock::SharedClock;

/// Read at most this much of an answer: enough to keep the connection for reuse, too
/// little for a hostile endpoint to hold memory.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A 2xx answer.
    Delivered(u16),
    /// A 410 answer: the receiver asks to stop. Disable the endpoint; keep its jobs.
    Gone,
    /// Anything else: retry later. `status` is `None` when no answer came (timeout,
    /// refused connection, TLS failure). `reason` holds no URL and no body.
    Failed { status: Option<u16>, reason: String },
}

/// The process's one HTTP client for webhooks: it pools connections per endpoint.
#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    clock: SharedClock,
}

impl WebhookClient {
    /// `timeout` bounds each attempt, from connecting to the end of the answer.
    pub fn new(timeout: Duration, clock: SharedClock) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            // A redirect could send the signed body elsewhere; the receiver must give
            // us its final URL.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("optin/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, clock })
    }

    /// POSTs `body`, signed for this attempt. `job_id` is the `webhook-id`: the same on
    /// every retry, so that a receiver can drop a delivery it has already seen.
    pub async fn deliver(&self, endpoint: &Endpoint, job_id: &str, body: &[u8]) -> DeliveryOutcome {
        let timestamp = self.clock.now().timestamp();
        let signature = endpoint.key.sign(job_id, timestamp, body);
        let sent = self
            .http
            .post(endpoint.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(ID_HEADER, job_id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await;
        let mut answer = match sent {
            Ok(answer) => answer,
            Err(e) => {
                return DeliveryOutcome::Failed {
                    status: None,
                    reason: describe(e),
                }
            }
        };
        let status = answer.status();
        if let Err(e) = drain(&mut answer).await {
            // The status came but the rest did not: a receiver that hangs after its
            // headers has not answered yet.
            return DeliveryOutcome::Failed {
                status: Some(status.as_u16()),
                reason: describe(e),
            };
        }
        outcome(status)
    }
}

fn outcome(status: StatusCode) -> DeliveryOutcome {
    if status.is_success() {
        DeliveryOutcome::Delivered(status.as_u16())
    } else if status == StatusCode::GONE {
        DeliveryOutcome::Gone
    } else if status.is_redirection() {
        DeliveryOutcome::Failed {
            status: Some(status.as_u16()),
            reason: format!("answered {status}; redirects are not followed"),
        }
    } else {
        DeliveryOutcome::Failed {
            status: Some(status.as_u16()),
            reason: format!("answered {status}"),
        }
    }
}

async fn drain(answer: &mut reqwest::Response) -> Result<(), reqwest::Error> {
    let mut read = 0;
    while let Some(chunk) = answer.chunk().await? {
        read += chunk.len();
        if read > MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok(())
}

/// The error without its URL: an endpoint URL may carry a token of the receiver's.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut reason = kind.to_owned();
    let mut source = std::error::Error::source(&e);
    // The chain says why (refused, DNS, TLS); reqwest's own text repeats the URL.
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(outcome(StatusCode::OK), DeliveryOutcome::Delivered(200));
        assert_eq!(
            outcome(StatusCode::NO_CONTENT),
            DeliveryOutcome::Delivered(204)
        );
        assert_eq!(outcome(StatusCode::GONE), DeliveryOutcome::Gone);
        assert!(matches!(
            outcome(StatusCode::FOUND),
            DeliveryOutcome::Failed {
                status: Some(302),
                ..
            }
        ));
        assert!(matches!(
            outcome(StatusCode::NOT_FOUND),
            DeliveryOutcome::Failed {
                status: Some(404),
                ..
            }
        ));
    }
}
