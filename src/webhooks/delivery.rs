//! One delivery attempt: a signed `POST` to one endpoint, and what its answer means.
//! Retrying, backing off and dead-lettering are the outbox worker's, as for mail.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;

use super::network::{GuardedResolver, NetworkPolicy};
use super::settings::{address_of, Endpoint};
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
    policy: NetworkPolicy,
}

impl WebhookClient {
    /// `timeout` bounds each attempt, from connecting to the end of the answer; `policy`
    /// says which addresses a delivery may connect to.
    pub fn new(
        timeout: Duration,
        clock: SharedClock,
        policy: NetworkPolicy,
    ) -> Result<Self, reqwest::Error> {
        Self::resolving_with(timeout, clock, GuardedResolver::system(policy), policy)
    }

    fn resolving_with(
        timeout: Duration,
        clock: SharedClock,
        resolver: GuardedResolver,
        policy: NetworkPolicy,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            // A redirect could send the signed body elsewhere; the receiver must give
            // us its final URL.
            .redirect(reqwest::redirect::Policy::none())
            // Every name is resolved here, so that the network policy sees the address
            // really connected to; a proxy from the environment would resolve it itself.
            .dns_resolver(Arc::new(resolver))
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("optin/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            clock,
            policy,
        })
    }

    /// POSTs `body`, signed for this attempt. `job_id` is the `webhook-id`: the same on
    /// every retry, so that a receiver can drop a delivery it has already seen.
    pub async fn deliver(&self, endpoint: &Endpoint, job_id: &str, body: &[u8]) -> DeliveryOutcome {
        // A URL that names an address is never resolved, so the resolver cannot check it.
        if let Some(refused) = address_of(&endpoint.url).and_then(|a| self.policy.check(a).err()) {
            return DeliveryOutcome::Failed {
                status: None,
                reason: format!("refused: {refused}"),
            };
        }
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
    use std::net::SocketAddr;

    use reqwest::dns::{Addrs, Name, Resolve, Resolving};

    use super::*;
    use crate::webhooks::settings::WebhookSettings;
    use crate::webhooks::EndpointSettings;

    /// Answers one fixed address for every name: a DNS whose answer the test chooses.
    struct Answers(SocketAddr);

    impl Resolve for Answers {
        fn resolve(&self, _: Name) -> Resolving {
            let answer = self.0;
            Box::pin(async move { Ok(Box::new(std::iter::once(answer)) as Addrs) })
        }
    }

    fn endpoint(url: &str, allow_private_networks: bool) -> Endpoint {
        let settings = WebhookSettings {
            allow_private_networks,
            endpoints: vec![EndpointSettings {
                id: "crm".into(),
                url: url.into(),
                secret: secrecy::SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                events: None,
                subscription_types: None,
            }],
            ..WebhookSettings::default()
        };
        settings.endpoints(&[]).unwrap().remove(0)
    }

    fn client(answer: &str, policy: NetworkPolicy) -> WebhookClient {
        let resolver = GuardedResolver::over(Arc::new(Answers(answer.parse().unwrap())), policy);
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        WebhookClient::resolving_with(Duration::from_secs(2), clock, resolver, policy).unwrap()
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_private_address_fails_without_connecting() {
        let endpoint = endpoint("https://hooks.example/optin", false);
        let outcome = client("10.0.0.1:443", NetworkPolicy::PublicOnly)
            .deliver(&endpoint, "job-1", b"{}")
            .await;
        let DeliveryOutcome::Failed {
            status: None,
            reason,
        } = outcome
        else {
            panic!("delivered to a private address: {outcome:?}");
        };
        assert!(reason.contains("10.0.0.1"), "{reason}");
        assert!(
            reason.contains("webhooks.allow_private_networks"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn an_address_in_the_url_is_checked_before_sending() {
        // Accepted by a configuration that allowed private networks, delivered by a
        // client that does not: the client's own check refuses it.
        let endpoint = endpoint("https://10.0.0.1/optin", true);
        let outcome = client("93.184.215.14:443", NetworkPolicy::PublicOnly)
            .deliver(&endpoint, "job-1", b"{}")
            .await;
        assert!(
            matches!(&outcome, DeliveryOutcome::Failed { status: None, reason } if reason.starts_with("refused: 10.0.0.1")),
            "{outcome:?}"
        );
    }

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
