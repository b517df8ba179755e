//! `GET /v1/eligibility` for one address and `POST /v1/eligibility` for up to 10,000.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::domain::EmailAddress;
use crate::web::extract::api_key::SendKey;
use crate::web::extract::json_body::JsonObject;
use crate::web::problem::Problem;
use crate::web::{AppState, MAX_BATCH};

#[derive(Deserialize)]
pub struct EligibilityQuery {
    email: Option<String>,
    subscription_type: Option<String>,
}

pub async fn check_eligibility(
    state: web::Data<AppState>,
    _caller: SendKey,
    query: web::Query<EligibilityQuery>,
) -> Result<HttpResponse, Problem> {
    let query = query.into_inner();
    let email = query
        .email
        .ok_or_else(|| Problem::invalid_field("email", "email is required"))?;
    let email =
        EmailAddress::parse(&email).map_err(|e| Problem::invalid_field("email", e.to_string()))?;
    let type_id = query.subscription_type.ok_or_else(|| {
        Problem::invalid_field("subscription_type", "subscription_type is required")
    })?;
    let answer = state.subscriptions.eligibility(&email, &type_id).await?;
    metrics::counter!("optin_eligibility_checks_total", "mode" => "single").increment(1);
    Ok(HttpResponse::Ok().json(answer))
}

/// One item of a batch answer: an eligibility, or the reason the address was refused.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum BatchItem {
    Answer(crate::service::Eligibility),
    Invalid {
        email: String,
        error: String,
    },
    /// Cannot happen (one answer per valid address); kept as null rather than a panic.
    Missing,
}

#[derive(serde::Serialize)]
struct BatchAnswer<'a> {
    subscription_type: &'a str,
    results: Vec<BatchItem>,
}

#[derive(Deserialize)]
pub struct BatchBody {
    subscription_type: Option<String>,
    emails: Option<Vec<String>>,
}

pub async fn check_eligibility_batch(
    state: web::Data<AppState>,
    _caller: SendKey,
    body: JsonObject<BatchBody>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let type_id = body.subscription_type.ok_or_else(|| {
        Problem::invalid_field("subscription_type", "subscription_type is required")
    })?;
    let emails = body
        .emails
        .ok_or_else(|| Problem::invalid_field("emails", "emails is required"))?;
    if emails.len() > MAX_BATCH {
        return Err(Problem::payload_too_large(format!(
            "at most {MAX_BATCH} addresses per request; got {}",
            emails.len()
        )));
    }
    // Invalid items get their own error; the valid ones are read in one batch.
    let parsed: Vec<Result<EmailAddress, String>> = emails
        .iter()
        .map(|raw| EmailAddress::parse(raw).map_err(|e| e.to_string()))
        .collect();
    let valid: Vec<EmailAddress> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    // Held until the answer is serialized below (see `eligibility_batch`).
    let mut batch = state
        .subscriptions
        .eligibility_batch(&valid, &type_id)
        .await?;
    let mut answers = std::mem::take(&mut batch.results).into_iter();
    let results: Vec<BatchItem> = parsed
        .iter()
        .zip(&emails)
        .map(|(item, raw)| match item {
            Ok(_) => answers.next().map_or(BatchItem::Missing, BatchItem::Answer),
            Err(reason) => BatchItem::Invalid {
                email: raw.chars().take(320).collect(),
                error: reason.clone(),
            },
        })
        .collect();
    metrics::counter!("optin_eligibility_checks_total", "mode" => "batch")
        .increment(emails.len() as u64);
    // Serialized straight from these types: no intermediate JSON tree for 10,000 items.
    Ok(HttpResponse::Ok().json(BatchAnswer {
        subscription_type: &type_id,
        results,
    }))
}
