//! One webhook delivery attempt against a real HTTP receiver in the test process: what
//! each kind of answer comes to, and that the signature verifies with our verifier and
//! with the independent Python `standardwebhooks` package (tests/webhooks/verify.sh).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use optin::clock::SystemClock;
use optin::webhooks::event::Empty;
use optin::webhooks::signature::SigningKey;
use optin::webhooks::{
    DeliveryOutcome, Endpoint, EndpointSettings, EventData, NetworkPolicy, WebhookClient,
    WebhookEvent, WebhookSettings,
};
use secrecy::SecretString;
use support::webhook_receiver::{python_verify, Answer, WebhookReceiver};

const WAIT: Duration = Duration::from_secs(5);

struct Setup {
    receiver: WebhookReceiver,
    endpoint: Endpoint,
    secret: String,
    client: WebhookClient,
}

async fn setup(timeout: Duration) -> Setup {
    let receiver = WebhookReceiver::start().await;
    let secret = SigningKey::generate().unwrap();
    let settings = WebhookSettings {
        endpoints: vec![EndpointSettings {
            id: "crm".into(),
            url: receiver.url("/hook"),
            secret: SecretString::from(secret.clone()),
            events: None,
            subscription_types: None,
        }],
        ..WebhookSettings::default()
    };
    let endpoint = settings.endpoints(&[]).unwrap().remove(0);
    let client =
        WebhookClient::new(timeout, Arc::new(SystemClock), NetworkPolicy::PublicOnly).unwrap();
    Setup {
        receiver,
        endpoint,
        secret,
        client,
    }
}

fn test_body() -> Vec<u8> {
    WebhookEvent::new(EventData::WebhookTest(Empty {}), chrono::Utc::now())
        .to_body()
        .unwrap()
}

#[tokio::test]
async fn a_2xx_answer_is_delivered_signed_so_that_both_verifiers_accept_it() {
    let s = setup(Duration::from_secs(5)).await;
    let body = test_body();
    let before = chrono::Utc::now().timestamp();

    let outcome = s.client.deliver(&s.endpoint, "job-1", &body).await;

    assert_eq!(outcome, DeliveryOutcome::Delivered(200));
    let received = s.receiver.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.body, body);
    assert_eq!(request.header("webhook-id"), Some("job-1"));
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (before..=before + 2).contains(&timestamp),
        "{timestamp} vs {before}"
    );
    let signature = request.header("webhook-signature").unwrap();
    assert!(signature.starts_with("v1,"), "{signature}");

    let key = SigningKey::parse(&s.secret).unwrap();
    assert!(key.verify("job-1", timestamp, &request.body, signature));
    assert_eq!(python_verify(&s.secret, request), Ok(()));
}

#[tokio::test]
async fn the_python_verifier_refuses_a_changed_body_or_another_secret() {
    let s = setup(Duration::from_secs(5)).await;
    let body = test_body();
    s.client.deliver(&s.endpoint, "job-2", &body).await;
    let mut request = s.receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(python_verify(&s.secret, &request), Ok(()));

    let other_secret = SigningKey::generate().unwrap();
    let refused = python_verify(&other_secret, &request).unwrap_err();
    assert!(refused.starts_with("fail"), "{refused}");

    request.body = body
        .iter()
        .map(|b| if *b == b'{' { b'[' } else { *b })
        .collect();
    let refused = python_verify(&s.secret, &request).unwrap_err();
    assert!(refused.starts_with("fail"), "{refused}");
}

#[tokio::test]
async fn a_500_fails_and_the_retry_carries_the_same_webhook_id() {
    let s = setup(Duration::from_secs(5)).await;
    s.receiver.answer(Answer::Status(500));
    let body = test_body();

    let first = s.client.deliver(&s.endpoint, "job-3", &body).await;
    s.receiver.answer(Answer::Status(204));
    let retry = s.client.deliver(&s.endpoint, "job-3", &body).await;

    assert!(
        matches!(&first, DeliveryOutcome::Failed { status: Some(500), reason } if reason.contains("500")),
        "{first:?}"
    );
    assert_eq!(retry, DeliveryOutcome::Delivered(204));
    let received = s.receiver.wait_for(2, WAIT).await;
    assert_eq!(received[0].header("webhook-id"), Some("job-3"));
    assert_eq!(received[1].header("webhook-id"), Some("job-3"));
    assert_eq!(received[0].body, received[1].body);
}

#[tokio::test]
async fn a_410_means_gone() {
    let s = setup(Duration::from_secs(5)).await;
    s.receiver.answer(Answer::Status(410));

    let outcome = s.client.deliver(&s.endpoint, "job-4", &test_body()).await;

    assert_eq!(outcome, DeliveryOutcome::Gone);
}

#[tokio::test]
async fn a_hanging_receiver_fails_by_timeout_within_a_second_of_it() {
    let timeout = Duration::from_secs(1);
    let s = setup(timeout).await;
    s.receiver.answer(Answer::Hang);
    let started = Instant::now();

    let outcome = s.client.deliver(&s.endpoint, "job-5", &test_body()).await;

    let took = started.elapsed();
    assert!(
        matches!(&outcome, DeliveryOutcome::Failed { status: None, reason } if reason.contains("timed out")),
        "{outcome:?}"
    );
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(1),
        "{took:?}"
    );
    assert_eq!(s.receiver.received().len(), 1, "the request did arrive");
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let s = setup(Duration::from_secs(5)).await;
    s.receiver
        .answer(Answer::Redirect(s.receiver.url("/elsewhere")));

    let outcome = s.client.deliver(&s.endpoint, "job-6", &test_body()).await;

    assert!(
        matches!(
            outcome,
            DeliveryOutcome::Failed {
                status: Some(302),
                ..
            }
        ),
        "{outcome:?}"
    );
    let paths: Vec<String> = s.receiver.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/hook"]);
}

#[tokio::test]
async fn a_refused_connection_fails_without_a_status_and_without_the_url() {
    let mut s = setup(Duration::from_secs(5)).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    s.endpoint.url = format!("http://127.0.0.1:{port}/hook?token=receiver-secret")
        .parse()
        .unwrap();

    let outcome = s.client.deliver(&s.endpoint, "job-7", &test_body()).await;

    match outcome {
        DeliveryOutcome::Failed {
            status: None,
            reason,
        } => {
            assert!(reason.starts_with("could not connect"), "{reason}");
            assert!(!reason.contains("receiver-secret"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_receiver_named_localhost_is_reached_through_the_guarded_resolver() {
    // `localhost` goes through the system resolver and the network policy: loopback is
    // allowed, for receivers on the same host.
    let mut s = setup(Duration::from_secs(5)).await;
    s.endpoint.url = s
        .receiver
        .url("/hook")
        .replace("127.0.0.1", "localhost")
        .parse()
        .unwrap();
    assert_eq!(s.endpoint.url.host_str(), Some("localhost"));

    let outcome = s.client.deliver(&s.endpoint, "job-8", &test_body()).await;

    assert_eq!(outcome, DeliveryOutcome::Delivered(200));
    assert_eq!(s.receiver.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn an_endpoint_at_a_private_address_fails_before_sending_unless_allowed() {
    let s = setup(Duration::from_secs(5)).await;
    let settings = WebhookSettings {
        allow_private_networks: true,
        endpoints: vec![EndpointSettings {
            id: "intranet".into(),
            url: "https://10.0.0.1/hook".into(),
            secret: SecretString::from(s.secret.clone()),
            events: None,
            subscription_types: None,
        }],
        ..WebhookSettings::default()
    };
    let private = settings.endpoints(&[]).unwrap().remove(0);

    let outcome = s.client.deliver(&private, "job-9", &test_body()).await;

    match outcome {
        DeliveryOutcome::Failed {
            status: None,
            reason,
        } => {
            assert!(reason.starts_with("refused: 10.0.0.1"), "{reason}");
            assert!(
                reason.contains("webhooks.allow_private_networks"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(s.receiver.received().is_empty());
}
