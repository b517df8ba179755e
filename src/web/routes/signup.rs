//! `POST /v1/signups` (JSON) and `POST /signup` (HTML form). Both answer the same way
//! whatever the address's state, so nobody can learn who is subscribed. The form's
//! pages (the form, the form again, "Did you mean …?") are in [`super::hosted`].

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::hosted::{self, FormAnswer, FormValues};
use super::page;
use crate::domain::{EmailAddress, Evidence, SignupDoor};
use crate::service::{NoticeVersions, SignupAnswer, SignupError, SignupRequest, TypoCheck};
use crate::tokens::SignupRef;
use crate::web::extract::api_key::SignupCaller;
use crate::web::extract::client_ip::limit_network;
use crate::web::extract::json_body::{from_object, JsonObject};
use crate::web::pages::{ErrorKey, FormErrors};
use crate::web::problem::{set_retry_after, Problem};
use crate::web::AppState;

#[derive(Deserialize)]
pub struct SignupSource {
    form_id: Option<String>,
    page_url: Option<String>,
}

#[derive(Deserialize)]
pub struct SignupBody {
    email: Option<String>,
    subscription_types: Option<Vec<String>>,
    locale: Option<String>,
    notice_version: Option<NoticeVersions>,
    /// Read as a value first: it must be an object (or absent/null), never an array.
    source: Option<serde_json::Value>,
    /// The solved proof of work, when `signup.proof_of_work` is on.
    altcha: Option<String>,
}

#[derive(Deserialize)]
pub struct SignupForm {
    email: Option<String>,
    #[serde(default)]
    subscription_types: Vec<String>,
    locale: Option<String>,
    notice_version: Option<String>,
    form_id: Option<String>,
    page_url: Option<String>,
    /// Honeypot: hidden from people, filled in by naive bots.
    #[serde(default)]
    website: String,
    /// Set by optin's own form: the funnel counts it as `hosted`, and it may ask "Did
    /// you mean …?".
    hosted_form: Option<String>,
    /// The hosted form's `?types=`, so that the form again shows the same boxes.
    types: Option<String>,
    /// The address the person chose when asked "Did you mean …?".
    email_choice: Option<String>,
    /// The solved proof of work (the hosted form's solver and the ALTCHA widget).
    altcha: Option<String>,
    /// The hosted form's signed render time.
    rendered_at: Option<String>,
}

struct RawSignup {
    email: Option<String>,
    types: Vec<String>,
    locale: Option<String>,
    notice_version: NoticeVersions,
    form_id: Option<String>,
    page_url: Option<String>,
    door: SignupDoor,
    typos: TypoCheck,
    proof: Option<String>,
    /// The caller's `signup` key, by name; `None` for a public signup.
    key_name: Option<String>,
    form_rendered: Option<String>,
}
#[derive(Debug, thiserror::Error)]
enum InvalidSignup {
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error(transparent)]
    Signup(#[from] SignupError),
}

impl From<InvalidSignup> for Problem {
    fn from(error: InvalidSignup) -> Self {
        match error {
            InvalidSignup::Field { field, reason } => Problem::invalid_field(field, reason),
            InvalidSignup::Signup(error) => error.into(),
        }
    }
}

fn evidence(field: &'static str, raw: Option<String>) -> Result<Option<Evidence>, InvalidSignup> {
    Evidence::parse(raw.as_deref()).map_err(|e| InvalidSignup::Field {
        field,
        reason: e.to_string(),
    })
}

/// Parses a signup and runs it; shared by the JSON and the form route.
async fn run_signup(
    state: &AppState,
    req: &HttpRequest,
    raw: RawSignup,
) -> Result<SignupAnswer, InvalidSignup> {
    let email = raw.email.ok_or(InvalidSignup::Field {
        field: "email",
        reason: "email is required".into(),
    })?;
    let email = EmailAddress::parse(&email).map_err(|e| InvalidSignup::Field {
        field: "email",
        reason: e.to_string(),
    })?;
    let request = SignupRequest {
        email,
        types: raw.types,
        locale: page::request_locale(state, req, raw.locale.as_deref()),
        notice_versions: raw.notice_version,
        door: raw.door,
        typos: raw.typos,
        form_id: evidence("source.form_id", raw.form_id)?,
        page_url: evidence("source.page_url", raw.page_url)?,
        meta: state.meta(req, raw.key_name.as_deref()),
        client_network: state.client_ip(req).map(limit_network),
        proof: raw.proof,
        keyed: raw.key_name.is_some(),
        form_rendered: raw.form_rendered,
    };
    Ok(state.subscriptions.sign_up(request).await?)
}

pub async fn subscribe_json(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: SignupCaller,
    body: JsonObject<SignupBody>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let source: Option<SignupSource> = match body.source {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(from_object(value, "source")?),
    };
    let (form_id, page_url) = source.map_or((None, None), |s| (s.form_id, s.page_url));
    let raw = RawSignup {
        email: body.email,
        types: body.subscription_types.ok_or_else(|| {
            Problem::invalid_field("subscription_types", "subscription_types is required")
        })?,
        locale: body.locale,
        notice_version: body.notice_version.unwrap_or_default(),
        form_id,
        page_url,
        door: SignupDoor::Api,
        typos: TypoCheck::Skip,
        proof: body.altcha,
        key_name: caller.0.map(|caller| caller.name),
        form_rendered: None,
    };
    run_signup(&state, &req, raw).await?;
    Ok(HttpResponse::Accepted().json(json!({ "status": "pending_confirmation" })))
}

/// `POST /signup`: a 303 to the thank-you page or `/signup/received` when the signup is
/// taken (the same whatever the address's state), the form again when it is not (422,
/// the message beside the field), or "Did you mean …?" (200). Every answer sets the
/// binding cookie: to what the signup created, else to what the browser held already.
pub async fn subscribe_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let (mut response, reference) = answer_form(&state, &req, &body).await;
    hosted::let_frame(&state.site, &mut response);
    let reference = reference
        .or_else(|| hosted::binding(&state, &req))
        .unwrap_or_else(|| state.subscriptions.ignored_signup());
    hosted::set_binding(
        &mut response,
        &state.site,
        &reference,
        state.subscriptions.now(),
    );
    response
}

/// The answer to a form post, and the reference of the signup it took.
async fn answer_form(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> (HttpResponse, Option<SignupRef>) {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        let page = page::error_page(
            state,
            req,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKey::BadRequest,
        );
        return (page, None);
    }
    let Ok(form) = serde_html_form::from_bytes::<SignupForm>(body) else {
        // A field the form never sends twice came twice: show what can be read.
        let errors = FormErrors {
            form: Some("signup_error_form"),
            ..FormErrors::default()
        };
        return form_again(
            state,
            req,
            StatusCode::UNPROCESSABLE_ENTITY,
            &salvaged_values(body),
            errors,
        );
    };
    if !form.website.is_empty() {
        // A bot filled the honeypot: answer exactly as for a person, do nothing.
        tracing::debug!("signup honeypot filled; ignored");
        metrics::counter!("optin_signups_ignored_total", "reason" => "honeypot").increment(1);
        let reference = state.subscriptions.ignored_signup();
        return (
            received(state, form.locale.as_deref(), &reference),
            Some(reference),
        );
    }
    let values = FormValues {
        email: form
            .email_choice
            .clone()
            .or_else(|| form.email.clone())
            .unwrap_or_default(),
        ticked: form.subscription_types.clone(),
        shown_types: form.types.clone().unwrap_or_default(),
        locale: form.locale.clone(),
        form_id: form.form_id.clone(),
        page_url: form.page_url.clone(),
    };
    let errors = field_errors(&values);
    if errors.email.is_some() || errors.types.is_some() {
        return form_again(
            state,
            req,
            StatusCode::UNPROCESSABLE_ENTITY,
            &values,
            errors,
        );
    }
    let hosted_form = form.hosted_form.is_some();
    // The hosted form posts the version beside each checkbox; other forms one for all.
    let per_type = notice_versions_by_type(body);
    let notice_version = if per_type.is_empty() {
        form.notice_version
            .map_or(NoticeVersions::Current, NoticeVersions::All)
    } else {
        NoticeVersions::PerType(per_type)
    };
    let raw = RawSignup {
        email: Some(values.email.clone()),
        types: form.subscription_types,
        locale: form.locale.clone(),
        notice_version,
        form_id: form.form_id,
        page_url: form.page_url,
        door: if hosted_form {
            SignupDoor::HostedForm
        } else {
            SignupDoor::Form
        },
        typos: if hosted_form && form.email_choice.is_none() {
            TypoCheck::Ask
        } else {
            TypoCheck::Skip
        },
        proof: form.altcha,
        key_name: None,
        form_rendered: form.rendered_at,
    };
    let refused_as = |status: StatusCode, key: &'static str, field: Field| {
        let mut errors = FormErrors::default();
        match field {
            Field::Email => errors.email = Some(key),
            Field::Types => errors.types = Some(key),
            Field::Form => errors.form = Some(key),
        }
        form_again(state, req, status, &values, errors)
    };
    let refused = |key, field| refused_as(StatusCode::UNPROCESSABLE_ENTITY, key, field);
    match run_signup(state, req, raw).await {
        Ok(SignupAnswer::Received(reference)) => (
            received(state, form.locale.as_deref(), &reference),
            Some(reference),
        ),
        Ok(SignupAnswer::DidYouMean(suggestions)) => {
            let answer = FormAnswer {
                errors: FormErrors::default(),
                suggestions: suggestions.iter().map(|e| e.as_str().to_string()).collect(),
            };
            (
                hosted::render_form(state, req, StatusCode::OK, &values, answer),
                None,
            )
        }
        Err(InvalidSignup::Field { field: "email", .. }) => {
            refused("signup_error_email_invalid", Field::Email)
        }
        Err(InvalidSignup::Field { .. }) => refused("signup_error_form", Field::Form),
        Err(InvalidSignup::Signup(SignupError::NoTypes)) => {
            refused("signup_error_no_types", Field::Types)
        }
        Err(InvalidSignup::Signup(SignupError::UnknownNotice(_))) => {
            refused("signup_error_notice_changed", Field::Form)
        }
        Err(InvalidSignup::Signup(SignupError::UnknownType(_))) => {
            refused("signup_error_form", Field::Form)
        }
        Err(InvalidSignup::Signup(SignupError::ProofOfWork(refusal))) => {
            tracing::debug!(%refusal, "form signup without an accepted proof of work");
            refused_as(StatusCode::BAD_REQUEST, "signup_proof_failed", Field::Form)
        }
        Err(InvalidSignup::Signup(SignupError::Undeliverable(_))) => {
            refused("signup_undeliverable", Field::Email)
        }
        Err(InvalidSignup::Signup(SignupError::Store(e))) => {
            (page::store_error_page(state, req, e), None)
        }
        Err(InvalidSignup::Signup(SignupError::RateLimited {
            retry_after_secs: retry_after,
        })) => {
            let mut page = page::error_page(
                state,
                req,
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKey::TooManyRequests,
            );
            set_retry_after(&mut page, retry_after);
            (page, None)
        }
    }
}

/// The form again (422, or 400 for a refused proof of work), with the messages beside
/// its fields.
fn form_again(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    values: &FormValues,
    errors: FormErrors,
) -> (HttpResponse, Option<SignupRef>) {
    let answer = FormAnswer {
        errors,
        suggestions: Vec::new(),
    };
    let page = hosted::render_form(state, req, status, values, answer);
    (page, None)
}

/// Which part of the form a message goes beside.
#[derive(Clone, Copy)]
enum Field {
    Email,
    Types,
    Form,
}

/// What the form lacks before anything is asked of the service.
fn field_errors(values: &FormValues) -> FormErrors {
    let email = if values.email.trim().is_empty() {
        Some("signup_error_email_missing")
    } else if EmailAddress::parse(&values.email).is_err() {
        Some("signup_error_email_invalid")
    } else {
        None
    };
    FormErrors {
        email,
        types: values.ticked.is_empty().then_some("signup_error_no_types"),
        form: None,
    }
}

/// The values of a form body that did not parse as a whole: the first of each field.
fn salvaged_values(body: &[u8]) -> FormValues {
    let mut values = FormValues::default();
    for (key, value) in url::form_urlencoded::parse(body) {
        let value = value.into_owned();
        match key.as_ref() {
            "email" if values.email.is_empty() => values.email = value,
            "subscription_types" => values.ticked.push(value),
            "types" if values.shown_types.is_empty() => values.shown_types = value,
            "locale" if values.locale.is_none() => values.locale = Some(value),
            _ => {}
        }
    }
    values
}

/// The 303 after a signup was taken: to `server.thank_you_url`, or to optin's "check
/// your inbox", which asks for the code (its reference goes along, signed).
fn received(state: &AppState, locale: Option<&str>, reference: &SignupRef) -> HttpResponse {
    let target = state.site.thank_you_url.clone().unwrap_or_else(|| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(locale) = locale {
            query.append_pair("locale", locale);
        }
        query.append_pair("ref", &reference.sign(&state.site.signer));
        format!("/signup/received?{}", query.finish())
    });
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target))
        .finish()
}

/// The `notice_version.<type>` fields of a form: the notice version shown beside each
/// type's checkbox.
pub(super) fn notice_versions_by_type(body: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body)
        .filter_map(|(key, value)| {
            key.strip_prefix("notice_version.")
                .map(|type_id| (type_id.to_string(), value.into_owned()))
        })
        .collect()
}

#[derive(Deserialize)]
pub struct SignupFormQuery {
    /// Comma-separated type ids; all types when absent.
    types: Option<String>,
    locale: Option<String>,
}

/// `GET /signup?types=a,b&locale=nl`: optin's own form, showing for each type the notice
/// that a tick agrees to. Framed only by `server.embed_allowed_origins`.
pub async fn show_signup_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let Ok(query) = serde_html_form::from_str::<SignupFormQuery>(req.query_string()) else {
        return page::error_page(&state, &req, StatusCode::BAD_REQUEST, ErrorKey::BadRequest);
    };
    let values = FormValues {
        shown_types: query.types.unwrap_or_default(),
        locale: query.locale,
        ..FormValues::default()
    };
    hosted::render_form(&state, &req, StatusCode::OK, &values, FormAnswer::default())
}
