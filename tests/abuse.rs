//! Abuse limits and retention: per-IP signup limits (IPv6 by its /64, and whom every
//! `X-Forwarded-For` line is believed from), the CORS allow-list, and removal of
//! inactive contacts after their retention period, on both stores.

mod support;

use chrono::Duration;
use serde_json::{json, Value};
use support::app::{Backend, TestApp};

on_embedded_and_redis!(
    an_ip_over_its_signup_limit_gets_429_with_retry_after,
    forwarded_for_counts_only_behind_a_trusted_proxy,
    every_forwarded_for_line_counts_and_ipv6_clients_count_by_their_64,
    only_allowed_origins_get_cors_headers,
    inactive_contacts_are_removed_after_the_retention_period,
);

async fn signup_from(app: &TestApp, email: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/v1/signups"))
        .json(&json!({ "email": email, "subscription_types": ["blog-updates"] }));
    if let Some(forwarded) = forwarded_for {
        request = request.header("X-Forwarded-For", forwarded);
    }
    request.send().await.unwrap()
}

async fn an_ip_over_its_signup_limit_gets_429_with_retry_after(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.signup.max_signups_per_ip = 3;
        s.signup.ip_window_secs = 600;
    })
    .await;
    for i in 0..3 {
        assert_eq!(
            signup_from(&app, &format!("ok{i}@example.com"), None)
                .await
                .status(),
            202
        );
    }
    let refused = signup_from(&app, "fourth@example.com", None).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    assert_eq!(
        app.contact("fourth@example.com").await.status(),
        404,
        "nothing stored for the refused signup"
    );

    let form = app
        .client
        .post(app.url("/signup"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=form%40example.com&subscription_types=blog-updates")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 429, "the form route shares the limit");
    assert!(form.headers().contains_key("retry-after"));

    app.advance_clock(Duration::seconds(601));
    assert_eq!(
        signup_from(&app, "later@example.com", None).await.status(),
        202,
        "a new window"
    );
}

async fn forwarded_for_counts_only_behind_a_trusted_proxy(backend: Backend) {
    let untrusted = TestApp::spawn_with(backend, |s| s.signup.max_signups_per_ip = 2).await;
    for (i, client) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        let status = signup_from(&untrusted, &format!("u{i}@example.com"), Some(client))
            .await
            .status();
        assert_eq!(
            status,
            if i < 2 { 202 } else { 429 },
            "a spoofed header does not escape the limit"
        );
    }

    let behind_proxy = TestApp::spawn_with(backend, |s| {
        s.signup.max_signups_per_ip = 2;
        s.server.trusted_proxies = optin::config::StringList(vec!["127.0.0.1".into()]);
    })
    .await;
    for (i, client) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            signup_from(&behind_proxy, &format!("p{i}@example.com"), Some(client))
                .await
                .status(),
            202
        );
    }
    behind_proxy.drain_outbox().await;
    let link = behind_proxy.confirmation_link("p0@example.com");
    behind_proxy
        .client
        .post(&link)
        .header("X-Forwarded-For", "203.0.113.77")
        .send()
        .await
        .unwrap();
    let events: Value = behind_proxy
        .admin_get_json("/v1/contacts/p0%40example.com/events")
        .await;
    assert_eq!(
        events["events"][0]["ip"], "203.0.113.77",
        "the real client is recorded as evidence"
    );
    assert_eq!(events["events"][0]["signup"]["ip"], "198.51.100.1");
}

/// A signup through a proxy that adds its own `X-Forwarded-For` line after the one the
/// client sent.
async fn signup_with_forwarded_lines(app: &TestApp, email: &str, lines: &[&str]) -> u16 {
    let mut request = app
        .client
        .post(app.url("/v1/signups"))
        .json(&json!({ "email": email, "subscription_types": ["blog-updates"] }));
    for line in lines {
        request = request.header("X-Forwarded-For", *line);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn every_forwarded_for_line_counts_and_ipv6_clients_count_by_their_64(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.signup.max_signups_per_ip = 2;
        s.server.trusted_proxies =
            optin::config::StringList(vec!["127.0.0.1".into(), "10.0.0.0/8".into()]);
    })
    .await;
    // The client wrote its own first line; the trusted proxy 10.0.0.2 added the second.
    for (i, spoofed) in ["203.0.113.5", "203.0.113.6", "203.0.113.7"]
        .iter()
        .enumerate()
    {
        let status = signup_with_forwarded_lines(
            &app,
            &format!("x{i}@example.com"),
            &[spoofed, "198.51.100.20, 10.0.0.2"],
        )
        .await;
        assert_eq!(
            status,
            if i < 2 { 202 } else { 429 },
            "the client's own line does not make it a new client"
        );
    }
    app.drain_outbox().await;
    let link = app.confirmation_link("x0@example.com");
    app.client.post(&link).send().await.unwrap();
    let events: Value = app
        .admin_get_json("/v1/contacts/x0%40example.com/events")
        .await;
    assert_eq!(
        events["events"][0]["signup"]["ip"], "198.51.100.20",
        "the address the trusted proxy saw is the evidence: {events}"
    );

    for (i, client) in ["2001:db8:7:7::1", "2001:db8:7:7:ffff::2", "2001:db8:7:7::3"]
        .iter()
        .enumerate()
    {
        let status =
            signup_with_forwarded_lines(&app, &format!("v6-{i}@example.com"), &[client]).await;
        assert_eq!(
            status,
            if i < 2 { 202 } else { 429 },
            "addresses of one /64 share the limit"
        );
    }
    assert_eq!(
        signup_with_forwarded_lines(&app, "v6-other@example.com", &["2001:db8:7:8::1"]).await,
        202,
        "the next /64 is another client"
    );
}

async fn only_allowed_origins_get_cors_headers(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.server.cors_allowed_origins =
            optin::config::StringList(vec!["https://shop.example".into()]);
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/signups"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let allowed = preflight("https://shop.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let post = app
        .client
        .post(app.url("/v1/signups"))
        .header("Origin", "https://shop.example")
        .json(&json!({ "email": "cors@example.com", "subscription_types": ["blog-updates"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 202);
    assert_eq!(
        post.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
}

async fn inactive_contacts_are_removed_after_the_retention_period(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.privacy.retain_inactive_days = Some(30)).await;
    app.subscribe_confirmed("left@example.com", &["blog-updates"])
        .await;
    app.subscribe_confirmed("stayed@example.com", &["blog-updates"])
        .await;
    app.one_click_unsubscribe("left@example.com", "blog-updates")
        .await;

    app.advance_clock(Duration::days(29));
    assert_eq!(
        app.purge_inactive().await,
        0,
        "kept within the retention period"
    );
    app.advance_clock(Duration::days(2));
    assert_eq!(app.purge_inactive().await, 1);
    assert_eq!(
        app.contact("left@example.com").await.status(),
        404,
        "the inactive contact is gone"
    );
    assert_eq!(
        app.eligibility("stayed@example.com", "blog-updates").await["eligible"],
        true,
        "active ones stay"
    );
    let stats: Value = app.admin_get_json("/v1/stats").await;
    assert_eq!(stats["by_type"]["blog-updates"]["unsubscribed"], 0);
    assert_eq!(stats["non_marketing_contacts"], 0);

    let import = "{\"email\":\"left@example.com\",\"subscription_type\":\"blog-updates\",\"status\":\"opted_in\",\"lawful_basis\":\"legitimate_interests\"}\n";
    let response = app
        .admin(reqwest::Method::POST, "/v1/imports")
        .await
        .body(import)
        .send()
        .await
        .unwrap();
    let first: Value =
        serde_json::from_str(response.text().await.unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(
        first["ok"], false,
        "the tombstone keeps an import from quietly re-adding them"
    );
}
