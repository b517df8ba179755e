//! HubSpot communication preferences v4, at `/communication-preferences/v4/…`, for the
//! `EMAIL` channel. Statuses are `SUBSCRIBED`, `UNSUBSCRIBED` or `NOT_SPECIFIED`, and
//! answers come in the `{status: "COMPLETE", results, startedAt, completedAt}` envelope.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    definition, known_type, legal_basis_fields, opt_in_change, parse_legal_basis, plain_change,
    subscription, subscription_id, HubSpotError, HubSpotResult,
};
use crate::auth::Scope;
use crate::domain::{Contact, EmailAddress, RequestMeta, Status, SubscriptionType};
use crate::web::compat::{
    admin_meta, caller, default_locale, evidence, json_body, subscription_types, timestamp,
};
use crate::web::extract::manual_change::parse_email;
use crate::web::middleware::no_store::no_store;
use crate::web::problem::Problem;
use crate::web::AppState;

/// Most inputs one batch read or write may carry, as HubSpot allows.
pub const MAX_BATCH_INPUTS: usize = 1_000;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/communication-preferences/v4")
            .wrap(no_store())
            .route("/definitions", web::get().to(list_definitions))
            .route("/statuses/batch/read", web::post().to(read_batch))
            .route("/statuses/batch/write", web::post().to(write_batch))
            .route(
                "/statuses/{subscriberIdString}/unsubscribe-all",
                web::get().to(show_unsubscribe_all),
            )
            .route(
                "/statuses/{subscriberIdString}/unsubscribe-all",
                web::post().to(unsubscribe_all),
            )
            .route(
                "/statuses/{subscriberIdString}",
                web::get().to(show_statuses),
            )
            .route(
                "/statuses/{subscriberIdString}",
                web::post().to(write_status),
            )
            .route("/links/generate", web::post().to(generate_links)),
    );
}

#[derive(Deserialize)]
pub struct ChannelQuery {
    channel: Option<String>,
}

/// Only the `EMAIL` channel exists here; an absent channel means it.
fn check_channel(channel: Option<&str>) -> Result<(), Problem> {
    match channel {
        None | Some("EMAIL") => Ok(()),
        Some(_) => Err(Problem::invalid_field(
            "channel",
            "channel: optin handles only EMAIL",
        )),
    }
}

fn query_channel(query: &str) -> Result<(), Problem> {
    let parsed: ChannelQuery = serde_html_form::from_str(query)
        .map_err(|e| Problem::invalid_field("channel", format!("channel: {e}")))?;
    check_channel(parsed.channel.as_deref())
}

/// The envelope of every v4 answer; `errors` only when some inputs of a batch failed.
fn envelope(results: Vec<Value>, errors: Vec<Value>, started: DateTime<Utc>) -> HttpResponse {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": timestamp(started),
        "completedAt": timestamp(Utc::now()),
    });
    if errors.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        body["numErrors"] = json!(errors.len());
        body["errors"] = Value::Array(errors);
        HttpResponse::build(actix_web::http::StatusCode::MULTI_STATUS).json(body)
    }
}

/// One (subscriber, type) status as v4 shows it.
fn status_of(
    state: &AppState,
    email: &EmailAddress,
    t: &SubscriptionType,
    contact: Option<&Contact>,
) -> Value {
    let locale = default_locale(state);
    let stored = subscription(contact, t);
    let status = match stored.map(|s| s.status) {
        Some(Status::OptedIn) => "SUBSCRIBED",
        Some(Status::Unsubscribed) => "UNSUBSCRIBED",
        Some(Status::NotSubscribed) | None => "NOT_SPECIFIED",
    };
    let (legal_basis, explanation) = legal_basis_fields(stored.and_then(|s| s.lawful_basis));
    json!({
        "subscriberIdString": email.as_str(),
        "channel": "EMAIL",
        "subscriptionId": t.id,
        "subscriptionName": t.name_in(locale, locale),
        "status": status,
        "source": stored.map(|s| s.source),
        "legalBasis": legal_basis,
        "legalBasisExplanation": explanation,
        "timestamp": stored.map(|s| timestamp(s.since)),
    })
}

/// Every type's status of one address, in the envelope.
fn statuses_answer(
    state: &AppState,
    email: &EmailAddress,
    contact: Option<&Contact>,
    started: DateTime<Utc>,
) -> HttpResponse {
    envelope(statuses_of(state, email, contact), Vec::new(), started)
}

fn statuses_of(state: &AppState, email: &EmailAddress, contact: Option<&Contact>) -> Vec<Value> {
    subscription_types(state)
        .iter()
        .map(|t| status_of(state, email, t, contact))
        .collect()
}

pub async fn list_definitions(state: web::Data<AppState>, req: HttpRequest) -> HubSpotResult {
    caller(&req, Scope::Send, false)?;
    let started = Utc::now();
    let definitions = subscription_types(&state)
        .iter()
        .map(|t| definition(&state, t))
        .collect();
    Ok(envelope(definitions, Vec::new(), started))
}

/// The reads by subscriber: the key, the channel, the address and its contact.
async fn read_subscriber(
    state: &AppState,
    req: &HttpRequest,
    subscriber: &str,
) -> Result<(DateTime<Utc>, EmailAddress, Option<Contact>), HubSpotError> {
    caller(req, Scope::Send, false)?;
    query_channel(req.query_string())?;
    let started = Utc::now();
    let email = parse_email(subscriber, "subscriberIdString")?;
    let contact = state.subscriptions.contact(&email).await?;
    Ok((started, email, contact))
}

pub async fn show_statuses(
    state: web::Data<AppState>,
    req: HttpRequest,
    subscriber: web::Path<String>,
) -> HubSpotResult {
    let (started, email, contact) = read_subscriber(&state, &req, &subscriber).await?;
    Ok(statuses_answer(&state, &email, contact.as_ref(), started))
}

/// One status write, as the single and the batch route take it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusWrite {
    subscriber_id_string: Option<String>,
    channel: Option<String>,
    status_state: Option<String>,
    subscription_id: Option<Value>,
    legal_basis: Option<String>,
    legal_basis_explanation: Option<String>,
}

/// Parses and applies one write; answers the type's status afterwards.
async fn apply_write(
    state: &AppState,
    email: &EmailAddress,
    write: StatusWrite,
    meta: &RequestMeta,
) -> Result<Value, HubSpotError> {
    check_channel(write.channel.as_deref())?;
    let id = subscription_id(write.subscription_id.as_ref(), "subscriptionId")?;
    let t = known_type(state, "subscriptionId", &id)?;
    let explanation = evidence(
        "legalBasisExplanation",
        write.legal_basis_explanation.as_deref(),
    )?;
    let opt_in = write.status_state.as_deref() == Some("SUBSCRIBED");
    let basis = parse_legal_basis(write.legal_basis.as_deref(), opt_in)?;
    let change = match write.status_state.as_deref() {
        Some("SUBSCRIBED") => opt_in_change(t, basis, explanation),
        Some("UNSUBSCRIBED") => plain_change(t, Status::Unsubscribed, explanation),
        Some("NOT_SPECIFIED") => plain_change(t, Status::NotSubscribed, explanation),
        _ => {
            return Err(Problem::invalid_field(
                "statusState",
                "statusState is one of SUBSCRIBED, UNSUBSCRIBED, NOT_SPECIFIED",
            )
            .into())
        }
    };
    let result = state
        .subscriptions
        .change_manually(email, &change, meta)
        .await?;
    Ok(status_of(state, email, t, Some(&result.contact)))
}

pub async fn write_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    subscriber: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HubSpotResult {
    let key = caller(&req, Scope::Admin, false)?;
    query_channel(req.query_string())?;
    let started = Utc::now();
    let email = parse_email(&subscriber, "subscriberIdString")?;
    let write: StatusWrite = json_body(body)?;
    let meta = admin_meta(&state, &req, &key);
    let result = apply_write(&state, &email, write, &meta).await?;
    Ok(envelope(vec![result], Vec::new(), started))
}

#[derive(Deserialize)]
pub struct BatchBody<T> {
    inputs: Option<Vec<T>>,
}

/// The inputs of a batch: present, and at most [`MAX_BATCH_INPUTS`].
fn batch_inputs<T>(body: BatchBody<T>) -> Result<Vec<T>, Problem> {
    let inputs = body
        .inputs
        .ok_or_else(|| Problem::invalid_field("inputs", "inputs is required"))?;
    if inputs.len() > MAX_BATCH_INPUTS {
        return Err(Problem::invalid_field(
            "inputs",
            format!("inputs: at most {MAX_BATCH_INPUTS} per batch"),
        ));
    }
    Ok(inputs)
}

/// A failed input of a batch, in HubSpot's error shape, naming the input.
fn input_error(subscriber: &str, problem: &Problem) -> Value {
    json!({
        "status": "error",
        "category": if problem.status == 404 { "OBJECT_NOT_FOUND" } else { "VALIDATION_ERROR" },
        "message": problem.detail.clone().unwrap_or_else(|| problem.title.to_string()),
        "context": { "subscriberIdString": [subscriber] },
    })
}

pub async fn read_batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HubSpotResult {
    caller(&req, Scope::Send, false)?;
    query_channel(req.query_string())?;
    let started = Utc::now();
    let inputs = batch_inputs(json_body::<BatchBody<String>>(body)?)?;
    let mut emails = Vec::new();
    let mut errors = Vec::new();
    for input in &inputs {
        match parse_email(input, "inputs") {
            Ok(email) => emails.push(email),
            Err(problem) => errors.push(input_error(input, &problem)),
        }
    }
    let contacts = state.subscriptions.contacts(&emails).await?;
    let results = emails
        .iter()
        .zip(&contacts)
        .flat_map(|(email, contact)| statuses_of(&state, email, contact.as_ref()))
        .collect();
    Ok(envelope(results, errors, started))
}

pub async fn write_batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HubSpotResult {
    let key = caller(&req, Scope::Admin, false)?;
    let started = Utc::now();
    // Each input must be an object, or the whole batch is refused; its fields are
    // checked per input.
    let inputs = batch_inputs(json_body::<BatchBody<serde_json::Map<String, Value>>>(
        body,
    )?)?;
    let meta = admin_meta(&state, &req, &key);
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        let subscriber = input
            .get("subscriberIdString")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let outcome = async {
            let write: StatusWrite =
                crate::web::extract::json_body::from_object(Value::Object(input), "inputs")?;
            let email = parse_email(
                write.subscriber_id_string.as_deref().unwrap_or_default(),
                "subscriberIdString",
            )?;
            apply_write(&state, &email, write, &meta).await
        }
        .await;
        match outcome {
            Ok(result) => results.push(result),
            // The store failing is no input's fault: the whole batch answers it.
            Err(error) if error.0.status >= 500 => return Err(error),
            Err(error) => errors.push(input_error(&subscriber, &error.0)),
        }
    }
    Ok(envelope(results, errors, started))
}

/// `UNSUBSCRIBED` once every type is unsubscribed (what the write below makes),
/// `SUBSCRIBED` while any type is opted in, else `NOT_SPECIFIED`.
fn wide_status(state: &AppState, email: &EmailAddress, contact: Option<&Contact>) -> Value {
    let types = subscription_types(state);
    let status_of =
        |t: &SubscriptionType| contact.map_or(Status::NotSubscribed, |c| c.status(&t.id));
    let status = if types.iter().all(|t| status_of(t) == Status::Unsubscribed) {
        "UNSUBSCRIBED"
    } else if types.iter().any(|t| status_of(t) == Status::OptedIn) {
        "SUBSCRIBED"
    } else {
        "NOT_SPECIFIED"
    };
    let latest = contact.and_then(|c| c.subscriptions().values().map(|s| s.since).max());
    json!({
        "subscriberIdString": email.as_str(),
        "wideStatusType": "PORTAL_WIDE",
        "channel": "EMAIL",
        "status": status,
        "timestamp": latest.map(timestamp),
    })
}

pub async fn show_unsubscribe_all(
    state: web::Data<AppState>,
    req: HttpRequest,
    subscriber: web::Path<String>,
) -> HubSpotResult {
    let (started, email, contact) = read_subscriber(&state, &req, &subscriber).await?;
    Ok(envelope(
        vec![wide_status(&state, &email, contact.as_ref())],
        Vec::new(),
        started,
    ))
}

/// Unsubscribes every type in one change (the events share one request and time);
/// answers the statuses of every type afterwards.
pub async fn unsubscribe_all(
    state: web::Data<AppState>,
    req: HttpRequest,
    subscriber: web::Path<String>,
) -> HubSpotResult {
    let key = caller(&req, Scope::Admin, false)?;
    query_channel(req.query_string())?;
    let started = Utc::now();
    let email = parse_email(&subscriber, "subscriberIdString")?;
    let meta = admin_meta(&state, &req, &key);
    let contact = state.subscriptions.unsubscribe_all(&email, &meta).await?;
    Ok(statuses_answer(&state, &email, Some(&contact), started))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinksBody {
    subscriber_id_string: Option<String>,
    channel: Option<String>,
    subscription_id: Option<Value>,
    language: Option<String>,
}

/// optin's `manage` link (it can only mail a preferences link to the address) and, for
/// one type, its one-click unsubscribe link: never a preferences link, since whoever
/// holds these need not own the address.
pub async fn generate_links(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HubSpotResult {
    caller(&req, Scope::Send, false)?;
    let body: LinksBody = json_body(body)?;
    check_channel(body.channel.as_deref())?;
    let email = parse_email(
        body.subscriber_id_string.as_deref().unwrap_or_default(),
        "subscriberIdString",
    )?;
    let subscriptions = &state.subscriptions;
    let id = subscriptions.contact_id(&email);
    let locale = body
        .language
        .as_deref()
        .map(|l| crate::web::routes::page::request_locale(&state, &req, Some(l)));
    let now = subscriptions.now();
    let mut answer = json!({
        "subscriberIdString": email.as_str(),
        "channel": "EMAIL",
        "managePreferencesUrl": subscriptions.links().manage(&id, locale.as_deref(), now),
    });
    if body.subscription_id.is_some() {
        let type_id = subscription_id(body.subscription_id.as_ref(), "subscriptionId")?;
        let t = known_type(&state, "subscriptionId", &type_id)?;
        answer["unsubscribeSingleUrl"] =
            json!(subscriptions
                .links()
                .unsubscribe(&id, &t.id, locale.as_deref(), now));
    }
    Ok(HttpResponse::Ok().json(answer))
}
