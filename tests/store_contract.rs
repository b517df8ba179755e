//! The storage contract: what every store promises, run against the embedded store, a
//! single Redis and a Redis Cluster. A backend that passes this suite can serve the app.

mod support;

use support::redis_server;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use optin::domain::change::counter;
use optin::domain::event::verify_chain;
use optin::domain::funnel::{FunnelStage, FunnelStep};
use optin::domain::{
    Catalog, ConfirmMethod, ConfirmationRequest, ConsentNotice, Contact, ContactChange, ContactId,
    ContactIndex, EmailAddress, Event, LawfulBasis, MailKind, OutboxJob, Planned, Purpose,
    RequestMeta, Restriction, SignupEvidence, Source, Status, StatusChange, SubscriptionType,
    SubscriptionTypeId, Timer, Tombstone, WebhookTask,
};
use optin::store::embedded::EmbeddedStore;
use optin::store::redis::RedisStore;
use optin::store::{
    Consistency, ContactRecord, EndpointAttempt, EndpointState, HitWindow, JobRecord, JobState,
    MailAllowance, OutboxDepth, RestoreBatch, RestoreMark, SharedStore, StoreError,
};
use uuid::Uuid;

use redis_server::{RedisCluster, RedisServer};

/// A store under test, a second handle on the same data (another connection where the
/// backend has connections), and whatever must live as long as they do.
struct Backend {
    store: SharedStore,
    second: SharedStore,
    _resources: Box<dyn std::any::Any + Send>,
}

async fn embedded_backend() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(EmbeddedStore::open(&dir.path().join("optin.redb")).unwrap());
    Backend {
        second: store.clone(),
        store,
        _resources: Box::new(dir),
    }
}

async fn redis_backend() -> Backend {
    let server = RedisServer::start();
    let store: SharedStore = Arc::new(RedisStore::connect(&server.url).await.unwrap());
    let second: SharedStore = Arc::new(RedisStore::connect(&server.url).await.unwrap());
    Backend {
        store,
        second,
        _resources: Box::new(server),
    }
}

async fn redis_cluster_backend() -> Backend {
    let cluster = RedisCluster::start();
    let store: SharedStore = Arc::new(RedisStore::connect(&cluster.url).await.unwrap());
    let second: SharedStore = Arc::new(RedisStore::connect(&cluster.url).await.unwrap());
    Backend {
        store,
        second,
        _resources: Box::new(cluster),
    }
}

// Every listed contract test once per backend, as `<backend>::<test name>`.
on_backends!(
    [
        embedded => embedded_backend().await,
        redis => redis_backend().await,
        redis_cluster => redis_cluster_backend().await,
    ],
    a_stored_contact_loads_back_exactly,
    the_member_index_follows_the_changes_that_set_and_drop_it,
    a_walk_finds_every_contact_and_index_entries_are_written_only_at_the_version_read,
    an_unknown_contact_loads_as_nothing,
    a_change_from_a_stale_version_is_refused_and_writes_nothing,
    events_come_back_oldest_first_and_their_chain_verifies,
    erasing_a_contact_removes_its_events_jobs_and_expiry_entries_and_leaves_a_tombstone,
    an_erasure_removes_expiry_entries_even_when_the_change_does_not_list_them,
    a_returning_contact_can_clear_its_tombstone,
    counters_follow_opt_in_unsubscribe_and_erasure_exactly,
    only_expired_confirmations_are_listed_and_removed_ones_are_forgotten,
    loading_many_contacts_keeps_the_order_asked_and_marks_missing_ones,
    a_claimed_job_is_hidden_until_its_lease_ends_and_is_then_taken_again,
    a_completed_job_is_never_claimed_again,
    a_job_retried_later_keeps_its_attempts_and_error_and_waits_until_due,
    a_dead_letter_is_listed_not_claimable_and_revived_with_zero_attempts,
    dead_letters_are_listed_oldest_job_first_whatever_order_they_died_in,
    two_workers_claiming_at_once_never_get_the_same_job,
    outbox_depth_counts_queued_and_dead_jobs,
    retrying_or_dead_lettering_an_erased_job_does_not_bring_it_back,
    the_retention_index_lists_contacts_without_an_opt_in_longest_inactive_first,
    hits_are_counted_per_key_and_start_over_in_the_next_window,
    a_hit_given_back_counts_down_in_its_own_window_only_and_never_below_zero,
    a_key_is_spent_once_for_every_handle_and_is_gone_after_its_expiry,
    webhook_jobs_are_counted_per_endpoint_and_a_contacts_jobs_are_listed,
    an_endpoints_state_records_each_attempt_and_only_enable_clears_a_410,
    many_writers_at_once_all_land_and_of_rivals_for_one_contact_exactly_one_wins,
    a_restore_writes_every_kind_of_record_as_it_was_and_a_view_reads_it_back,
    a_restored_contact_gets_the_indexes_its_change_derives,
    a_restore_refuses_a_contact_that_exists_and_writes_nothing_of_it,
    a_view_gives_every_contact_once_over_its_pages_and_keeps_its_snapshot_promise,
    a_store_is_empty_until_anything_is_written_and_the_restore_mark_counts,
    the_due_index_lists_contacts_by_timer_earliest_first_and_follows_every_change,
    funnel_counters_are_written_with_their_change_summed_over_shards_and_kept_apart,
);

// ---------------------------------------------------------------------------------------
// Building contacts and changes with the real domain API.

const NEWS: &str = "news";
const BILLING: &str = "billing";

fn catalog() -> Catalog {
    let subscription_type = |id: &str, purpose| SubscriptionType {
        id: SubscriptionTypeId::parse(id).unwrap(),
        purpose,
        double_opt_in: true,
        name: BTreeMap::from([("en".to_string(), id.to_string())]),
        description: BTreeMap::new(),
        consent_notice: BTreeMap::from([(
            "en".to_string(),
            ConsentNotice {
                version: "v1".into(),
                text: format!("We send you {id} mail."),
            },
        )])
        .try_into()
        .unwrap(),
        past_notices: Vec::new(),
        consent_valid_days: None,
        consent_renewal_days: 30,
    };
    Catalog::new(
        vec![
            subscription_type(NEWS, Purpose::Marketing),
            subscription_type(BILLING, Purpose::Service),
        ],
        "en",
    )
    .unwrap()
}

fn type_id(id: &str) -> SubscriptionTypeId {
    SubscriptionTypeId::parse(id).unwrap()
}

fn address(n: usize) -> EmailAddress {
    EmailAddress::parse(&format!("person{n}@example.com")).unwrap()
}

fn contact_id(n: usize) -> ContactId {
    ContactIndex::new(vec![42; 32]).contact_id(&address(n))
}

fn new_contact(n: usize, now: DateTime<Utc>) -> Contact {
    Contact::new(contact_id(n), address(n), "en", now)
}

/// Sets a status in memory and returns the event that records it.
fn set_status(
    contact: &mut Contact,
    subscription_type: &str,
    to: Status,
    now: DateTime<Utc>,
) -> Event {
    let change = StatusChange::new(to, Source::AdminApi).with_basis(LawfulBasis::Consent);
    contact
        .change_status(
            &type_id(subscription_type),
            change,
            &RequestMeta::default(),
            now,
        )
        .unwrap()
}

fn add_pending(contact: &mut Contact, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Uuid {
    contact.request_confirmation(
        ConfirmationRequest {
            types: vec![type_id(NEWS)],
            notices: Vec::new(),
            locale: "en".into(),
            ttl: expires_at - now,
            signup: SignupEvidence {
                at: now,
                source: Source::SignupForm,
                ip: None,
                user_agent: None,
                form_id: None,
                page_url: None,
            },
            remind_after: None,
            funnel: None,
        },
        now,
    );
    contact.pending().last().expect("just added").id
}

/// The contact a transition plans to write.
fn written<T>(planned: Planned<T>) -> Contact {
    planned
        .plan()
        .and_then(|plan| plan.after())
        .cloned()
        .expect("the transition writes the contact")
}

/// The change from `before` to `after`, for the contact either names.
fn change_between(
    before: Option<&Contact>,
    after: Option<Contact>,
    events: Vec<Event>,
    jobs: Vec<OutboxJob>,
    catalog: &Catalog,
) -> ContactChange {
    let id = before
        .or(after.as_ref())
        .map(|c| c.id().clone())
        .expect("a change concerns a contact");
    ContactChange::between(id, before, after, events, jobs, catalog)
}

fn confirmation_job(contact: &Contact, now: DateTime<Utc>) -> OutboxJob {
    let mail = MailKind::Confirmation {
        pending_id: Uuid::new_v4(),
        types: vec![type_id(NEWS)],
        expires_at: now,
    };
    OutboxJob::mail(
        contact.id().clone(),
        contact.email().clone(),
        "en",
        mail,
        now,
    )
}

/// Applies the change from `before` to `after` and returns the contact as stored.
async fn save(
    store: &SharedStore,
    before: Option<&Contact>,
    after: Contact,
    events: Vec<Event>,
    jobs: Vec<OutboxJob>,
) -> Contact {
    let id = after.id().clone();
    store
        .apply(change_between(
            before,
            Some(after),
            events,
            jobs,
            &catalog(),
        ))
        .await
        .unwrap();
    store
        .load_contact(&id)
        .await
        .unwrap()
        .expect("the contact was just saved")
}

/// A stored contact with one pending job, created at `now`.
async fn contact_with_job(
    store: &SharedStore,
    n: usize,
    now: DateTime<Utc>,
) -> (Contact, OutboxJob) {
    let contact = new_contact(n, now);
    let job = confirmation_job(&contact, now);
    let stored = save(store, None, contact, Vec::new(), vec![job.clone()]).await;
    (stored, job)
}

async fn erase(store: &SharedStore, contact: &Contact, now: DateTime<Utc>) {
    let change = change_between(Some(contact), None, Vec::new(), Vec::new(), &catalog())
        .with_tombstone(Tombstone {
            erased_at: now,
            reason: optin::domain::ErasureReason::Erasure,
            request_id: None,
            moved_to: None,
        });
    store.apply(change).await.unwrap();
}

/// Counters with zeros left out: a store may keep or drop a counter back at zero.
async fn counters(store: &SharedStore) -> BTreeMap<String, i64> {
    let mut counters = store.counters().await.unwrap();
    counters.retain(|_, count| *count != 0);
    counters
}

fn counts(entries: &[(&str, i64)]) -> BTreeMap<String, i64> {
    entries
        .iter()
        .map(|(name, count)| (name.to_string(), *count))
        .collect()
}

fn far_future(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::days(365)
}

/// Claims until nothing is due at `now`, with a lease far beyond it. A store that hands
/// out a leased job again would loop forever; this stops it with a clear failure.
/// After an erasure: the queue holds exactly `other_job`, and no dead letter.
async fn only_the_other_contacts_job_remains(
    store: &SharedStore,
    other_job: &OutboxJob,
    now: DateTime<Utc>,
) {
    assert_depth(store, 1, 0).await;
    let claimed: Vec<Uuid> = claim_all(store, far_future(now))
        .await
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(
        claimed,
        vec![other_job.id],
        "only the other contact's job may remain"
    );
}

/// Claims the job due at `at`, if any, with a one-minute lease.
async fn claim_due(store: &SharedStore, at: DateTime<Utc>) -> Option<OutboxJob> {
    store
        .claim_job(at, at + Duration::seconds(60))
        .await
        .unwrap()
}

/// Not even far in the future is there a job to claim.
async fn assert_nothing_claimable(store: &SharedStore, now: DateTime<Utc>) {
    assert_eq!(
        store
            .claim_job(far_future(now), far_future(now))
            .await
            .unwrap(),
        None
    );
}

async fn assert_depth(store: &SharedStore, queued: u64, dead: u64) {
    assert_eq!(
        store.outbox_depth().await.unwrap(),
        OutboxDepth { queued, dead }
    );
}

async fn claim_all(store: &SharedStore, now: DateTime<Utc>) -> Vec<OutboxJob> {
    let mut claimed = Vec::new();
    while let Some(job) = store.claim_job(now, far_future(now)).await.unwrap() {
        claimed.push(job);
        assert!(
            claimed.len() <= 1_000,
            "claims never run dry: a leased job is handed out again"
        );
    }
    claimed
}

// ---------------------------------------------------------------------------------------
// The contract.

async fn a_stored_contact_loads_back_exactly(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let mut contact = new_contact(1, now);
    let event = set_status(&mut contact, NEWS, Status::OptedIn, now);
    add_pending(&mut contact, now + Duration::days(2), now);
    let contact =
        written(contact.set_restriction(Restriction::Restrict, &RequestMeta::default(), now));

    let stored = save(&store, None, contact.clone(), vec![event], Vec::new()).await;
    assert_eq!(stored, contact.with_version(1));

    let mut changed = stored.clone();
    let event = set_status(&mut changed, NEWS, Status::Unsubscribed, now);
    let stored_again = save(
        &store,
        Some(&stored),
        changed.clone(),
        vec![event],
        Vec::new(),
    )
    .await;
    assert_eq!(stored_again, changed.with_version(2));
    assert_eq!(stored_again.status(&type_id(NEWS)), Status::Unsubscribed);
}

async fn an_unknown_contact_loads_as_nothing(backend: Backend) {
    let store = backend.store;
    store.ping().await.unwrap();
    save(
        &store,
        None,
        new_contact(1, Utc::now()),
        Vec::new(),
        Vec::new(),
    )
    .await;

    let unknown = contact_id(2);
    assert_eq!(store.load_contact(&unknown).await.unwrap(), None);
    assert!(store.events(&unknown).await.unwrap().is_empty());
    assert_eq!(store.tombstone(&unknown).await.unwrap(), None);
}

/// Writers at once: the embedded store commits them in shared groups, and a conflict in
/// a group must neither sink the others' writes nor let a second rival through.
async fn many_writers_at_once_all_land_and_of_rivals_for_one_contact_exactly_one_wins(
    backend: Backend,
) {
    let store = backend.store;
    let now = Utc::now();
    let writers = (10..74).map(|n| {
        let store = store.clone();
        async move {
            let mut contact = new_contact(n, now);
            let event = set_status(&mut contact, NEWS, Status::OptedIn, now);
            store
                .apply(change_between(
                    None,
                    Some(contact),
                    vec![event],
                    Vec::new(),
                    &catalog(),
                ))
                .await
        }
    });
    // Eight requests that all saw contact 1 missing, each creating it with another type.
    let rivals = (0..8).map(|n| {
        let store = store.clone();
        async move {
            let mut contact = new_contact(1, now);
            let kind = if n % 2 == 0 { NEWS } else { BILLING };
            let event = set_status(&mut contact, kind, Status::OptedIn, now);
            store
                .apply(change_between(
                    None,
                    Some(contact),
                    vec![event],
                    Vec::new(),
                    &catalog(),
                ))
                .await
        }
    });
    let (written, rivalry) = tokio::join!(
        futures_util::future::join_all(writers),
        futures_util::future::join_all(rivals)
    );
    for (n, result) in written.iter().enumerate() {
        assert!(result.is_ok(), "writer {n}: {result:?}");
    }
    let winners = rivalry.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{rivalry:?}");
    assert!(rivalry
        .iter()
        .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict))));
    let ids: Vec<ContactId> = (10..74).map(contact_id).collect();
    let loaded = store.load_contacts(&ids).await.unwrap();
    assert!(loaded.iter().all(|c| c
        .as_ref()
        .is_some_and(|c| c.status(&type_id(NEWS)) == Status::OptedIn)));
    let winner = store
        .load_contact(&contact_id(1))
        .await
        .unwrap()
        .expect("one rival won");
    assert_eq!(
        store.events(winner.id()).await.unwrap().len(),
        1,
        "only the winner's event"
    );
}

async fn a_change_from_a_stale_version_is_refused_and_writes_nothing(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let mut contact = new_contact(1, now);
    let event = set_status(&mut contact, NEWS, Status::OptedIn, now);
    let v1 = save(&store, None, contact, vec![event], Vec::new()).await;

    // Two requests read version 1; the first one wins.
    let mut first = v1.clone();
    let event = set_status(&mut first, NEWS, Status::Unsubscribed, now);
    let v2 = save(&store, Some(&v1), first, vec![event], Vec::new()).await;
    let counters_before = counters(&store).await;
    let depth_before = store.outbox_depth().await.unwrap();

    let mut second = v1.clone();
    let event = set_status(&mut second, BILLING, Status::OptedIn, now);
    let pending = add_pending(&mut second, now - Duration::hours(1), now);
    let job = confirmation_job(&second, now);
    let stale = change_between(Some(&v1), Some(second), vec![event], vec![job], &catalog())
        .with_tombstone(Tombstone {
            erased_at: now,
            reason: optin::domain::ErasureReason::Erasure,
            request_id: None,
            moved_to: None,
        });
    assert!(matches!(
        store.apply(stale).await,
        Err(StoreError::Conflict)
    ));

    assert_eq!(store.load_contact(v1.id()).await.unwrap(), Some(v2.clone()));
    assert_eq!(store.events(v1.id()).await.unwrap().len(), 2);
    assert_eq!(counters(&store).await, counters_before);
    assert_eq!(store.outbox_depth().await.unwrap(), depth_before);
    assert!(store
        .claim_job(now, far_future(now))
        .await
        .unwrap()
        .is_none());
    let expired = store.expired_pending(far_future(now), 10).await.unwrap();
    assert!(
        !expired.contains(&(v1.id().clone(), pending)),
        "the refused change left its expiry entry"
    );
    assert_eq!(store.tombstone(v1.id()).await.unwrap(), None);

    // Creating a contact that already exists is the same conflict.
    let duplicate = change_between(
        None,
        Some(new_contact(1, now)),
        Vec::new(),
        Vec::new(),
        &catalog(),
    );
    assert!(matches!(
        store.apply(duplicate).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.load_contact(v1.id()).await.unwrap(), Some(v2));
}

async fn events_come_back_oldest_first_and_their_chain_verifies(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let mut contact = new_contact(1, now);
    let opted_in = set_status(&mut contact, NEWS, Status::OptedIn, now);
    let stored = save(&store, None, contact, vec![opted_in.clone()], Vec::new()).await;

    let mut changed = stored.clone();
    let billing = set_status(
        &mut changed,
        BILLING,
        Status::OptedIn,
        now + Duration::seconds(1),
    );
    let unsubscribed = set_status(
        &mut changed,
        NEWS,
        Status::Unsubscribed,
        now + Duration::seconds(2),
    );
    let stored = save(
        &store,
        Some(&stored),
        changed,
        vec![billing.clone(), unsubscribed.clone()],
        Vec::new(),
    )
    .await;

    let events = store.events(stored.id()).await.unwrap();
    assert_eq!(events, vec![opted_in, billing, unsubscribed]);
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let check = verify_chain(&events, stored.head());
    assert!(
        check.chain_valid,
        "the stored chain does not verify: {check:?}"
    );
}

async fn erasing_a_contact_removes_its_events_jobs_and_expiry_entries_and_leaves_a_tombstone(
    backend: Backend,
) {
    let store = backend.store;
    let now = Utc::now();
    let mut contact = new_contact(1, now);
    let event = set_status(&mut contact, NEWS, Status::OptedIn, now);
    add_pending(&mut contact, now - Duration::hours(1), now);
    let job = confirmation_job(&contact, now);
    let stored = save(&store, None, contact, vec![event], vec![job]).await;
    // A dead letter of the contact must go too.
    let dead = confirmation_job(&stored, now);
    let stored = save(
        &store,
        Some(&stored),
        stored.clone(),
        Vec::new(),
        vec![dead.clone()],
    )
    .await;
    store.dead_letter_job(&dead).await.unwrap();
    let (_, other_job) = contact_with_job(&store, 2, now).await;

    erase(&store, &stored, now).await;

    assert_eq!(store.load_contact(stored.id()).await.unwrap(), None);
    assert!(store.events(stored.id()).await.unwrap().is_empty());
    assert!(store
        .expired_pending(far_future(now), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.tombstone(stored.id()).await.unwrap(),
        Some(Tombstone {
            erased_at: now,
            reason: optin::domain::ErasureReason::Erasure,
            request_id: None,
            moved_to: None,
        })
    );
    assert!(store.dead_jobs(10).await.unwrap().is_empty());
    only_the_other_contacts_job_remains(&store, &other_job, now).await;
}

async fn an_erasure_removes_expiry_entries_even_when_the_change_does_not_list_them(
    backend: Backend,
) {
    let store = backend.store;
    let now = Utc::now();
    let mut contact = new_contact(1, now);
    add_pending(&mut contact, now - Duration::hours(1), now);
    add_pending(&mut contact, now + Duration::hours(1), now);
    let stored = save(&store, None, contact, Vec::new(), Vec::new()).await;

    // The store, not the caller, knows what it holds for the contact.
    let mut change = change_between(Some(&stored), None, Vec::new(), Vec::new(), &catalog());
    change.pending_removed.clear();
    store.apply(change).await.unwrap();

    assert!(store
        .expired_pending(far_future(now), 10)
        .await
        .unwrap()
        .is_empty());
}

async fn a_returning_contact_can_clear_its_tombstone(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let stored = save(&store, None, new_contact(1, now), Vec::new(), Vec::new()).await;
    erase(&store, &stored, now).await;
    assert!(store.tombstone(stored.id()).await.unwrap().is_some());

    let mut returning = new_contact(1, now);
    let event = set_status(&mut returning, NEWS, Status::OptedIn, now);
    let change = change_between(None, Some(returning), vec![event], Vec::new(), &catalog())
        .clearing_tombstone();
    store.apply(change).await.unwrap();

    assert_eq!(store.tombstone(stored.id()).await.unwrap(), None);
    let loaded = store.load_contact(stored.id()).await.unwrap().unwrap();
    assert_eq!(loaded.status(&type_id(NEWS)), Status::OptedIn);
    assert_eq!(
        store.events(stored.id()).await.unwrap().len(),
        1,
        "the erased history must not come back"
    );
}

async fn counters_follow_opt_in_unsubscribe_and_erasure_exactly(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let opted_in_news = counter::by_type(NEWS, Status::OptedIn);
    let unsubscribed_news = counter::by_type(NEWS, Status::Unsubscribed);
    let opted_in_billing = counter::by_type(BILLING, Status::OptedIn);
    // set_status opts in on consent: each opt-in is counted under its lawful basis too.
    let consent_news = counter::by_basis(NEWS, LawfulBasis::Consent);
    let consent_billing = counter::by_basis(BILLING, LawfulBasis::Consent);
    assert_eq!(counters(&store).await, counts(&[]));

    let mut alice = new_contact(1, now);
    let event = set_status(&mut alice, NEWS, Status::OptedIn, now);
    let alice = save(&store, None, alice, vec![event], Vec::new()).await;
    let mut bob = new_contact(2, now);
    let event = set_status(&mut bob, BILLING, Status::OptedIn, now);
    add_pending(&mut bob, now + Duration::days(1), now);
    let bob = save(&store, None, bob, vec![event], Vec::new()).await;
    assert_eq!(
        counters(&store).await,
        counts(&[
            (counter::CONTACTS, 2),
            (counter::MARKETING, 1),
            (counter::PENDING, 1),
            (&opted_in_news, 1),
            (&opted_in_billing, 1),
            (&consent_news, 1),
            (&consent_billing, 1)
        ])
    );

    let mut unsubscribed = alice.clone();
    let event = set_status(&mut unsubscribed, NEWS, Status::Unsubscribed, now);
    let alice = save(&store, Some(&alice), unsubscribed, vec![event], Vec::new()).await;
    assert_eq!(
        counters(&store).await,
        counts(&[
            (counter::CONTACTS, 2),
            (counter::PENDING, 1),
            (&unsubscribed_news, 1),
            (&opted_in_billing, 1),
            (&consent_billing, 1)
        ])
    );

    erase(&store, &bob, now).await;
    assert_eq!(
        counters(&store).await,
        counts(&[(counter::CONTACTS, 1), (&unsubscribed_news, 1)])
    );
    erase(&store, &alice, now).await;
    assert_eq!(counters(&store).await, counts(&[]));
}

async fn only_expired_confirmations_are_listed_and_removed_ones_are_forgotten(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let mut alice = new_contact(1, now);
    let alice_expired = add_pending(&mut alice, now - Duration::hours(1), now);
    let alice_later = add_pending(&mut alice, now + Duration::hours(1), now);
    let alice = save(&store, None, alice, Vec::new(), Vec::new()).await;
    let mut bob = new_contact(2, now);
    let bob_expired = add_pending(&mut bob, now - Duration::hours(2), now);
    save(&store, None, bob, Vec::new(), Vec::new()).await;

    let expired = store.expired_pending(now, 10).await.unwrap();
    assert_eq!(
        expired,
        vec![(contact_id(2), bob_expired), (contact_id(1), alice_expired)]
    );
    assert_eq!(
        store.expired_pending(now, 1).await.unwrap(),
        vec![(contact_id(2), bob_expired)]
    );
    assert_eq!(
        store
            .expired_pending(now - Duration::hours(3), 10)
            .await
            .unwrap(),
        vec![]
    );

    // Alice's expired signup is cleaned up: it must not be listed again.
    let cleaned = written(alice.clone().purge_pending(alice_expired));
    save(&store, Some(&alice), cleaned, Vec::new(), Vec::new()).await;
    assert_eq!(
        store.expired_pending(now, 10).await.unwrap(),
        vec![(contact_id(2), bob_expired)]
    );
    assert_eq!(
        store
            .expired_pending(now + Duration::hours(2), 10)
            .await
            .unwrap(),
        vec![(contact_id(2), bob_expired), (contact_id(1), alice_later)]
    );
}

async fn loading_many_contacts_keeps_the_order_asked_and_marks_missing_ones(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let ids: Vec<ContactId> = (0..2_500).map(contact_id).collect();
    let stored: BTreeSet<usize> = (0..2_500).filter(|n| n % 5 == 0 || *n == 2_499).collect();
    for n in &stored {
        save(&store, None, new_contact(*n, now), Vec::new(), Vec::new()).await;
    }

    let loaded = store.load_contacts(&ids).await.unwrap();

    assert_eq!(loaded.len(), ids.len());
    for (n, contact) in loaded.iter().enumerate() {
        match contact {
            Some(contact) => {
                assert!(stored.contains(&n), "entry {n} should be missing");
                assert_eq!(contact.id(), &ids[n], "entry {n} is another contact");
                assert_eq!(contact.email(), &address(n));
            }
            None => assert!(!stored.contains(&n), "entry {n} should be loaded"),
        }
    }
    assert!(store.load_contacts(&[]).await.unwrap().is_empty());
}

async fn a_claimed_job_is_hidden_until_its_lease_ends_and_is_then_taken_again(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let (_, job) = contact_with_job(&store, 1, now).await;
    let lease_until = now + Duration::seconds(60);

    assert_eq!(
        store.claim_job(now, lease_until).await.unwrap(),
        Some(job.clone())
    );
    assert_eq!(
        store.claim_job(now, lease_until).await.unwrap(),
        None,
        "a leased job was handed out twice"
    );
    assert_eq!(
        store
            .claim_job(lease_until - Duration::seconds(1), lease_until)
            .await
            .unwrap(),
        None
    );

    // The worker died: once the lease ends the job is taken again.
    let after_lease = lease_until + Duration::seconds(1);
    let again = store
        .claim_job(after_lease, after_lease + Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(again.map(|j| j.id), Some(job.id));
}

async fn a_completed_job_is_never_claimed_again(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let (_, job) = contact_with_job(&store, 1, now).await;
    let claimed = claim_due(&store, now).await.unwrap();

    store.complete_job(&claimed).await.unwrap();

    assert_nothing_claimable(&store, now).await;
    assert_depth(&store, 0, 0).await;
    store
        .complete_job(&job)
        .await
        .expect("completing a job twice is not an error");
}

async fn a_job_retried_later_keeps_its_attempts_and_error_and_waits_until_due(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    contact_with_job(&store, 1, now).await;
    let mut job = claim_due(&store, now).await.unwrap();
    job.attempts = 1;
    job.last_error = Some("451 try again later".into());
    let due = now + Duration::minutes(5);

    store.retry_job_later(&job, due).await.unwrap();

    let before_due = due - Duration::seconds(1);
    assert_eq!(claim_due(&store, before_due).await, None);
    let retried = claim_due(&store, due).await.unwrap();
    assert_eq!(retried, job);
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.last_error.as_deref(), Some("451 try again later"));
}

async fn a_dead_letter_is_listed_not_claimable_and_revived_with_zero_attempts(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    contact_with_job(&store, 1, now).await;
    let mut job = claim_due(&store, now).await.unwrap();
    job.attempts = 5;
    job.last_error = Some("550 mailbox unavailable".into());

    store.dead_letter_job(&job).await.unwrap();

    assert_eq!(store.dead_jobs(10).await.unwrap(), vec![job.clone()]);
    assert_nothing_claimable(&store, now).await;
    assert_depth(&store, 0, 1).await;

    assert!(store.revive_dead_job(job.id, now).await.unwrap());
    assert!(store.dead_jobs(10).await.unwrap().is_empty());
    let revived = claim_due(&store, now).await.unwrap();
    assert_eq!(revived.id, job.id);
    assert_eq!(revived.attempts, 0);

    assert!(
        !store.revive_dead_job(job.id, now).await.unwrap(),
        "a job that is not dead cannot be revived"
    );
    assert!(!store.revive_dead_job(Uuid::new_v4(), now).await.unwrap());
}

/// The order the trait promises: by the job's creation time (to the millisecond), then by
/// job id; not by when, or on which shard, a job died.
async fn dead_letters_are_listed_oldest_job_first_whatever_order_they_died_in(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let at = |seconds_ago: i64| now - Duration::seconds(seconds_ago);
    // Made in this order, so job ids (time-ordered) disagree with the creation times.
    let mut jobs = Vec::new();
    for (n, created) in [(1, at(1)), (2, at(3)), (3, at(2)), (4, at(5)), (5, at(5))] {
        let (_, job) = contact_with_job(&store, n, created).await;
        jobs.push(job);
    }
    let [one, three, two, tied_a, tied_b] = <[OutboxJob; 5]>::try_from(jobs).unwrap();
    for job in [&two, &one, &tied_b, &three, &tied_a] {
        store.dead_letter_job(job).await.unwrap();
    }
    let (first_tied, second_tied) = if tied_a.id < tied_b.id {
        (tied_a, tied_b)
    } else {
        (tied_b, tied_a)
    };

    assert_eq!(
        store.dead_jobs(10).await.unwrap(),
        vec![
            first_tied.clone(),
            second_tied.clone(),
            three.clone(),
            two.clone(),
            one.clone()
        ]
    );
    assert_eq!(
        store.dead_jobs(3).await.unwrap(),
        vec![first_tied, second_tied, three],
        "a shorter page is the start of the same order"
    );
}

async fn two_workers_claiming_at_once_never_get_the_same_job(backend: Backend) {
    let now = Utc::now();
    let mut all = BTreeSet::new();
    for n in 0..40 {
        let (_, job) = contact_with_job(&backend.store, n, now).await;
        all.insert(job.id);
    }

    let worker = |store: SharedStore| tokio::spawn(async move { claim_all(&store, now).await });
    let first = worker(backend.store.clone());
    let second = worker(backend.second.clone());
    let first: Vec<Uuid> = first.await.unwrap().iter().map(|j| j.id).collect();
    let second: Vec<Uuid> = second.await.unwrap().iter().map(|j| j.id).collect();

    let mut claimed = BTreeSet::new();
    for id in first.iter().chain(&second) {
        assert!(claimed.insert(*id), "job {id} was claimed twice");
    }
    assert_eq!(claimed, all, "every job is claimed exactly once");
}

async fn outbox_depth_counts_queued_and_dead_jobs(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    assert_depth(&store, 0, 0).await;
    for n in 0..3 {
        contact_with_job(&store, n, now).await;
    }
    assert_depth(&store, 3, 0).await;

    let doomed = claim_due(&store, now).await.unwrap();
    store.dead_letter_job(&doomed).await.unwrap();
    assert_depth(&store, 2, 1).await;

    let sent = claim_due(&store, now).await.unwrap();
    store.complete_job(&sent).await.unwrap();
    assert_depth(&store, 1, 1).await;
}

async fn retrying_or_dead_lettering_an_erased_job_does_not_bring_it_back(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let (contact, _) = contact_with_job(&store, 1, now).await;
    let mut job = claim_due(&store, now).await.unwrap();
    // The person is erased while their mail is being sent.
    erase(&store, &contact, now).await;
    job.attempts = 1;

    store.retry_job_later(&job, now).await.unwrap();
    store.dead_letter_job(&job).await.unwrap();

    assert_depth(&store, 0, 0).await;
    assert_nothing_claimable(&store, now).await;
    assert!(store.dead_jobs(10).await.unwrap().is_empty());
    assert!(!store.revive_dead_job(job.id, now).await.unwrap());
}

async fn the_retention_index_lists_contacts_without_an_opt_in_longest_inactive_first(
    backend: Backend,
) {
    let store = backend.store;
    let now = Utc::now();
    let month_ago = now - Duration::days(30);
    let mut alice = new_contact(1, month_ago);
    let event = set_status(&mut alice, NEWS, Status::OptedIn, month_ago);
    save(&store, None, alice, vec![event], Vec::new()).await;
    let mut bob = new_contact(2, month_ago);
    let opted_in = set_status(&mut bob, NEWS, Status::OptedIn, month_ago);
    let unsubscribed = set_status(
        &mut bob,
        NEWS,
        Status::Unsubscribed,
        now - Duration::days(10),
    );
    let bob = save(&store, None, bob, vec![opted_in, unsubscribed], Vec::new()).await;
    let mut carol = new_contact(3, month_ago);
    let event = set_status(
        &mut carol,
        BILLING,
        Status::Unsubscribed,
        now - Duration::days(5),
    );
    let carol = save(&store, None, carol, vec![event], Vec::new()).await;
    let mut dave = new_contact(4, month_ago);
    add_pending(&mut dave, now + Duration::days(1), month_ago);
    save(&store, None, dave, Vec::new(), Vec::new()).await;

    assert_eq!(
        store.inactive_contacts(now, 10).await.unwrap(),
        vec![bob.id().clone(), carol.id().clone()]
    );
    assert_eq!(
        store.inactive_contacts(now, 1).await.unwrap(),
        vec![bob.id().clone()]
    );
    assert_eq!(
        store
            .inactive_contacts(now - Duration::days(7), 10)
            .await
            .unwrap(),
        vec![bob.id().clone()]
    );
    assert_eq!(
        store
            .inactive_contacts(now - Duration::days(10), 10)
            .await
            .unwrap(),
        vec![],
        "only contacts inactive since before the cutoff"
    );

    let mut back = bob.clone();
    let event = set_status(&mut back, NEWS, Status::OptedIn, now);
    save(&store, Some(&bob), back, vec![event], Vec::new()).await;
    erase(&store, &carol, now).await;
    assert_eq!(store.inactive_contacts(now, 10).await.unwrap(), vec![]);
}

async fn hits_are_counted_per_key_and_start_over_in_the_next_window(backend: Backend) {
    let store = backend.store;
    // A multiple of 60 s: the start of a window.
    let window_start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();

    assert_eq!(
        store
            .count_hit("signup-ip:a", 60, window_start)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_hit("signup-ip:a", 60, window_start + Duration::seconds(1))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_hit("signup-ip:b", 60, window_start)
            .await
            .unwrap(),
        1,
        "another key counts apart"
    );
    assert_eq!(
        store
            .count_hit("signup-ip:a", 60, window_start + Duration::seconds(59))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .count_hit("signup-ip:a", 60, window_start + Duration::seconds(60))
            .await
            .unwrap(),
        1,
        "a new window starts from zero"
    );
}

async fn a_hit_given_back_counts_down_in_its_own_window_only_and_never_below_zero(
    backend: Backend,
) {
    let (store, second) = (backend.store, backend.second);
    let window_start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let count = |key: &'static str| {
        let store = store.clone();
        async move { store.count_hit(key, 60, window_start).await.unwrap() }
    };
    let give_back = |key: &'static str, at: DateTime<Utc>| {
        let second = second.clone();
        async move {
            second
                .give_back_hit(key, HitWindow { secs: 60, at })
                .await
                .unwrap();
        }
    };
    assert_eq!(count("burst:a").await, 1);
    assert_eq!(count("burst:a").await, 2);
    give_back("burst:a", window_start + Duration::seconds(30)).await;
    assert_eq!(count("burst:a").await, 2, "given back in its window");
    give_back("burst:a", window_start - Duration::seconds(30)).await;
    assert_eq!(
        count("burst:a").await,
        3,
        "a window gone gives nothing back"
    );
    for _ in 0..5 {
        give_back("burst:a", window_start).await;
    }
    assert_eq!(count("burst:a").await, 1, "never below zero");
    give_back("burst:never", window_start).await;
    assert_eq!(
        count("burst:never").await,
        1,
        "nothing to give back is no error"
    );
}

async fn a_key_is_spent_once_for_every_handle_and_is_gone_after_its_expiry(backend: Backend) {
    let (store, second) = (backend.store, backend.second);
    // Redis expires by its own clock: the times are real ones.
    let now = Utc::now();
    let later = now + Duration::minutes(5);

    assert!(store.spend_once("altcha:a", later, now).await.unwrap());
    assert!(
        !store.spend_once("altcha:a", later, now).await.unwrap(),
        "spent once"
    );
    assert!(
        !second.spend_once("altcha:a", later, now).await.unwrap(),
        "another handle (another instance) sees it spent too"
    );
    assert!(
        second.spend_once("altcha:b", later, now).await.unwrap(),
        "another key is spent apart"
    );

    // A record whose expiry has passed is gone: the key can be spent again (and again).
    let past = now - Duration::seconds(1);
    assert!(store.spend_once("altcha:c", past, now).await.unwrap());
    assert!(store.spend_once("altcha:c", past, now).await.unwrap());

    // Many at once: exactly one wins.
    let attempts = (0..16).map(|n| {
        let store = if n % 2 == 0 {
            store.clone()
        } else {
            second.clone()
        };
        tokio::spawn(async move { store.spend_once("altcha:d", later, now).await.unwrap() })
    });
    let mut won = 0;
    for attempt in attempts {
        if attempt.await.unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one of the rivals spends it");
}

// ---------------------------------------------------------------------------------------
// What only the embedded store has to promise: files written by earlier versions open.

mod embedded_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_written_before_the_index_by_contact_existed_are_still_erased() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optin.redb");
        let now = Utc::now();
        let (erased, other_job) = {
            let store: SharedStore = Arc::new(EmbeddedStore::open(&path).unwrap());
            let (erased, _) = contact_with_job(&store, 1, now).await;
            let (_, other_job) = contact_with_job(&store, 2, now).await;
            (erased, other_job)
        };
        // What a file from before the index looks like: the same data, no such table.
        {
            let db = redb::Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            let index: redb::TableDefinition<(&str, &str), ()> =
                redb::TableDefinition::new("jobs_by_contact");
            assert!(
                txn.delete_table(index).unwrap(),
                "the store keeps an index of jobs by contact"
            );
            txn.commit().unwrap();
        }

        let store: SharedStore = Arc::new(EmbeddedStore::open(&path).unwrap());
        erase(&store, &erased, now).await;

        only_the_other_contacts_job_remains(&store, &other_job, now).await;
    }
}

// ---------------------------------------------------------------------------------------
// What only the Redis store has to promise: where its keys go, and how it behaves while
// Redis is down.

mod redis_only {
    use std::time::{Duration as StdDuration, Instant};

    use super::*;

    /// How long any store call may take while Redis is unreachable.
    const FAIL_FAST: StdDuration = StdDuration::from_millis(2_500);

    /// Polls until a call that touches every shard (so every node) answers, for at most
    /// `within`; the last error when it never does.
    /// Sends a signal (`-STOP`, `-CONT`) to a test Redis, to stall it and let it go on.
    fn send_signal(pid: u32, name: &str) {
        let status = std::process::Command::new("kill")
            .args([name, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {name} failed");
    }

    async fn answers_again(store: &SharedStore, within: StdDuration) -> Result<(), StoreError> {
        let deadline = Instant::now() + within;
        loop {
            match store.counters().await {
                Ok(_) => return Ok(()),
                Err(error) if Instant::now() >= deadline => return Err(error),
                Err(_) => tokio::time::sleep(StdDuration::from_millis(100)).await,
            }
        }
    }

    async fn fails_fast<T: std::fmt::Debug>(
        what: &str,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) {
        let started = Instant::now();
        let result = call.await;
        let took = started.elapsed();
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{what} answered {result:?} while Redis was down"
        );
        assert!(
            took < FAIL_FAST,
            "{what} took {took:?} to fail while Redis was down"
        );
    }

    /// Earlier releases kept a contact as a hash `{v: version, d: JSON}` and its events
    /// as JSON. Such a store must read as before, take new changes, and be rewritten in
    /// the compact form contact by contact, with its hash chain intact.
    #[tokio::test]
    async fn a_store_written_by_an_earlier_release_reads_and_is_rewritten_compactly() {
        let server = RedisServer::start();
        let store: SharedStore = Arc::new(RedisStore::connect(&server.url).await.unwrap());
        let now = Utc::now();
        let mut contact = new_contact(1, now);
        let opted_in = set_status(&mut contact, NEWS, Status::OptedIn, now);
        let stored = save(&store, None, contact, vec![opted_in.clone()], Vec::new()).await;
        let shard_tag = format!(
            "optin:{{s{}}}",
            stored.id().bucket(optin::store::redis::SHARDS)
        );
        let contact_key = format!("{shard_tag}:c:{}", stored.id());
        let events_key = format!("{shard_tag}:ev:{}", stored.id());
        let mut redis = server.connection();
        let compact: Vec<u8> = ::redis::cmd("GET")
            .arg(&contact_key)
            .query(&mut redis)
            .unwrap();
        assert!(
            compact.starts_with(format!("{}:\u{1}", stored.version()).as_bytes()),
            "a contact is written as '<version>:' and a compact value"
        );

        // The same contact and event, the way an earlier release wrote them.
        let _: () = ::redis::pipe()
            .cmd("DEL")
            .arg(&contact_key)
            .arg(&events_key)
            .ignore()
            .cmd("HSET")
            .arg(&contact_key)
            .arg("v")
            .arg(stored.version())
            .arg("d")
            .arg(serde_json::to_vec(&stored).unwrap())
            .ignore()
            .cmd("RPUSH")
            .arg(&events_key)
            .arg(serde_json::to_vec(&opted_in).unwrap())
            .ignore()
            .query(&mut redis)
            .unwrap();
        assert_eq!(
            store.load_contact(stored.id()).await.unwrap(),
            Some(stored.clone())
        );
        assert_eq!(
            store
                .load_contacts(&[contact_id(2), stored.id().clone()])
                .await
                .unwrap(),
            vec![None, Some(stored.clone())],
            "a batch read mixes old and missing contacts in the order asked"
        );

        let mut changed = stored.clone();
        let unsubscribed = set_status(
            &mut changed,
            NEWS,
            Status::Unsubscribed,
            now + Duration::seconds(1),
        );
        let changed = save(
            &store,
            Some(&stored),
            changed,
            vec![unsubscribed.clone()],
            Vec::new(),
        )
        .await;

        let kind: String = ::redis::cmd("TYPE")
            .arg(&contact_key)
            .query(&mut redis)
            .unwrap();
        assert_eq!(kind, "string", "the write replaced the old hash");
        let kind: String = ::redis::cmd("TYPE")
            .arg(&events_key)
            .query(&mut redis)
            .unwrap();
        assert_eq!(kind, "string", "the write replaced the old event list");
        let log: Vec<u8> = ::redis::cmd("GET")
            .arg(&events_key)
            .query(&mut redis)
            .unwrap();
        let raw_events = redis_server::event_log_frames(&log);
        assert_eq!(raw_events.len(), 2);
        assert_eq!(
            raw_events[0].first(),
            Some(&b'{'),
            "the old event stays as it was"
        );
        assert_eq!(
            raw_events[1].first(),
            Some(&1u8),
            "the new event is compact"
        );
        let events = store.events(stored.id()).await.unwrap();
        assert_eq!(events, vec![opted_in, unsubscribed]);
        assert!(verify_chain(&events, changed.head()).chain_valid);

        // A stale writer that read the old hash is still refused.
        let mut stale = stored.clone();
        let again = set_status(&mut stale, BILLING, Status::OptedIn, now);
        let refused = store
            .apply(change_between(
                Some(&stored),
                Some(stale),
                vec![again],
                Vec::new(),
                &catalog(),
            ))
            .await;
        assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
    }

    #[tokio::test]
    async fn redis_keys_hold_no_address_and_all_keys_of_a_contact_share_its_shard_tag() {
        let server = RedisServer::start();
        let store: SharedStore = Arc::new(RedisStore::connect(&server.url).await.unwrap());
        let now = Utc::now();
        let mut contact = new_contact(1, now);
        let event = set_status(&mut contact, NEWS, Status::OptedIn, now);
        add_pending(&mut contact, now + Duration::days(1), now);
        let job = confirmation_job(&contact, now);
        let stored = save(&store, None, contact, vec![event], vec![job]).await;
        erase(&store, &stored, now).await;
        let mut returning = new_contact(1, now);
        let event = set_status(&mut returning, NEWS, Status::OptedIn, now);
        add_pending(&mut returning, now + Duration::days(1), now);
        let job = confirmation_job(&returning, now);
        let change = change_between(
            None,
            Some(returning),
            vec![event],
            vec![job.clone()],
            &catalog(),
        );
        store
            .apply(with_member_index(change, Some(K1), None))
            .await
            .unwrap();
        store.dead_letter_job(&job).await.unwrap();

        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg("*")
            .query(&mut server.connection())
            .unwrap();
        let tag = format!(
            "optin:{{s{}}}:",
            stored.id().bucket(optin::store::redis::SHARDS)
        );
        assert!(
            keys.len() >= 9,
            "expected contact, events, tombstone, jobs, queue, dead, exp, stats and member index keys: {keys:?}"
        );
        for key in &keys {
            assert!(
                key.starts_with(&tag),
                "{key} is not in the contact's slot {tag}"
            );
            assert!(
                !key.contains('@') && !key.contains("person1"),
                "{key} holds the address"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_redis_fails_fast_and_works_again_once_restarted() {
        let mut server = RedisServer::start();
        let store: SharedStore = Arc::new(RedisStore::connect(&server.url).await.unwrap());
        let now = Utc::now();
        let stored = save(&store, None, new_contact(1, now), Vec::new(), Vec::new()).await;

        server.stop();
        fails_fast("ping", store.ping()).await;
        fails_fast("load_contact", store.load_contact(stored.id())).await;
        fails_fast("counters", store.counters()).await;
        fails_fast("claim_job", store.claim_job(now, now)).await;
        let change = change_between(
            None,
            Some(new_contact(2, now)),
            Vec::new(),
            Vec::new(),
            &catalog(),
        );
        fails_fast("apply", store.apply(change)).await;

        server.restart();
        answers_again(&store, StdDuration::from_secs(10))
            .await
            .expect("the store reconnects once Redis is back");
        // The restarted server kept nothing (no persistence in tests); writes work again.
        let again = save(&store, None, new_contact(1, now), Vec::new(), Vec::new()).await;
        assert_eq!(store.load_contact(again.id()).await.unwrap(), Some(again));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_redis_fails_fast_and_works_again_once_it_resumes() {
        let server = RedisServer::start();
        let store: SharedStore = Arc::new(RedisStore::connect(&server.url).await.unwrap());
        let now = Utc::now();
        let stored = save(&store, None, new_contact(1, now), Vec::new(), Vec::new()).await;
        let signal = |name: &str| send_signal(server.pid(), name);
        signal("-STOP");
        fails_fast("load_contact", store.load_contact(stored.id())).await;
        fails_fast("counters", store.counters()).await;
        signal("-CONT");

        answers_again(&store, StdDuration::from_secs(10))
            .await
            .expect("the store recovers once Redis resumes");
        assert_eq!(store.load_contact(stored.id()).await.unwrap(), Some(stored));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cluster_with_a_stalled_node_fails_fast_and_works_again_once_it_resumes() {
        let cluster = RedisCluster::start();
        let store: SharedStore = Arc::new(RedisStore::connect(&cluster.url).await.unwrap());
        let now = Utc::now();
        let ids: Vec<ContactId> = (0..50).map(contact_id).collect();
        for n in 0..50 {
            save(&store, None, new_contact(n, now), Vec::new(), Vec::new()).await;
        }
        let signal = |name: &str| send_signal(cluster.nodes[1].pid(), name);

        signal("-STOP");
        // Long enough, at several failed calls, for the silent connection to be replaced
        // while the node still does not answer: the new one must fail as fast.
        let stalled_until = Instant::now() + StdDuration::from_secs(5);
        while Instant::now() < stalled_until {
            fails_fast("counters", store.counters()).await;
        }
        fails_fast("load_contacts", store.load_contacts(&ids)).await;
        signal("-CONT");

        answers_again(&store, StdDuration::from_secs(5))
            .await
            .expect("the cluster store answers again once the node resumes");
        let loaded = store.load_contacts(&ids).await.unwrap();
        assert!(loaded.iter().all(Option::is_some), "a stall loses nothing");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cluster_with_a_stopped_node_fails_fast_and_works_again_once_it_is_back() {
        let mut cluster = RedisCluster::start();
        let store: SharedStore = Arc::new(RedisStore::connect(&cluster.url).await.unwrap());
        let now = Utc::now();
        let ids: Vec<ContactId> = (0..50).map(contact_id).collect();
        for n in 0..50 {
            save(&store, None, new_contact(n, now), Vec::new(), Vec::new()).await;
        }

        cluster.nodes[1].stop();
        // Every shard is asked, so these touch the stopped node.
        fails_fast("counters", store.counters()).await;
        fails_fast("load_contacts", store.load_contacts(&ids)).await;
        fails_fast("outbox_depth", store.outbox_depth()).await;

        cluster.nodes[1].restart();
        // The cluster's own recovery is not the store's to speed up; once the cluster
        // serves every slot again, the store must follow promptly.
        cluster.wait_until_ok(StdDuration::from_secs(30));
        answers_again(&store, StdDuration::from_secs(5))
            .await
            .expect("the cluster store reconnects once the node is back");
        let loaded = store.load_contacts(&ids).await.unwrap();
        // The restarted node lost its data; the others kept theirs, and nothing fails.
        assert!(loaded.iter().any(Option::is_some));
        let mut again = new_contact(1000, now);
        let event = set_status(&mut again, NEWS, Status::OptedIn, now);
        let again = save(&store, None, again, vec![event], Vec::new()).await;
        assert_eq!(store.events(again.id()).await.unwrap().len(), 1);
    }
}

fn webhook_job(owner: &ContactId, endpoint: &str, now: DateTime<Utc>) -> OutboxJob {
    let task = WebhookTask {
        endpoint: endpoint.into(),
        event_type: "subscription.opted_in".into(),
        body: "{}".into(),
    };
    OutboxJob::webhook(owner.clone(), task, now)
}

async fn webhook_jobs_are_counted_per_endpoint_and_a_contacts_jobs_are_listed(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let contact = new_contact(1, now);
    let mail = confirmation_job(&contact, now);
    let to_crm = webhook_job(contact.id(), "crm", now);
    let to_warehouse = webhook_job(contact.id(), "warehouse", now);
    let jobs = vec![mail.clone(), to_crm.clone(), to_warehouse.clone()];
    save(&store, None, contact.clone(), Vec::new(), jobs).await;
    let test = webhook_job(&ContactId::for_test_delivery(), "crm", now);
    store.queue_job(&test).await.unwrap();

    let backlog = store.webhook_backlog().await.unwrap();
    assert_eq!(backlog["crm"], OutboxDepth { queued: 2, dead: 0 });
    assert_eq!(backlog["warehouse"], OutboxDepth { queued: 1, dead: 0 });
    assert_eq!(backlog.len(), 2, "mail jobs are not webhook backlog");
    let mut listed: Vec<Uuid> = store
        .contact_jobs(contact.id())
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    listed.sort();
    let mut expected = vec![mail.id, to_crm.id, to_warehouse.id];
    expected.sort();
    assert_eq!(
        listed, expected,
        "the contact's jobs, not the test delivery"
    );

    // The test delivery is claimable like any job, and can die like one.
    let mut claimed = Vec::new();
    while let Some(job) = store
        .claim_job(now, now + Duration::seconds(60))
        .await
        .unwrap()
    {
        claimed.push(job);
    }
    assert_eq!(claimed.len(), 4);
    let claimed_test = claimed.iter().find(|j| j.id == test.id).expect("claimed");
    assert_eq!(claimed_test, &test);
    store.dead_letter_job(claimed_test).await.unwrap();
    let backlog = store.webhook_backlog().await.unwrap();
    assert_eq!(backlog["crm"], OutboxDepth { queued: 1, dead: 1 });
}

async fn an_endpoints_state_records_each_attempt_and_only_enable_clears_a_410(backend: Backend) {
    let (store, second) = (backend.store, backend.second);
    // Stored to the millisecond.
    let at = |s: i64| DateTime::from_timestamp_millis(1_767_225_600_000 + s * 1000).unwrap();
    assert_eq!(
        store.endpoint_state("crm").await.unwrap(),
        EndpointState::default()
    );

    store
        .record_endpoint_attempt("crm", EndpointAttempt::Delivered { status: 200 }, at(1))
        .await
        .unwrap();
    store
        .record_endpoint_attempt("crm", EndpointAttempt::Failed { status: None }, at(2))
        .await
        .unwrap();
    assert_eq!(
        second.endpoint_state("crm").await.unwrap(),
        EndpointState {
            disabled_at: None,
            last_success_at: Some(at(1)),
            last_failure_at: Some(at(2)),
            last_status: None,
        }
    );
    store
        .record_endpoint_attempt("crm", EndpointAttempt::Gone, at(3))
        .await
        .unwrap();
    // A success recorded after the 410 (an attempt that was already under way) does not
    // enable the endpoint again.
    second
        .record_endpoint_attempt("crm", EndpointAttempt::Delivered { status: 204 }, at(4))
        .await
        .unwrap();
    let state = store.endpoint_state("crm").await.unwrap();
    assert_eq!(state.disabled_at, Some(at(3)));
    assert_eq!(state.last_success_at, Some(at(4)));
    assert_eq!(state.last_status, Some(204));
    assert_eq!(
        store.endpoint_state("other").await.unwrap(),
        EndpointState::default()
    );

    second.enable_endpoint("crm").await.unwrap();
    let state = store.endpoint_state("crm").await.unwrap();
    assert_eq!(state.disabled_at, None);
    assert_eq!(state.last_failure_at, Some(at(3)), "the history stays");
}

/// A change whose member index entry is `set` and/or `remove` (the service derives the
/// keys; the store only keeps them with the change).
fn with_member_index(
    mut change: ContactChange,
    set: Option<&str>,
    remove: Option<&str>,
) -> ContactChange {
    change.member_index = optin::domain::MemberIndexChange {
        set: set.map(str::to_string),
        remove: remove.map(str::to_string),
    };
    change
}

/// A walk over all contacts in pages, and index entries written only at the version read.
async fn a_walk_finds_every_contact_and_index_entries_are_written_only_at_the_version_read(
    backend: Backend,
) {
    let store = backend.store;
    let now = Utc::now();
    let mut stored = BTreeSet::new();
    for n in 0..450 {
        stored.insert(
            save(&store, None, new_contact(n, now), vec![], vec![])
                .await
                .id()
                .clone(),
        );
    }
    let (mut walked, mut cursor, mut pages) = (BTreeSet::new(), None, 0);
    loop {
        let page = store.contact_ids_page(cursor, 100).await.unwrap();
        walked.extend(page.ids);
        pages += 1;
        assert!(pages < 1_000, "the walk ends");
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(walked, stored, "every contact, and nothing else");
    assert!(pages > 1, "in more than one page");

    let first = store.load_contact(&contact_id(1)).await.unwrap().unwrap();
    assert!(!store
        .index_member(first.id(), first.version() + 1, K1)
        .await
        .unwrap());
    assert_eq!(
        store.find_member(K1).await.unwrap(),
        None,
        "not at another version"
    );
    assert!(store
        .index_member(first.id(), first.version(), K1)
        .await
        .unwrap());
    assert_eq!(
        store.find_member(K1).await.unwrap(),
        Some(first.id().clone())
    );
    assert!(!store.index_member(&contact_id(9_999), 1, K2).await.unwrap());
    assert_eq!(
        store.find_member(K2).await.unwrap(),
        None,
        "not for a missing contact"
    );

    // The erasure that follows drops the entry the walk wrote.
    let gone = change_between(Some(&first), None, vec![], vec![], &catalog());
    store
        .apply(with_member_index(gone, None, Some(K1)))
        .await
        .unwrap();
    assert_eq!(store.find_member(K1).await.unwrap(), None);
}

/// Member keys as the service makes them (32 hex digits), in different index hashes.
const K1: &str = "1f0e0d0c0b0a09080706050403020100";
const K2: &str = "2f0e0d0c0b0a09080706050403020100";
const K3: &str = "3f0e0d0c0b0a09080706050403020100";

async fn the_member_index_follows_the_changes_that_set_and_drop_it(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    assert_eq!(store.find_member(K1).await.unwrap(), None);

    let first = new_contact(1, now);
    let create = change_between(None, Some(first.clone()), vec![], vec![], &catalog());
    store
        .apply(with_member_index(create, Some(K1), None))
        .await
        .unwrap();
    assert_eq!(
        backend.second.find_member(K1).await.unwrap(),
        Some(first.id().clone())
    );
    let second = new_contact(2, now);
    let create = change_between(None, Some(second.clone()), vec![], vec![], &catalog());
    store
        .apply(with_member_index(create, Some(K2), None))
        .await
        .unwrap();

    // A refused change leaves no entry behind: the entry is written with the change.
    let stale = change_between(None, Some(new_contact(3, now)), vec![], vec![], &catalog());
    let mut stale = with_member_index(stale, Some(K3), None);
    stale.expected_version = 7;
    assert!(matches!(
        store.apply(stale).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.find_member(K3).await.unwrap(), None);

    // Removing an entry that names another contact leaves it alone.
    let stored = store.load_contact(first.id()).await.unwrap().unwrap();
    let mut later = stored.clone();
    set_status(&mut later, NEWS, Status::OptedIn, now);
    let change = change_between(Some(&stored), Some(later), vec![], vec![], &catalog());
    store
        .apply(with_member_index(change, None, Some(K2)))
        .await
        .unwrap();
    assert_eq!(
        store.find_member(K2).await.unwrap(),
        Some(second.id().clone())
    );

    // An erasure drops its own entry.
    let stored = store.load_contact(first.id()).await.unwrap().unwrap();
    let gone = change_between(Some(&stored), None, vec![], vec![], &catalog());
    store
        .apply(with_member_index(gone, None, Some(K1)))
        .await
        .unwrap();
    assert_eq!(store.find_member(K1).await.unwrap(), None);
    assert_eq!(
        store.find_member(K2).await.unwrap(),
        Some(second.id().clone())
    );
}

// ---------------------------------------------------------------------------------------
// Backups: the view every dump reads, and the writes every restore makes.

/// Every contact of a view, walked in pages of `limit`.
async fn view_contacts(store: &SharedStore, limit: usize) -> Vec<ContactRecord> {
    let view = store.backup_view().await.unwrap();
    let (mut all, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = view.contacts(cursor, limit).await.unwrap();
        all.extend(page.items.into_iter().map(|read| read.expect("readable")));
        pages += 1;
        assert!(pages < 10_000, "the walk ends");
        match page.next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

/// Every item of one kind of a view, walked in pages of 2.
macro_rules! view_all {
    ($view:expr, $kind:ident) => {{
        let (mut all, mut cursor) = (Vec::new(), None);
        loop {
            let page = $view.$kind(cursor, 2).await.unwrap();
            all.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break all,
            }
        }
    }};
}

/// A contact as a dump holds it: version 7, two events, a pending confirmation.
fn dumped_contact(n: usize, now: DateTime<Utc>) -> (Contact, Vec<Event>) {
    let mut contact = new_contact(n, now);
    let first = set_status(&mut contact, NEWS, Status::OptedIn, now);
    let second = set_status(&mut contact, BILLING, Status::Unsubscribed, now);
    add_pending(&mut contact, now + Duration::days(3), now);
    (contact.with_version(7), vec![first, second])
}

/// The change a restore writes for a dumped contact (see `backup::restore`).
fn restore_change(contact: &Contact, events: Vec<Event>, member_key: &str) -> ContactChange {
    let mut change = change_between(None, Some(contact.clone()), events, vec![], &catalog());
    change.write = optin::domain::ContactWrite::Put(contact.clone());
    with_member_index(change, Some(member_key), None)
}

fn millisecond(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap()
}

async fn a_restore_writes_every_kind_of_record_as_it_was_and_a_view_reads_it_back(
    backend: Backend,
) {
    let store = backend.store;
    // Stores keep times of jobs and allowances to the millisecond.
    let now = millisecond(Utc::now());
    let (contact, events) = dumped_contact(1, now);
    let tombstone = Tombstone {
        erased_at: now - Duration::days(1),
        reason: optin::domain::ErasureReason::Retention,
        request_id: Some("req-1".into()),
        moved_to: None,
    };
    let allowance = MailAllowance {
        contact_id: contact.id().clone(),
        taken_at: vec![now - Duration::hours(2), now - Duration::hours(1)],
    };
    let mut queued = confirmation_job(&contact, now - Duration::minutes(5));
    queued.attempts = 2;
    queued.last_error = Some("451 try later".into());
    let mut dead = webhook_job(contact.id(), "crm", now - Duration::minutes(9));
    dead.attempts = 10;
    let test_delivery = webhook_job(&ContactId::for_test_delivery(), "crm", now);
    let state = EndpointState {
        disabled_at: Some(now - Duration::minutes(3)),
        last_success_at: Some(now - Duration::hours(5)),
        last_failure_at: Some(now - Duration::minutes(3)),
        last_status: Some(410),
    };
    let due = now + Duration::minutes(30);
    let jobs = vec![
        JobRecord {
            job: queued.clone(),
            state: JobState::Queued { due },
        },
        JobRecord {
            job: dead.clone(),
            state: JobState::Dead,
        },
        JobRecord {
            job: test_delivery.clone(),
            state: JobState::Queued { due: now },
        },
    ];
    store
        .restore(RestoreBatch {
            contacts: vec![restore_change(&contact, events.clone(), K1)],
            tombstones: vec![(contact_id(2), tombstone.clone())],
            mail_allowances: vec![(allowance.clone(), now + Duration::hours(23))],
            jobs: jobs.clone(),
            endpoint_states: vec![("crm".into(), state.clone())],
        })
        .await
        .unwrap();

    // The service's own reads see it all, as it was.
    let stored = backend.second.load_contact(contact.id()).await.unwrap();
    assert_eq!(stored.as_ref(), Some(&contact), "its own version, not 1");
    assert_eq!(backend.second.events(contact.id()).await.unwrap(), events);
    assert!(verify_chain(&events, contact.head()).chain_valid);
    assert_eq!(
        backend.second.tombstone(&contact_id(2)).await.unwrap(),
        Some(tombstone.clone())
    );
    assert_eq!(backend.second.endpoint_state("crm").await.unwrap(), state);
    assert_eq!(
        backend.second.dead_jobs(10).await.unwrap(),
        vec![dead.clone()]
    );
    assert_depth(&store, 2, 1).await;
    assert_eq!(
        claim_due(&store, now).await.map(|j| j.id),
        Some(test_delivery.id),
        "due now"
    );
    assert_eq!(
        claim_due(&store, now).await,
        None,
        "the other waits until due"
    );
    store.complete_job(&test_delivery).await.unwrap();
    assert_eq!(claim_due(&store, due).await, Some(queued.clone()));
    // Two mails taken in the window: the third of a cap of three is the last.
    let id = contact.id();
    assert!(store.take_mail_allowance(id, 3, 86_400, now).await.unwrap());
    assert!(!store.take_mail_allowance(id, 3, 86_400, now).await.unwrap());

    // And a view reads every record back.
    let view = backend.second.backup_view().await.unwrap();
    let records = view_contacts(&backend.second, 10).await;
    assert_eq!(
        records,
        vec![ContactRecord {
            contact: contact.clone(),
            events
        }]
    );
    assert_eq!(
        view_all!(view, tombstones),
        vec![(contact_id(2), tombstone)]
    );
    let mut read_jobs: Vec<JobRecord> = view_all!(view, jobs);
    read_jobs.sort_by_key(|record| record.job.id);
    let mut expected: Vec<JobRecord> = jobs;
    // The one due now was sent; the other is leased for a minute from its due time.
    expected.truncate(2);
    expected[0].state = JobState::Queued {
        due: due + Duration::seconds(60),
    };
    expected.sort_by_key(|record| record.job.id);
    assert_eq!(read_jobs, expected);
    assert_eq!(
        view_all!(view, endpoint_states),
        vec![("crm".to_string(), state)]
    );
    let allowances: Vec<MailAllowance> = view_all!(view, mail_allowances);
    assert_eq!(allowances.len(), 1);
    assert_eq!(&allowances[0].contact_id, contact.id());
    assert_eq!(
        allowances[0].taken_at.len(),
        3,
        "the restored two and one more"
    );
    for at in &allowance.taken_at {
        assert!(allowances[0].taken_at.contains(at), "{at} kept");
    }
}

async fn a_restored_contact_gets_the_indexes_its_change_derives(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let (contact, events) = dumped_contact(1, now);
    let mut inactive = new_contact(2, now - Duration::days(40));
    let lapsed = set_status(
        &mut inactive,
        NEWS,
        Status::Unsubscribed,
        now - Duration::days(40),
    );
    let inactive = inactive.with_version(3);
    store
        .restore(RestoreBatch {
            contacts: vec![
                restore_change(&contact, events, K1),
                restore_change(&inactive, vec![lapsed], K2),
            ],
            ..RestoreBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.find_member(K1).await.unwrap(),
        Some(contact.id().clone())
    );
    assert_eq!(
        store.find_member(K2).await.unwrap(),
        Some(inactive.id().clone())
    );
    assert_eq!(
        counters(&store).await,
        counts(&[
            ("contacts", 2),
            ("marketing", 1),
            ("pending", 1),
            ("type:news:opted_in", 1),
            ("type:news:unsubscribed", 1),
            ("type:billing:unsubscribed", 1),
            ("basis:news:consent", 1),
        ])
    );
    let pending = contact.pending()[0].id;
    assert_eq!(
        store
            .expired_pending(now + Duration::days(4), 10)
            .await
            .unwrap(),
        vec![(contact.id().clone(), pending)]
    );
    assert_eq!(
        store
            .inactive_contacts(now - Duration::days(30), 10)
            .await
            .unwrap(),
        vec![inactive.id().clone()]
    );
    // The restored version is the one the next change must start from.
    let mut later = inactive.clone();
    set_status(&mut later, NEWS, Status::OptedIn, now);
    save(&store, Some(&inactive), later, vec![], vec![]).await;
    assert_eq!(
        store
            .load_contact(inactive.id())
            .await
            .unwrap()
            .unwrap()
            .version(),
        4
    );
}

async fn a_restore_refuses_a_contact_that_exists_and_writes_nothing_of_it(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    let (contact, events) = dumped_contact(1, now);
    let stored = save(&store, None, new_contact(1, now), vec![], vec![]).await;
    let refused = store
        .restore(RestoreBatch {
            contacts: vec![restore_change(&contact, events, K1)],
            ..RestoreBatch::default()
        })
        .await;
    assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
    assert_eq!(
        store.load_contact(contact.id()).await.unwrap(),
        Some(stored)
    );
    assert!(store.events(contact.id()).await.unwrap().is_empty());
    assert_eq!(store.find_member(K1).await.unwrap(), None);
}

async fn a_view_gives_every_contact_once_over_its_pages_and_keeps_its_snapshot_promise(
    backend: Backend,
) {
    let store = backend.store;
    let now = Utc::now();
    let mut stored = BTreeSet::new();
    for n in 0..600 {
        let (contact, events) = dumped_contact(n, now);
        stored.insert(contact.id().clone());
        store
            .restore(RestoreBatch {
                contacts: vec![restore_change(&contact, events, &format!("{n:032x}"))],
                ..RestoreBatch::default()
            })
            .await
            .unwrap();
    }
    let view = store.backup_view().await.unwrap();
    // A change after the view was taken.
    save(&store, None, new_contact(10_000, now), vec![], vec![]).await;
    let mut seen = BTreeSet::new();
    let (mut cursor, mut pages) = (None, 0);
    loop {
        let page = view.contacts(cursor, 100).await.unwrap();
        for read in page.items {
            let record = read.expect("readable");
            if *record.contact.id() != contact_id(10_000) {
                assert_eq!(record.events.len(), 2);
            }
            assert!(
                seen.insert(record.contact.id().clone()),
                "each contact once"
            );
        }
        pages += 1;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(pages > 1, "in more than one page");
    match view.consistency() {
        Consistency::Snapshot => assert_eq!(seen, stored, "as of the view, and only that"),
        Consistency::PerRecord => {
            assert!(seen.is_superset(&stored), "every contact stored before");
            assert!(seen.len() <= stored.len() + 1);
        }
    }
}

async fn a_store_is_empty_until_anything_is_written_and_the_restore_mark_counts(backend: Backend) {
    let store = backend.store;
    let now = Utc::now();
    assert!(store.is_empty().await.unwrap());
    assert_eq!(store.restore_mark().await.unwrap(), None);
    let mark = RestoreMark {
        started_at: millisecond(now),
        by: "restore".into(),
    };
    store.set_restore_mark(&mark).await.unwrap();
    assert_eq!(backend.second.restore_mark().await.unwrap(), Some(mark));
    assert!(!store.is_empty().await.unwrap(), "a mark is something");
    store.clear_restore_mark().await.unwrap();
    assert_eq!(store.restore_mark().await.unwrap(), None);
    assert!(store.is_empty().await.unwrap());

    store
        .record_endpoint_attempt("crm", EndpointAttempt::Gone, now)
        .await
        .unwrap();
    assert!(!store.is_empty().await.unwrap(), "an endpoint state");
}

/// A change that sets the contact's due times as given (the domain derives them from
/// the contact's state; here they are set directly, to test the index alone).
fn with_timers(
    mut change: ContactChange,
    timers: &[(Timer, Option<DateTime<Utc>>)],
) -> ContactChange {
    for (timer, at) in timers {
        change.timers.insert(*timer, *at);
    }
    change
}

async fn the_due_index_lists_contacts_by_timer_earliest_first_and_follows_every_change(
    backend: Backend,
) {
    let store = backend.store;
    let now = millisecond(Utc::now());
    let later = now + Duration::hours(1);
    let (ann, bob, cid) = (
        new_contact(1, now),
        new_contact(2, now),
        new_contact(3, now),
    );
    for (contact, reminder) in [(&ann, later), (&bob, now)] {
        let change = change_between(None, Some(contact.clone()), vec![], vec![], &catalog());
        store
            .apply(with_timers(change, &[(Timer::Reminder, Some(reminder))]))
            .await
            .unwrap();
    }
    let change = change_between(None, Some(cid.clone()), vec![], vec![], &catalog());
    store
        .apply(with_timers(change, &[(Timer::Consent, Some(now))]))
        .await
        .unwrap();

    let due = |timer, until| {
        let store = store.clone();
        async move { store.due_contacts(timer, until, 10).await.unwrap() }
    };
    assert_eq!(
        due(Timer::Reminder, later).await,
        [bob.id().clone(), ann.id().clone()]
    );
    assert_eq!(
        due(Timer::Reminder, now).await,
        [bob.id().clone()],
        "until is inclusive"
    );
    assert_eq!(
        due(Timer::Consent, later).await,
        [cid.id().clone()],
        "one index per timer"
    );
    assert_eq!(
        store.due_contacts(Timer::Reminder, later, 1).await.unwrap(),
        [bob.id().clone()],
        "at most the limit, earliest first"
    );

    // Ann's reminder moves before Bob's, then goes; Bob is erased.
    let stored_ann = store.load_contact(ann.id()).await.unwrap().unwrap();
    let earlier = now - Duration::minutes(5);
    let change = change_between(
        Some(&stored_ann),
        Some(stored_ann.clone()),
        vec![],
        vec![],
        &catalog(),
    );
    store
        .apply(with_timers(change, &[(Timer::Reminder, Some(earlier))]))
        .await
        .unwrap();
    assert_eq!(
        due(Timer::Reminder, later).await,
        [ann.id().clone(), bob.id().clone()]
    );
    let stored_ann = store.load_contact(ann.id()).await.unwrap().unwrap();
    let change = change_between(
        Some(&stored_ann),
        Some(stored_ann.clone()),
        vec![],
        vec![],
        &catalog(),
    );
    store
        .apply(with_timers(change, &[(Timer::Reminder, None)]))
        .await
        .unwrap();
    let stored_bob = store.load_contact(bob.id()).await.unwrap().unwrap();
    erase(&store, &stored_bob, now).await;
    assert!(
        due(Timer::Reminder, later).await.is_empty(),
        "nothing is left due"
    );
    assert_eq!(due(Timer::Consent, later).await, [cid.id().clone()]);
}

async fn funnel_counters_are_written_with_their_change_summed_over_shards_and_kept_apart(
    backend: Backend,
) {
    let store = backend.store;
    let now = Utc::now();
    let day = now.date_naive();
    assert!(store.funnel_counters().await.unwrap().is_empty());
    let step = |stage| FunnelStep::new(now, "hosted", stage);
    assert!(store.is_empty().await.unwrap());
    let nothing_else =
        ContactChange::tombstone_only(contact_id(9)).with_funnel(&[step(FunnelStage::Expired)]);
    store.apply(nothing_else).await.unwrap();
    assert!(
        !store.is_empty().await.unwrap(),
        "funnel counts alone are something"
    );
    // Two contacts on two shards, each counting a request; one also a confirmation.
    let (first, second) = (new_contact(1, now), new_contact(2, now));
    let first_change = change_between(
        None,
        Some(first.clone()),
        Vec::new(),
        Vec::new(),
        &catalog(),
    )
    .with_funnel(&[step(FunnelStage::Requested)]);
    store.apply(first_change).await.unwrap();
    let mut confirmed = step(FunnelStage::Confirmed(ConfirmMethod::Code));
    confirmed.seconds = Some(12);
    let second_change = change_between(
        None,
        Some(second.clone()),
        Vec::new(),
        Vec::new(),
        &catalog(),
    )
    .with_funnel(&[step(FunnelStage::Requested), confirmed]);
    store.apply(second_change).await.unwrap();
    let name = |stage: &str| format!("{day}|{stage}|hosted");
    let expected = BTreeMap::from([
        (name("expired"), 1),
        (name("requested"), 2),
        (name("confirmed_code"), 1),
        (name("seconds:12"), 1),
    ]);
    assert_eq!(store.funnel_counters().await.unwrap(), expected);
    assert_eq!(
        backend.second.funnel_counters().await.unwrap(),
        expected,
        "every handle sees the sum"
    );
    assert!(
        counters(&store)
            .await
            .keys()
            .all(|name| !name.contains('|')),
        "the statistics counters hold none of them"
    );

    // A change from a stale version counts nothing.
    let stale = change_between(
        None,
        Some(first.clone()),
        Vec::new(),
        Vec::new(),
        &catalog(),
    )
    .with_funnel(&[step(FunnelStage::Cancelled)]);
    assert!(matches!(
        store.apply(stale).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.funnel_counters().await.unwrap(), expected);

    // Counts of what happened stay when the contacts go: they hold nobody's data.
    let stored = store.load_contact(first.id()).await.unwrap().unwrap();
    erase(&store, &stored, now).await;
    assert_eq!(store.funnel_counters().await.unwrap(), expected);
}
