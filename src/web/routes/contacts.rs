//! Admin reads: `GET /v1/contacts/{email}` and `GET /v1/stats`.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::domain::Status;
use crate::web::extract::api_key::AdminKey;
use crate::web::extract::contact_request::ContactRequest;
use crate::web::problem::Problem;
use crate::web::AppState;

pub async fn show_contact(request: ContactRequest) -> Result<HttpResponse, Problem> {
    let state = &request.state;
    let contact = state.subscriptions.existing_contact(&request.email).await?;
    let catalog = state.subscriptions.catalog();
    let subscriptions: serde_json::Map<String, serde_json::Value> = catalog
        .all()
        .iter()
        .map(|t| {
            let value = match contact.subscription(&t.id) {
                Some(s) => json!({
                    "status": s.status,
                    "since": s.since,
                    "lawful_basis": s.lawful_basis,
                    "source": s.source,
                    "consented_at": s.consent_given_at(),
                    "consent_expires_at": s.consent_ends_at(t),
                    "renewal_asked_at": s.renewal_asked_at,
                }),
                None => json!({ "status": Status::NotSubscribed, "since": null, "lawful_basis": null, "source": null }),
            };
            (t.id.to_string(), value)
        })
        .collect();
    let pending: Vec<serde_json::Value> = contact
        .pending()
        .iter()
        .map(|p| json!({ "id": p.id, "subscription_types": p.types, "created_at": p.signup.at, "expires_at": p.expires_at }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "email": contact.email(),
        "locale": contact.locale(),
        "created_at": contact.created_at(),
        "subscriptions": subscriptions,
        "pending_confirmations": pending,
        "restricted": contact.is_restricted(),
        "restricted_since": contact.restricted_since(),
        "signup_blocked_since": contact.signup_blocked_since(),
        "unreachable": contact.unreachable(),
        "recent_soft_bounces": state.subscriptions.recent_soft_bounces(&contact),
    })))
}

pub async fn show_stats(
    state: web::Data<AppState>,
    _caller: AdminKey,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(state.subscriptions.stats().await?))
}
