//! Mailchimp Marketing API v3, at `/3.0/…`: a list is a subscription type and `list_id`
//! is the type's id; the key comes as the HTTP Basic password (any user name) or as
//! Bearer. Members are found by `subscriber_hash`, the MD5 of the lower-cased address
//! (through the keyed member index), or by the address itself.
//!
//! Statuses: `opted_in` is `subscribed`, `unsubscribed` is `unsubscribed`, a pending
//! confirmation is `pending`, and an unreachable address is `cleaned`. Writes: `pending`
//! starts optin's double opt-in (source `signup_api`); `unsubscribed` is a manual change
//! (`admin_api`); `subscribed` is a manual opt-in with consent when it carries evidence
//! (`marketing_permissions` with one enabled, `ip_opt` and `timestamp_opt`), and otherwise
//! starts a double opt-in and answers `pending`.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    admin_meta, caller, default_locale, evidence, json_body, subscription_type, subscription_types,
    timestamp,
};
use crate::auth::Scope;
use crate::domain::{
    Contact, ManualChangeError, MemberError, MemberStatus, MemberWrite, MemberWriteMode,
    Membership, OptInRefused, Status, SubscriptionType,
};
use crate::service::{subscriber_hash, MemberRef, MemberRequest, RequestError, StoreError};
use crate::web::extract::api_key::Caller;
use crate::web::extract::manual_change::parse_email;
use crate::web::middleware::no_store::no_store;
use crate::web::problem::Problem;
use crate::web::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/3.0")
            .wrap(no_store())
            .route("/lists", web::get().to(list_lists))
            .route("/lists/{list_id}", web::get().to(show_list))
            .route("/lists/{list_id}/members", web::post().to(add_member))
            .route(
                "/lists/{list_id}/members/{subscriber_hash}",
                web::get().to(show_member),
            )
            .route(
                "/lists/{list_id}/members/{subscriber_hash}",
                web::put().to(set_member),
            )
            .route(
                "/lists/{list_id}/members/{subscriber_hash}",
                web::patch().to(update_member),
            ),
    );
}

/// Mailchimp's problem+json: `{type, title, status, detail, instance}`, built from optin's
/// own problem so that every rule keeps one mapping to a status code. `title` is
/// Mailchimp's, which its clients match on ("Member Exists", "Resource Not Found").
#[derive(Debug)]
pub struct MailchimpError {
    // Boxed: it travels in every `Result` of this module and a problem is large.
    problem: Box<Problem>,
    title: Option<&'static str>,
}

impl MailchimpError {
    fn titled(title: &'static str, problem: Problem) -> Self {
        Self {
            problem: Box::new(problem),
            title: Some(title),
        }
    }

    fn not_found(detail: &str) -> Self {
        Problem::not_found().with_detail(detail).into()
    }
}

impl From<Problem> for MailchimpError {
    fn from(problem: Problem) -> Self {
        Self {
            problem: Box::new(problem),
            title: None,
        }
    }
}

impl From<StoreError> for MailchimpError {
    fn from(error: StoreError) -> Self {
        Problem::from(error).into()
    }
}

impl From<RequestError> for MailchimpError {
    fn from(error: RequestError) -> Self {
        let detail = error.to_string();
        match error {
            // Mailchimp's own titles for what its clients tell apart.
            RequestError::Refused(ManualChangeError::Erased) => Self::titled(
                "Forgotten Email Not Subscribed",
                Problem::invalid_field("status", detail),
            ),
            RequestError::Refused(ManualChangeError::OptIn(OptInRefused::Blocked)) => {
                Self::titled(
                    "Member In Compliance State",
                    Problem::invalid_field("status", format!("status: {detail}")),
                )
            }
            RequestError::Member(MemberError::Exists) => Self::titled(
                "Member Exists",
                Problem::invalid_field(
                    "email_address",
                    "The address is already a list member. Use PUT to insert or update list members.",
                ),
            ),
            other => Problem::from(other).into(),
        }
    }
}

impl std::fmt::Display for MailchimpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.problem.fmt(f)
    }
}

impl ResponseError for MailchimpError {
    fn status_code(&self) -> StatusCode {
        // Mailchimp answers invalid input with 400, never 422.
        match self.problem.status_code() {
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            other => other,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let title = self
            .title
            .unwrap_or(match (status.as_u16(), self.problem.slug()) {
                (400, "malformed-body") => "JSON Parse Error",
                (400, _) => "Invalid Resource",
                (401, "missing-api-key") => "API Key Missing",
                (401, _) => "API Key Invalid",
                (403, _) => "Forbidden",
                (404, _) => "Resource Not Found",
                (405, _) => "Method Not Allowed",
                (409, _) => "Conflict",
                (413, _) => "Request Entity Too Large",
                (429, _) => "Too Many Requests",
                (503, _) => "Service Unavailable",
                _ => "Internal Server Error",
            });
        let detail = self
            .problem
            .detail
            .clone()
            .unwrap_or_else(|| self.problem.title.to_string());
        let mut body = json!({
            "type": self.problem.type_uri,
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
            "instance": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(field) = &self.problem.field {
            body["errors"] = json!([{ "field": field, "message": detail }]);
        }
        self.problem
            .response_builder(status)
            .content_type(crate::web::problem::CONTENT_TYPE)
            .json(body)
    }
}

pub type MailchimpResult = Result<HttpResponse, MailchimpError>;

/// A list by id, or Mailchimp's 404.
fn known_list<'a>(
    state: &'a AppState,
    list_id: &str,
) -> Result<&'a SubscriptionType, MailchimpError> {
    subscription_type(state, list_id)
        .ok_or_else(|| MailchimpError::not_found("The requested list was not found."))
}

/// A list as Mailchimp describes one; counts come from the statistics counters.
fn list_json(state: &AppState, t: &SubscriptionType, stats: &crate::domain::Stats) -> Value {
    let locale = default_locale(state);
    let counts = stats.by_type.get(t.id.as_str());
    let (_, notice) = t.current_notice(locale, locale);
    json!({
        "id": t.id,
        "name": t.name_in(locale, locale),
        "permission_reminder": notice.text,
        "double_optin": t.double_opt_in,
        "marketing_permissions": false,
        "email_type_option": false,
        "visibility": "prv",
        "date_created": timestamp(chrono::DateTime::UNIX_EPOCH),
        "stats": {
            "member_count": counts.map_or(0, |c| c.opted_in),
            "unsubscribe_count": counts.map_or(0, |c| c.unsubscribed),
        },
    })
}

pub async fn list_lists(state: web::Data<AppState>, req: HttpRequest) -> MailchimpResult {
    caller(&req, Scope::Send, true)?;
    let stats = state.subscriptions.stats().await?;
    let lists: Vec<Value> = subscription_types(&state)
        .iter()
        .map(|t| list_json(&state, t, &stats))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "total_items": lists.len(), "lists": lists })))
}

pub async fn show_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    list_id: web::Path<String>,
) -> MailchimpResult {
    caller(&req, Scope::Send, true)?;
    let list = known_list(&state, &list_id)?;
    let stats = state.subscriptions.stats().await?;
    Ok(HttpResponse::Ok().json(list_json(&state, list, &stats)))
}

fn member_json(list: &SubscriptionType, contact: &Contact, membership: Membership) -> Value {
    let stored = contact.subscription(&list.id);
    let last_changed = stored.map_or(contact.created_at(), |s| s.since);
    let opted_in_at = stored
        .filter(|s| s.status == Status::OptedIn)
        .map(|s| timestamp(s.since));
    json!({
        "id": subscriber_hash(contact.email()),
        "email_address": contact.email().as_str(),
        "unique_email_id": contact.id(),
        "contact_id": contact.id(),
        "email_type": "html",
        "status": membership.as_str(),
        "merge_fields": {},
        "language": contact.locale(),
        "timestamp_opt": opted_in_at.unwrap_or_default(),
        "last_changed": timestamp(last_changed),
        "source": stored.map(|s| s.source),
        "list_id": list.id,
    })
}

/// The member a path's `subscriber_hash` names: an MD5, or the address itself.
fn member_ref(raw: &str) -> Result<MemberRef, Problem> {
    if raw.contains('@') {
        Ok(MemberRef::Address(parse_email(raw, "subscriber_hash")?))
    } else {
        Ok(MemberRef::Hash(raw.to_string()))
    }
}

pub async fn show_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> MailchimpResult {
    caller(&req, Scope::Send, true)?;
    let (list_id, hash) = path.into_inner();
    let list = known_list(&state, &list_id)?;
    match state
        .subscriptions
        .member(&member_ref(&hash)?, &list.id)
        .await?
    {
        Some((contact, membership)) => {
            Ok(HttpResponse::Ok().json(member_json(list, &contact, membership)))
        }
        None => Err(MailchimpError::not_found(
            "The requested resource could not be found.",
        )),
    }
}

#[derive(Deserialize)]
pub struct MarketingPermission {
    marketing_permission_id: Option<String>,
    enabled: Option<bool>,
}

#[derive(Deserialize)]
pub struct MemberBody {
    email_address: Option<String>,
    status: Option<String>,
    status_if_new: Option<String>,
    ip_signup: Option<String>,
    timestamp_signup: Option<String>,
    ip_opt: Option<String>,
    timestamp_opt: Option<String>,
    language: Option<String>,
    marketing_permissions: Option<Vec<MarketingPermission>>,
}

fn parse_status(field: &str, raw: &str) -> Result<MemberStatus, Problem> {
    match raw {
        "subscribed" => Ok(MemberStatus::Subscribed),
        "unsubscribed" => Ok(MemberStatus::Unsubscribed),
        "pending" => Ok(MemberStatus::Pending),
        "cleaned" => Err(Problem::invalid_field(
            field,
            format!("{field}: cleaned is set by bounces, never by a request"),
        )),
        _ => Err(Problem::invalid_field(
            field,
            format!("{field} is one of subscribed, unsubscribed, pending"),
        )),
    }
}

fn parse_ip(field: &str, raw: Option<&str>) -> Result<Option<IpAddr>, Problem> {
    raw.filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<IpAddr>()
                .map_err(|_| Problem::invalid_field(field, format!("{field} is not an IP address")))
        })
        .transpose()
}

/// Mailchimp writes times as `2024-05-01 10:00:00` or in ISO 8601.
fn parse_time(field: &str, raw: Option<&str>) -> Result<Option<String>, Problem> {
    let Some(raw) = raw.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let at = chrono::DateTime::parse_from_rfc3339(raw)
        .map(|at| at.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S").map(|at| at.and_utc())
        })
        .map_err(|_| {
            Problem::invalid_field(
                field,
                format!("{field} is a time such as 2024-05-01 10:00:00 or 2024-05-01T10:00:00Z"),
            )
        })?;
    Ok(Some(timestamp(at)))
}

/// Evidence of consent for a direct `subscribed`, when the body carries all of it:
/// an enabled marketing permission, `ip_opt` and `timestamp_opt`.
fn consent_evidence(body: &MemberBody) -> Result<Option<crate::domain::Evidence>, Problem> {
    parse_time("timestamp_signup", body.timestamp_signup.as_deref())?;
    let ip_opt = parse_ip("ip_opt", body.ip_opt.as_deref())?;
    let timestamp_opt = parse_time("timestamp_opt", body.timestamp_opt.as_deref())?;
    let permissions: Vec<&str> = body
        .marketing_permissions
        .iter()
        .flatten()
        .filter(|p| p.enabled == Some(true))
        .map(|p| p.marketing_permission_id.as_deref().unwrap_or("unnamed"))
        .collect();
    match (permissions.is_empty(), ip_opt, timestamp_opt) {
        (false, Some(ip), Some(at)) => {
            let text = format!(
                "Mailchimp API: marketing permissions {} enabled; opted in from {ip} at {at}",
                permissions.join(", ")
            );
            evidence("marketing_permissions", Some(&text))
        }
        _ => Ok(None),
    }
}

/// One member write, as every write route takes it: the key, the list, the body with its
/// two status fields read (a value that is no Mailchimp status is refused wherever it is
/// given, also in the field this write would not read), then one call to the service.
async fn write_member(
    state: &AppState,
    req: &HttpRequest,
    list_id: &str,
    mode: MemberWriteMode,
    path_member: Option<&str>,
    body: Result<web::Bytes, actix_web::Error>,
) -> MailchimpResult {
    let key: Caller = caller(req, Scope::Admin, true)?;
    let list = known_list(state, list_id)?;
    let body: MemberBody = json_body(body)?;
    let read = |field: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|raw| parse_status(field, raw))
            .transpose()
    };
    let status = read("status", &body.status)?;
    let status_if_new = read("status_if_new", &body.status_if_new)?;
    let email_address = match (&mode, body.email_address.as_deref()) {
        // PATCH may leave the address out; when it names one, it must be the member's.
        (MemberWriteMode::Update, None) => None,
        (_, raw) => Some(parse_email(raw.unwrap_or_default(), "email_address")?),
    };
    let member = match (path_member, &email_address) {
        (None, Some(email)) => MemberRef::Address(email.clone()),
        (Some(raw), Some(email)) if mode == MemberWriteMode::Upsert => {
            let matches = match member_ref(raw)? {
                MemberRef::Address(path) => path == *email,
                MemberRef::Hash(hash) => subscriber_hash(email).eq_ignore_ascii_case(&hash),
            };
            if !matches {
                return Err(Problem::invalid_field(
                    "email_address",
                    "email_address does not match the subscriber_hash of the path",
                )
                .into());
            }
            MemberRef::Address(email.clone())
        }
        (Some(raw), _) => member_ref(raw)?,
        (None, None) => {
            return Err(Problem::invalid_field("email_address", "email_address is required").into())
        }
    };
    let mut meta = admin_meta(state, req, &key);
    // The person's own address at signup, where the caller knows it, is better evidence
    // than the address of the server relaying it.
    if let (Some(ip), true) = (
        parse_ip("ip_signup", body.ip_signup.as_deref())?,
        meta.ip.is_some(),
    ) {
        meta.ip = Some(ip.to_string());
    }
    let request = MemberRequest {
        member,
        write: MemberWrite {
            list: list.clone(),
            mode,
            status,
            status_if_new,
            evidence: consent_evidence(&body)?,
        },
        email_address,
        locale: crate::web::routes::page::request_locale(state, req, body.language.as_deref()),
        meta,
    };
    let (contact, membership) = state.subscriptions.put_member(request).await?;
    Ok(HttpResponse::Ok().json(member_json(list, &contact, membership)))
}

/// `POST /lists/{list_id}/members`: adds a new member; an existing one is Mailchimp's
/// "Member Exists".
pub async fn add_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    list_id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> MailchimpResult {
    write_member(&state, &req, &list_id, MemberWriteMode::Add, None, body).await
}

/// `PUT /lists/{list_id}/members/{subscriber_hash}`: adds or updates. A new member takes
/// `status_if_new` (or `status`), an existing one `status` (or stays as it is).
pub async fn set_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Result<web::Bytes, actix_web::Error>,
) -> MailchimpResult {
    write_member_at(&state, &req, path, MemberWriteMode::Upsert, body).await
}

/// `PATCH /lists/{list_id}/members/{subscriber_hash}`: changes an existing member's
/// status. An address changes only by rectification (`POST /v1/contacts/{email}/rectification`).
pub async fn update_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Result<web::Bytes, actix_web::Error>,
) -> MailchimpResult {
    write_member_at(&state, &req, path, MemberWriteMode::Update, body).await
}

/// A write to the member a path names.
async fn write_member_at(
    state: &AppState,
    req: &HttpRequest,
    path: web::Path<(String, String)>,
    mode: MemberWriteMode,
    body: Result<web::Bytes, actix_web::Error>,
) -> MailchimpResult {
    let (list_id, hash) = path.into_inner();
    write_member(state, req, &list_id, mode, Some(&hash), body).await
}
