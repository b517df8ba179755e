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

use super::{admin_meta, caller, default_locale, json_body, subscription_type, timestamp};
use crate::auth::Scope;
use crate::domain::{
    Contact, EmailAddress, LawfulBasis, Source, Status, SubscriptionType, SubscriptionTypeId,
};
use crate::service::{
    subscriber_hash, ManualChange, ManualChangeError, NoticeVersions, SignupError, SignupRequest,
};
use crate::store::StoreError;
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

impl From<ManualChangeError> for MailchimpError {
    fn from(error: ManualChangeError) -> Self {
        match error {
            // Mailchimp's own title for re-adding someone who was deleted for good.
            ManualChangeError::Erased => {
                let detail = error.to_string();
                Self::titled(
                    "Forgotten Email Not Subscribed",
                    Problem::invalid_field("status", detail),
                )
            }
            other => Problem::from(other).into(),
        }
    }
}

impl From<SignupError> for MailchimpError {
    fn from(error: SignupError) -> Self {
        match error {
            SignupError::Store(e) => e.into(),
            SignupError::RateLimited { retry_after_secs } => {
                Problem::rate_limited(retry_after_secs).into()
            }
            // The list was checked already; a configuration change in between is still
            // the request's list.
            other => Problem::invalid_field("list_id", other.to_string()).into(),
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
        let slug = self.problem.type_uri.rsplit(':').next().unwrap_or_default();
        let title = self.title.unwrap_or(match (status.as_u16(), slug) {
            (400, "malformed-body") => "JSON Parse Error",
            (400, _) => "Invalid Resource",
            (401, "missing-api-key") => "API Key Missing",
            (401, _) => "API Key Invalid",
            (403, _) => "Forbidden",
            (404, _) => "Resource Not Found",
            (405, _) => "Method Not Allowed",
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
        let mut response = HttpResponse::build(status);
        response.content_type(crate::web::problem::CONTENT_TYPE);
        if let Some(secs) = self.problem.retry_after_secs {
            response.insert_header(("Retry-After", secs.to_string()));
        }
        response.json(body)
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
    let lists: Vec<Value> = state
        .subscriptions
        .config()
        .catalog
        .all()
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

/// The contact's status on a list, or `None` when it is no member of it (no status and
/// no pending confirmation for that type). A confirmation asked for after the latest
/// status change shows as `pending`; one from before it (an unsubscribe since) does not.
fn member_status(contact: &Contact, type_id: &SubscriptionTypeId) -> Option<&'static str> {
    let since = contact.subscriptions.get(type_id).map(|s| s.since);
    let pending = contact
        .pending
        .iter()
        .any(|p| p.types.contains(type_id) && since.is_none_or(|since| p.signup.at > since));
    let status = contact.status(type_id);
    if status == Status::NotSubscribed && !pending {
        return None;
    }
    Some(if contact.is_unreachable() {
        "cleaned"
    } else {
        match status {
            Status::OptedIn => "subscribed",
            _ if pending => "pending",
            Status::Unsubscribed => "unsubscribed",
            Status::NotSubscribed => "pending",
        }
    })
}

fn member_json(list: &SubscriptionType, contact: &Contact, status: &str) -> Value {
    let stored = contact.subscriptions.get(&list.id);
    let last_changed = stored.map_or(contact.created_at, |s| s.since);
    let opted_in_at = stored
        .filter(|s| s.status == Status::OptedIn)
        .map(|s| timestamp(s.since));
    json!({
        "id": subscriber_hash(&contact.email),
        "email_address": contact.email.as_str(),
        "unique_email_id": contact.id,
        "contact_id": contact.id,
        "email_type": "html",
        "status": status,
        "merge_fields": {},
        "language": contact.locale,
        "timestamp_opt": opted_in_at.unwrap_or_default(),
        "last_changed": timestamp(last_changed),
        "source": stored.map(|s| s.source),
        "list_id": list.id,
    })
}

/// The contact a path's `subscriber_hash` names: an MD5 through the member index, or
/// the address itself.
async fn find_contact(state: &AppState, raw: &str) -> Result<Option<Contact>, MailchimpError> {
    if raw.contains('@') {
        let email = parse_email(raw, "subscriber_hash")?;
        Ok(state.subscriptions.contact(&email).await?)
    } else {
        Ok(state.subscriptions.contact_by_subscriber_hash(raw).await?)
    }
}

/// The member's answer: 404 when the contact is no member of the list.
fn member_answer(list: &SubscriptionType, contact: Option<&Contact>) -> MailchimpResult {
    let member = contact.and_then(|c| member_status(c, &list.id).map(|s| (c, s)));
    match member {
        Some((contact, status)) => Ok(HttpResponse::Ok().json(member_json(list, contact, status))),
        None => Err(MailchimpError::not_found(
            "The requested resource could not be found.",
        )),
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
    let contact = find_contact(&state, &hash).await?;
    member_answer(list, contact.as_ref())
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

/// What a request asks a member's status to become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wanted {
    Subscribed,
    Unsubscribed,
    Pending,
}

fn parse_status(field: &str, raw: &str) -> Result<Wanted, Problem> {
    match raw {
        "subscribed" => Ok(Wanted::Subscribed),
        "unsubscribed" => Ok(Wanted::Unsubscribed),
        "pending" => Ok(Wanted::Pending),
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

/// The body's fields that matter to a status write, checked.
struct MemberWrite {
    email: EmailAddress,
    ip_signup: Option<IpAddr>,
    language: Option<String>,
    /// Evidence of consent for a direct `subscribed`, when the body carries all of it.
    evidence: Option<String>,
}

impl MemberWrite {
    fn parse(email: EmailAddress, body: &MemberBody) -> Result<Self, Problem> {
        let ip_signup = parse_ip("ip_signup", body.ip_signup.as_deref())?;
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
        let evidence = match (permissions.is_empty(), ip_opt, timestamp_opt) {
            (false, Some(ip), Some(at)) => {
                let text = format!(
                    "Mailchimp API: marketing permissions {} enabled; opted in from {ip} at {at}",
                    permissions.join(", ")
                );
                Some(
                    text.chars()
                        .take(crate::service::MAX_EVIDENCE_CHARS)
                        .collect(),
                )
            }
            _ => None,
        };
        Ok(Self {
            email,
            ip_signup,
            language: body.language.clone(),
            evidence,
        })
    }
}

/// Applies one status through the service: a manual change (`admin_api`) or a double
/// opt-in (`signup_api`), the same operations as optin's own API.
async fn apply_status(
    state: &AppState,
    req: &HttpRequest,
    key: &Caller,
    list: &SubscriptionType,
    write: &MemberWrite,
    wanted: Wanted,
) -> Result<(), MailchimpError> {
    let subscriptions = &state.subscriptions;
    let mut meta = admin_meta(state, req, key);
    match (wanted, &write.evidence) {
        (Wanted::Unsubscribed, _) => {
            let change = manual_change(list, Status::Unsubscribed, None);
            subscriptions
                .change_manually(&write.email, &change, Source::AdminApi, &meta)
                .await?;
        }
        (Wanted::Subscribed, Some(evidence)) => {
            let change = manual_change(list, Status::OptedIn, Some(evidence.clone()));
            subscriptions
                .change_manually(&write.email, &change, Source::AdminApi, &meta)
                .await?;
        }
        (Wanted::Subscribed | Wanted::Pending, _) => {
            // The person's own address at signup, where the caller knows it, is better
            // evidence than the address of the server relaying it.
            if let (Some(ip), true) = (write.ip_signup, meta.ip.is_some()) {
                meta.ip = Some(ip.to_string());
            }
            let locale =
                crate::web::routes::page::request_locale(state, req, write.language.as_deref());
            let (types, notices) = subscriptions.resolve_signup_types(
                &[list.id.to_string()],
                &locale,
                &NoticeVersions::Current,
            )?;
            subscriptions
                .sign_up(SignupRequest {
                    email: write.email.clone(),
                    types,
                    locale,
                    notices,
                    origin: Source::SignupApi,
                    form_id: None,
                    page_url: None,
                    meta,
                })
                .await?;
        }
    }
    Ok(())
}

fn manual_change(
    list: &SubscriptionType,
    status: Status,
    evidence: Option<String>,
) -> ManualChange {
    ManualChange {
        subscription_type: list.id.clone(),
        status,
        lawful_basis: evidence.as_ref().map(|_| LawfulBasis::Consent),
        explanation: None,
        consent_evidence: evidence,
        send_confirmation: false,
    }
}

/// The member after a write. A double opt-in that stored nothing (the person blocked
/// confirmation requests, or had as many as allowed today) is not a member: Mailchimp's
/// "Member In Compliance State" says so.
async fn answer_after_write(
    state: &AppState,
    list: &SubscriptionType,
    email: &EmailAddress,
) -> MailchimpResult {
    let contact = state.subscriptions.contact(email).await?;
    member_answer(list, contact.as_ref()).map_err(|_| {
        MailchimpError::titled(
            "Member In Compliance State",
            Problem::invalid_field(
                "status",
                "status: no confirmation mail could be sent to this address now (it asked not to get confirmation requests, or had as many as allowed today)",
            ),
        )
    })
}

/// The address a write is about: the body's, which must match the path's hash or address.
fn write_address(path_hash: Option<&str>, body: &MemberBody) -> Result<EmailAddress, Problem> {
    let email = parse_email(
        body.email_address.as_deref().unwrap_or_default(),
        "email_address",
    )?;
    let Some(path_hash) = path_hash else {
        return Ok(email);
    };
    let matches = if path_hash.contains('@') {
        parse_email(path_hash, "subscriber_hash")? == email
    } else {
        subscriber_hash(&email).eq_ignore_ascii_case(path_hash)
    };
    if matches {
        Ok(email)
    } else {
        Err(Problem::invalid_field(
            "email_address",
            "email_address does not match the subscriber_hash of the path",
        ))
    }
}

/// What every member write starts with: an admin key, a known list, the body, and its
/// two status fields read.
struct MemberRequest<'a> {
    key: Caller,
    list: &'a SubscriptionType,
    body: MemberBody,
    status: Option<Wanted>,
    status_if_new: Option<Wanted>,
}

/// Checks the key and the list and reads the body. A value that is no Mailchimp status is
/// refused wherever it is given, also in the field this write would not read
/// (`status_if_new` for an existing member, or on POST).
async fn member_write_request<'a>(
    state: &'a AppState,
    req: &HttpRequest,
    list_id: &str,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<MemberRequest<'a>, MailchimpError> {
    let key = caller(req, Scope::Admin, true)?;
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
    Ok(MemberRequest {
        key,
        list,
        body,
        status,
        status_if_new,
    })
}

/// `POST /lists/{list_id}/members`: adds a new member; an existing one is Mailchimp's
/// "Member Exists".
pub async fn add_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    list_id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> MailchimpResult {
    let MemberRequest {
        key,
        list,
        body,
        status,
        ..
    } = member_write_request(&state, &req, &list_id, body).await?;
    let email = write_address(None, &body)?;
    let wanted = status.ok_or_else(|| Problem::invalid_field("status", "status is required"))?;
    let write = MemberWrite::parse(email, &body)?;
    let existing = state.subscriptions.contact(&write.email).await?;
    if existing
        .as_ref()
        .and_then(|c| member_status(c, &list.id))
        .is_some()
    {
        return Err(MailchimpError::titled(
            "Member Exists",
            Problem::invalid_field(
                "email_address",
                format!(
                    "{} is already a list member. Use PUT to insert or update list members.",
                    write.email.as_str()
                ),
            ),
        ));
    }
    apply_status(&state, &req, &key, list, &write, wanted).await?;
    answer_after_write(&state, list, &write.email).await
}

/// `PUT /lists/{list_id}/members/{subscriber_hash}`: adds or updates. A new member takes
/// `status_if_new` (or `status`), an existing one `status` (or stays as it is).
pub async fn set_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Result<web::Bytes, actix_web::Error>,
) -> MailchimpResult {
    let (list_id, hash) = path.into_inner();
    let MemberRequest {
        key,
        list,
        body,
        status,
        status_if_new,
    } = member_write_request(&state, &req, &list_id, body).await?;
    let email = write_address(Some(&hash), &body)?;
    let write = MemberWrite::parse(email, &body)?;
    let existing = state.subscriptions.contact(&write.email).await?;
    let is_member = existing
        .as_ref()
        .and_then(|c| member_status(c, &list.id))
        .is_some();
    let wanted = if is_member {
        status
    } else {
        Some(status_if_new.or(status).ok_or_else(|| {
            Problem::invalid_field(
                "status_if_new",
                "status_if_new is required for an address that is not a list member",
            )
        })?)
    };
    if let Some(wanted) = wanted {
        apply_status(&state, &req, &key, list, &write, wanted).await?;
    }
    answer_after_write(&state, list, &write.email).await
}

/// `PATCH /lists/{list_id}/members/{subscriber_hash}`: changes an existing member's
/// status. An address changes only by rectification (`POST /v1/contacts/{email}/rectification`).
pub async fn update_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Result<web::Bytes, actix_web::Error>,
) -> MailchimpResult {
    let (list_id, hash) = path.into_inner();
    let MemberRequest {
        key,
        list,
        body,
        status,
        ..
    } = member_write_request(&state, &req, &list_id, body).await?;
    let contact = find_contact(&state, &hash)
        .await?
        .filter(|c| member_status(c, &list.id).is_some())
        .ok_or_else(|| MailchimpError::not_found("The requested resource could not be found."))?;
    if let Some(raw) = body.email_address.as_deref() {
        if parse_email(raw, "email_address")? != contact.email {
            return Err(Problem::invalid_field(
                "email_address",
                "email_address: optin changes an address only by rectification (POST /v1/contacts/{email}/rectification)",
            )
            .into());
        }
    }
    let write = MemberWrite::parse(contact.email.clone(), &body)?;
    if let Some(wanted) = status {
        apply_status(&state, &req, &key, list, &write, wanted).await?;
    }
    answer_after_write(&state, list, &write.email).await
}
