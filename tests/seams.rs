//! Where the doors meet: a rectification racing every other kind of change loses no
//! acknowledged change, links mailed before a rectification follow the person, a used
//! confirmation link mints no new rights, one link's POSTs cannot spend another's budget,
//! and plus-tags do not multiply the per-address mail cap.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::app::{urlencode, Backend, TestApp};

on_every_backend!(
    an_admin_change_racing_a_rectification_is_never_lost,
    an_erasure_racing_a_rectification_leaves_nothing,
    a_one_click_racing_a_rectification_unsubscribes_the_person,
    a_complaint_racing_a_rectification_unsubscribes_the_person,
    an_import_racing_a_rectification_is_never_lost,
    a_link_mailed_before_a_rectification_reaches_the_new_address,
    a_used_confirmation_link_shows_already_confirmed_and_mints_no_rights,
    an_unsubscribe_link_cannot_spend_the_owners_budget,
    plus_tagged_addresses_share_the_mail_cap,
);

/// Rounds per race kind: each round races one rectification against one other change.
const ROUNDS: usize = 25;
const TYPE: &str = "blog-updates";

fn contact_path(email: &str, rest: &str) -> String {
    format!("/v1/contacts/{}{rest}", urlencode(email))
}

async fn send(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.expect("request sent")
}

/// An opted-in contact at `email`, by an admin with consent evidence.
async fn opted_in(app: &TestApp, email: &str) {
    let response = send(
        app.admin(
            Method::PUT,
            &contact_path(email, &format!("/subscriptions/{TYPE}")),
        )
        .await
        .json(&json!({
            "status": "opted_in",
            "lawful_basis": "consent",
            "consent_evidence": "paper form, race test",
        })),
    )
    .await;
    assert_eq!(response.status(), 200, "the opt-in is recorded");
}

async fn rectify(app: &TestApp, old: &str, new: &str) -> reqwest::Response {
    send(
        app.admin(Method::POST, &contact_path(old, "/rectification"))
            .await
            .json(&json!({ "new_email": new })),
    )
    .await
}

fn addresses(round: usize) -> (String, String) {
    (
        format!("race{round}@example.com"),
        format!("moved{round}@example.com"),
    )
}

/// What a round's two answers were, counted so that a failure shows how the race went.
#[derive(Debug, Default)]
struct Outcomes(std::collections::BTreeMap<(u16, u16), usize>);

impl Outcomes {
    fn note(&mut self, rectification: u16, other: u16) {
        *self.0.entry((rectification, other)).or_default() += 1;
    }
}

async fn an_admin_change_racing_a_rectification_is_never_lost(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut outcomes = Outcomes::default();
    for round in 0..ROUNDS {
        let (old, new) = addresses(round);
        opted_in(&app, &old).await;
        let put = app
            .admin(
                Method::PUT,
                &contact_path(&old, &format!("/subscriptions/{TYPE}")),
            )
            .await
            .json(&json!({ "status": "unsubscribed" }));
        let (moved, changed) = tokio::join!(rectify(&app, &old, &new), send(put));
        let (moved, changed) = (moved.status().as_u16(), changed.status().as_u16());
        outcomes.note(moved, changed);
        assert_eq!(moved, 200, "the rectification is done: {outcomes:?}");
        match changed {
            200 => assert_eq!(
                app.status(&new, TYPE).await,
                "unsubscribed",
                "an acknowledged change holds after the move: {outcomes:?}"
            ),
            409 => assert_eq!(
                app.status(&new, TYPE).await,
                "opted_in",
                "a change refused as moved changed nothing: {outcomes:?}"
            ),
            other => panic!("the change answered {other}: {outcomes:?}"),
        }
        assert_eq!(app.contact(&old).await.status(), 404, "{outcomes:?}");
    }
}

async fn an_erasure_racing_a_rectification_leaves_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut outcomes = Outcomes::default();
    for round in 0..ROUNDS {
        let (old, new) = addresses(round);
        opted_in(&app, &old).await;
        let path = contact_path(&old, "");
        let (moved, erased) = tokio::join!(
            rectify(&app, &old, &new),
            app.admin_send(Method::DELETE, &path)
        );
        let (moved, erased) = (moved.status().as_u16(), erased.status().as_u16());
        outcomes.note(moved, erased);
        match (moved, erased) {
            // Erased first: the move finds no one.
            (404, 204) => {}
            // Moved first: the erasure by the old address is refused, and the person is
            // at the new address.
            (200, 409) => {
                assert_eq!(app.status(&new, TYPE).await, "opted_in", "{outcomes:?}");
                continue;
            }
            other => panic!("unexpected answers {other:?}: {outcomes:?}"),
        }
        for address in [&old, &new] {
            assert_eq!(
                app.contact(address).await.status(),
                404,
                "an acknowledged erasure leaves nothing at {address}: {outcomes:?}"
            );
        }
        assert_eq!(app.eligibility(&new, TYPE).await["eligible"], false);
    }
}

async fn a_one_click_racing_a_rectification_unsubscribes_the_person(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut outcomes = Outcomes::default();
    for round in 0..ROUNDS {
        let (old, new) = addresses(round);
        opted_in(&app, &old).await;
        let link = app.unsubscribe_link(&old, TYPE).await;
        let (moved, unsubscribed) =
            tokio::join!(rectify(&app, &old, &new), app.post_one_click(&link));
        let (moved, unsubscribed) = (moved.status().as_u16(), unsubscribed.status().as_u16());
        outcomes.note(moved, unsubscribed);
        assert_eq!((moved, unsubscribed), (200, 200), "{outcomes:?}");
        assert_eq!(
            app.status(&new, TYPE).await,
            "unsubscribed",
            "the person who pressed unsubscribe is not mailed: {outcomes:?}"
        );
        assert_eq!(app.eligibility(&new, TYPE).await["eligible"], false);
    }
}

async fn a_complaint_racing_a_rectification_unsubscribes_the_person(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut outcomes = Outcomes::default();
    for round in 0..ROUNDS {
        let (old, new) = addresses(round);
        opted_in(&app, &old).await;
        let complaint = app
            .admin(Method::POST, "/v1/feedback")
            .await
            .json(&json!({ "email": old, "kind": "complaint" }));
        let (moved, accepted) = tokio::join!(rectify(&app, &old, &new), send(complaint));
        let (moved, accepted) = (moved.status().as_u16(), accepted.status().as_u16());
        outcomes.note(moved, accepted);
        assert_eq!((moved, accepted), (200, 200), "{outcomes:?}");
        assert_eq!(
            app.status(&new, TYPE).await,
            "unsubscribed",
            "a complaint about mail to the old address follows the person: {outcomes:?}"
        );
    }
}

async fn an_import_racing_a_rectification_is_never_lost(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut outcomes = Outcomes::default();
    for round in 0..ROUNDS {
        let (old, new) = addresses(round);
        opted_in(&app, &old).await;
        let line = json!({ "email": old, "subscription_type": TYPE, "status": "unsubscribed" });
        let import = app
            .admin(Method::POST, "/v1/imports")
            .await
            .header("content-type", "application/x-ndjson")
            .body(format!("{line}\n"));
        let (moved, imported) = tokio::join!(rectify(&app, &old, &new), send(import));
        let moved = moved.status().as_u16();
        assert_eq!(imported.status(), 200);
        let answer = imported.text().await.unwrap();
        let result: Value = serde_json::from_str(answer.lines().next().unwrap()).unwrap();
        let line_ok = result["ok"] == true;
        outcomes.note(moved, u16::from(line_ok));
        assert_eq!(moved, 200, "{outcomes:?}");
        let expected = if line_ok { "unsubscribed" } else { "opted_in" };
        assert_eq!(
            app.status(&new, TYPE).await,
            expected,
            "an import line answered {result} holds after the move: {outcomes:?}"
        );
    }
}

async fn a_link_mailed_before_a_rectification_reaches_the_new_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.subscribe_confirmed("before@example.com", &[TYPE, "marketing"])
        .await;
    let unsubscribe = app.unsubscribe_link("before@example.com", TYPE).await;
    let preferences = app.preferences_link("before@example.com");
    assert_eq!(
        rectify(&app, "before@example.com", "after@example.com")
            .await
            .status(),
        200
    );

    let answer = app.post_one_click(&unsubscribe).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(app.status("after@example.com", TYPE).await, "unsubscribed");
    assert_eq!(
        app.status("after@example.com", "marketing").await,
        "opted_in"
    );
    let saved = send(
        app.client
            .post(&preferences)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("shown=marketing"),
    )
    .await;
    assert_eq!(saved.status(), 200);
    assert_eq!(
        app.status("after@example.com", "marketing").await,
        "unsubscribed",
        "the preference center saves where the person is now"
    );

    // Erasure reaches the forwarding record too: the old link reaches no one.
    let erased = app
        .admin_send(Method::DELETE, &contact_path("after@example.com", ""))
        .await;
    assert_eq!(erased.status(), 204);
    let after_erasure = app.post_one_click(&unsubscribe).await;
    assert_eq!(after_erasure.status(), 200, "the same answer as for anyone");
    assert_eq!(app.contact("after@example.com").await.status(), 404);
    assert_eq!(app.contact("before@example.com").await.status(), 404);
    // The earlier address was the person's too: an import cannot quietly re-add it.
    let line = json!({ "email": "before@example.com", "subscription_type": TYPE,
                       "status": "opted_in", "lawful_basis": "legitimate_interests" });
    let import = send(
        app.admin(Method::POST, "/v1/imports")
            .await
            .header("content-type", "application/x-ndjson")
            .body(format!("{line}\n")),
    )
    .await;
    let answer = import.text().await.unwrap();
    let result: Value = serde_json::from_str(answer.lines().next().unwrap()).unwrap();
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["field"], "consent_evidence", "{result}");
}

async fn a_used_confirmation_link_shows_already_confirmed_and_mints_no_rights(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "once@example.com";
    app.subscribe_confirmed(email, &[TYPE]).await;
    let link = app.confirmation_link(email);
    let events_before = app.admin_get_json(&contact_path(email, "/events")).await["events"]
        .as_array()
        .unwrap()
        .len();
    for replay in [
        app.client.post(&link).send().await.unwrap(),
        app.client.get(&link).send().await.unwrap(),
    ] {
        assert_eq!(replay.status(), 200);
        let page = replay.text().await.unwrap();
        assert!(page.contains("Blog updates"), "the types' names: {page}");
        assert!(
            !page.contains("/preferences/"),
            "a replayed link mints no preferences link: {page}"
        );
    }
    let events_after = app.admin_get_json(&contact_path(email, "/events")).await["events"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(events_before, events_after, "a replay records nothing");
}

async fn an_unsubscribe_link_cannot_spend_the_owners_budget(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "owner@example.com";
    app.subscribe_confirmed(email, &[TYPE, "marketing"]).await;
    let unsubscribe = app.unsubscribe_link(email, TYPE).await;
    let mut refused = 0;
    for _ in 0..30 {
        let answer = send(
            app.client
                .post(&unsubscribe)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(""),
        )
        .await;
        match answer.status().as_u16() {
            200 => {}
            429 => refused += 1,
            other => panic!("the unsubscribe page answered {other}"),
        }
    }
    assert!(refused > 0, "the unsubscribe link's own budget ran out");

    let preferences = app.preferences_link(email);
    let export = send(
        app.client
            .post(format!("{preferences}/export"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(""),
    )
    .await;
    assert_eq!(export.status(), 200, "the owner's export still works");
    let saved = send(
        app.client
            .post(&preferences)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("shown=marketing"),
    )
    .await;
    assert_eq!(saved.status(), 200, "the owner's preferences still save");
    assert_eq!(app.status(email, "marketing").await, "unsubscribed");
}

async fn plus_tagged_addresses_share_the_mail_cap(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let addresses = [
        "carol@example.com",
        "carol+1@example.com",
        "carol+2@example.com",
        "Carol+3@example.com",
        "carol+4@example.com",
        "carol+5@example.com",
    ];
    for address in addresses {
        assert_eq!(app.signup(address, &[TYPE]).await.status(), 202);
    }
    app.drain_outbox().await;
    let mailed: usize = addresses.iter().map(|a| app.mails_to(a).len()).sum();
    assert_eq!(
        mailed, 3,
        "one mailbox gets at most max_confirmation_mails_per_day (3) mails a day"
    );
    assert_eq!(
        app.signup("dave+1@example.com", &[TYPE]).await.status(),
        202
    );
    app.drain_outbox().await;
    assert_eq!(
        app.mails_to("dave+1@example.com").len(),
        1,
        "another mailbox is not held back"
    );
}
