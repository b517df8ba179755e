//! A contact's page (statuses, pending confirmations, restriction, reachability and the
//! event timeline with its chain verdict) and the actions on it. The contact is named by
//! its id; each action looks up its address and calls the admin API's operation.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::csrf::TokenOnly;
use super::request::{Console, ConsolePost};
use super::{message_from_query, see_other, when, ConsoleError};
use crate::domain::{
    Contact, ContactId, Event, LawfulBasis, ManualChangeError, ManualOutcome, OptInRefused,
    Restriction, Source, Status,
};
use crate::service::RequestError;
use crate::web::extract::manual_change::ManualChangeBody;
use crate::web::pages::{
    AdminContact, AdminErase, Choice, ContactPending, ContactType, ContactUnreachable,
    TimelineEvent,
};

/// The messages the contact page shows after a redirect.
const DONE: [&str; 6] = [
    "admin_done_restricted",
    "admin_done_lifted",
    "admin_done_changed",
    "admin_done_unchanged",
    "admin_done_confirmation_sent",
    "admin_done_unreachable_cleared",
];

fn contact_url(id: &ContactId) -> String {
    format!("/admin/contacts/{}", id.as_str())
}

/// After an action: the contact's page, saying what was done.
fn done(contact: &Contact, what: &str) -> HttpResponse {
    see_other(format!("{}?done={what}", contact_url(contact.id())))
}

impl From<RequestError> for ConsoleError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::Store(e) => ConsoleError::Store(e),
            // Erased or moved meanwhile, by someone else.
            _ => ConsoleError::NotFound,
        }
    }
}

pub async fn show_contact(console: Console, id: web::Path<String>) -> HttpResponse {
    let result = async {
        let contact = console.contact(&id).await?;
        let note = Note {
            message: message_from_query(&console.req, &DONE),
            is_error: false,
        };
        contact_page(&console, &contact, note, StatusCode::OK).await
    }
    .await;
    console.respond(result)
}

/// What the page says on top: a message key, and whether it reports a refusal.
struct Note {
    message: Option<&'static str>,
    is_error: bool,
}

async fn contact_page(
    console: &Console,
    contact: &Contact,
    note: Note,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let subscriptions = &console.state.subscriptions;
    let provenance = subscriptions.provenance(contact.email()).await?;
    let catalog = subscriptions.catalog();
    let locale = console.locale();
    let fallback = catalog.default_locale();
    let type_name = |id: &str| {
        catalog
            .get(id)
            .map_or_else(|| id.to_string(), |t| t.name_in(&locale, fallback))
    };
    let types = catalog
        .all()
        .iter()
        .map(|t| {
            let held = contact.subscription(&t.id);
            ContactType {
                id: t.id.to_string(),
                name: t.name_in(&locale, fallback),
                status_key: status_key(contact.status(&t.id)),
                since: held.map(|s| when(s.since)),
                lawful_basis: held
                    .and_then(|s| s.lawful_basis)
                    .map(|b| b.as_str().to_string()),
                source: held.map(|s| code(&s.source)),
            }
        })
        .collect();
    let pending = contact
        .pending()
        .iter()
        .map(|p| ContactPending {
            types: p
                .types
                .iter()
                .map(|t| type_name(t.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            created_at: when(p.signup.at),
            expires_at: when(p.expires_at),
        })
        .collect();
    let broken = provenance.chain.first_broken_event;
    let events = provenance
        .events
        .iter()
        .rev()
        .map(|event| timeline_event(event, broken == Some(event.id), &type_name))
        .collect();
    let data = AdminContact {
        nav: console.nav(),
        contact_url: contact_url(contact.id()),
        email: contact.email().as_str().to_string(),
        locale: contact.locale().to_string(),
        created_at: when(contact.created_at()),
        types,
        pending,
        restricted_since: contact.restricted_since().map(when),
        signup_blocked_since: contact.signup_blocked_since().map(when),
        unreachable: contact.unreachable().map(|u| ContactUnreachable {
            since: when(u.since),
            reason: code(&u.reason),
            detail: u.detail.clone(),
        }),
        recent_soft_bounces: subscriptions.recent_soft_bounces(contact),
        events,
        chain_valid: provenance.chain.chain_valid,
        message: note.message,
        message_is_error: note.is_error,
        statuses: [Status::OptedIn, Status::Unsubscribed, Status::NotSubscribed]
            .into_iter()
            .map(|s| Choice {
                value: s.as_str().to_string(),
                label: status_key(s),
            })
            .collect(),
        lawful_bases: LawfulBasis::ALL
            .iter()
            .map(|b| b.as_str().to_string())
            .collect(),
    };
    Ok(console.render(status, &data))
}

/// The string key that names a status on the pages.
fn status_key(status: Status) -> String {
    format!("admin_status_{}", status.as_str())
}

/// A serde enum's name as stored (`admin_api`, `status_changed`).
fn code<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// One event as the timeline shows it; its type by name, in the console's language.
fn timeline_event(
    event: &Event,
    broken: bool,
    type_name: &impl Fn(&str) -> String,
) -> TimelineEvent {
    TimelineEvent {
        id: event.id.to_string(),
        at: when(event.at),
        kind: code(&event.kind),
        subscription_type: event
            .subscription_type
            .as_ref()
            .map(|id| type_name(id.as_str())),
        change: match (event.from, event.to) {
            (Some(from), Some(to)) => Some(format!("{} → {}", from.as_str(), to.as_str())),
            (None, Some(to)) => Some(format!("→ {}", to.as_str())),
            _ => None,
        },
        source: code(&event.source),
        lawful_basis: event.lawful_basis.map(|b| b.as_str().to_string()),
        explanation: event.explanation.clone(),
        consent_evidence: event.consent_evidence.clone(),
        notice: event
            .consent_notice
            .as_ref()
            .map(|n| format!("{} ({}) sha256 {}", n.version, n.locale, n.sha256)),
        actor: event.meta.actor.clone(),
        broken,
    }
}

/// `POST …/export`: everything held on the person, as the API's export answers it.
pub async fn export(post: ConsolePost<TokenOnly>, id: web::Path<String>) -> HttpResponse {
    let result = async {
        let contact = post.contact(&id).await?;
        let export = post.state.subscriptions.export(contact.email()).await?;
        tracing::info!(key = %post.session.key_name, to = %contact.email().masked(), "console export");
        Ok(crate::web::routes::rights::export_download(&export))
    }
    .await;
    post.respond(result)
}

/// `GET …/erase`: asks first; changes nothing.
pub async fn ask_to_erase(console: Console, id: web::Path<String>) -> HttpResponse {
    let result = async {
        let contact = console.contact(&id).await?;
        let data = AdminErase {
            nav: console.nav(),
            contact_url: contact_url(contact.id()),
            email: contact.email().as_str().to_string(),
        };
        Ok(console.render(StatusCode::OK, &data))
    }
    .await;
    console.respond(result)
}

/// `POST …/erase`: Art. 17, as `DELETE /v1/contacts/{email}`.
pub async fn erase(post: ConsolePost<TokenOnly>, id: web::Path<String>) -> HttpResponse {
    let result = async {
        let contact = post.contact(&id).await?;
        post.state
            .subscriptions
            .erase(contact.email(), &post.meta())
            .await?;
        tracing::info!(key = %post.session.key_name, to = %contact.email().masked(), "contact erased from the console");
        Ok(see_other("/admin?done=erased".to_string()))
    }
    .await;
    post.respond(result)
}

#[derive(Deserialize)]
pub struct RestrictionForm {
    restricted: String,
}

/// `POST …/restriction` with `restricted=1` (Art. 18) or `0` (lift).
pub async fn set_restriction(
    post: ConsolePost<RestrictionForm>,
    id: web::Path<String>,
) -> HttpResponse {
    let result = async {
        let (to, what) = match post.form.restricted.as_str() {
            "1" => (Restriction::Restrict, "restricted"),
            "0" => (Restriction::Lift, "lifted"),
            _ => return Err(ConsoleError::BadRequest),
        };
        let contact = post.contact(&id).await?;
        post.state
            .subscriptions
            .set_restriction(contact.email(), to, &post.meta())
            .await?;
        Ok(done(&contact, what))
    }
    .await;
    post.respond(result)
}

/// `POST …/unreachable`: the address works again.
pub async fn clear_unreachable(
    post: ConsolePost<TokenOnly>,
    id: web::Path<String>,
) -> HttpResponse {
    let result = async {
        let contact = post.contact(&id).await?;
        post.state
            .subscriptions
            .clear_unreachable(contact.email(), &post.meta())
            .await?;
        Ok(done(&contact, "unreachable_cleared"))
    }
    .await;
    post.respond(result)
}

#[derive(Deserialize)]
pub struct ManualChangeForm {
    subscription_type: String,
    status: String,
    #[serde(default)]
    lawful_basis: String,
    #[serde(default)]
    explanation: String,
    #[serde(default)]
    consent_evidence: String,
    #[serde(default)]
    send_confirmation: Option<String>,
}

/// `POST …/subscriptions`: a manual change, as `PUT /v1/contacts/{email}/subscriptions/{type}`
/// with source `admin_api`. A refused change shows the contact again, saying why.
pub async fn change_subscription(
    post: ConsolePost<ManualChangeForm>,
    id: web::Path<String>,
) -> HttpResponse {
    let result = async {
        let contact = post.contact(&id).await?;
        let form = &post.form;
        let subscriptions = &post.state.subscriptions;
        // The same parsing as the API's body, so that both refuse the same input.
        let parsed = ManualChangeBody {
            status: Some(form.status.clone()),
            lawful_basis: Some(form.lawful_basis.clone()).filter(|b| !b.is_empty()),
            explanation: Some(form.explanation.clone()),
            consent_evidence: Some(form.consent_evidence.clone()),
            send_confirmation: form.send_confirmation.as_deref() == Some("1"),
            // The console records consent given now.
            consented_at: None,
        }
        .parse(
            subscriptions.catalog(),
            &form.subscription_type,
            Source::AdminApi,
        );
        let refused = |message| {
            let note = Note {
                message: Some(message),
                is_error: true,
            };
            contact_page(&post, &contact, note, StatusCode::UNPROCESSABLE_ENTITY)
        };
        let Ok(change) = parsed else {
            return refused("admin_err_invalid_input").await;
        };
        match subscriptions
            .change_manually(contact.email(), &change, &post.meta())
            .await
        {
            Ok(result) => Ok(done(
                &contact,
                match result.outcome {
                    ManualOutcome::Changed => "changed",
                    ManualOutcome::Unchanged => "unchanged",
                    ManualOutcome::ConfirmationSent => "confirmation_sent",
                },
            )),
            Err(RequestError::Store(e)) => Err(ConsoleError::Store(e)),
            Err(RequestError::Refused(error)) => refused(manual_error_key(&error)).await,
            Err(_) => refused("admin_err_invalid_input").await,
        }
    }
    .await;
    post.respond(result)
}

fn manual_error_key(error: &ManualChangeError) -> &'static str {
    match error {
        ManualChangeError::BasisRequired => "admin_err_basis_required",
        ManualChangeError::EvidenceRequired => "admin_err_evidence_required",
        ManualChangeError::Unsubscribed => "admin_err_unsubscribed",
        ManualChangeError::Erased => "admin_err_erased",
        ManualChangeError::ConfirmationNeedsOptIn => "admin_err_confirmation_needs_opt_in",
        ManualChangeError::OptIn(OptInRefused::MailLimitReached) => "admin_err_mail_limit",
        ManualChangeError::OptIn(OptInRefused::Blocked) => "admin_err_signup_blocked",
        ManualChangeError::ConsentedAtWithoutConsent | ManualChangeError::ConsentedAtInFuture => {
            "admin_err_invalid_input"
        }
    }
}
