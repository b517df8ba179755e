//! RFC 9457 problem details for `/v1`, and the one place where every service error
//! becomes an answer: each maps to a [`Problem`] here, and the compatible APIs' shapes
//! map from that. Each problem has a stable `type` clients can match on; 5xx bodies
//! never carry internal error text.

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};

use crate::auth::AuthError;
use crate::domain::{ManualChangeError, MemberError, OptInRefused};
use crate::feedback::FeedbackFormatError;
use crate::service::{FeedbackError, RequestError, SignupError, StoreError};

/// The one way an answer says when to come back.
pub fn set_retry_after(response: &mut HttpResponse, secs: u64) {
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
}

fn build_with_retry_after(builder: &mut HttpResponseBuilder, secs: Option<u64>) {
    if let Some(secs) = secs {
        builder.insert_header((RETRY_AFTER, HeaderValue::from(secs)));
    }
}

pub const CONTENT_TYPE: &str = "application/problem+json";

#[derive(Clone, Debug, serde::Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request field at fault, for 400/422 answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
}

impl Problem {
    fn new(status: StatusCode, slug: &str, title: &'static str) -> Self {
        Self {
            type_uri: format!("urn:optin:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail: None,
            field: None,
            retry_after_secs: None,
        }
    }

    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn malformed_body(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-body",
            "The request body could not be read",
        )
        .with_detail(detail)
    }

    /// A field is missing or has a value we cannot accept.
    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        let mut problem = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "A field is not valid",
        )
        .with_detail(detail);
        problem.field = Some(field.to_string());
        problem
    }

    /// The request conflicts with what is stored (e.g. the target address exists).
    pub fn conflict(field: &str, detail: impl Into<String>) -> Self {
        let mut problem = Self::new(
            StatusCode::CONFLICT,
            "conflict",
            "The request conflicts with stored data",
        )
        .with_detail(detail);
        problem.field = Some(field.to_string());
        problem
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
        )
    }

    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported content type",
        )
        .with_detail(format!("send {expected}"))
    }

    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "The request is too large",
        )
        .with_detail(detail)
    }

    /// A webhook body whose provider signature does not verify (feedback inputs).
    pub fn invalid_signature() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid-signature",
            "The signature does not verify",
        )
    }

    /// An SNS message that is authentic but not taken: from a topic that
    /// `feedback.ses_topic_arns` does not list, or sent too long ago (a replay).
    pub fn sns_refused(refusal: &crate::feedback::ses::SnsRefusal) -> Self {
        use crate::feedback::ses::SnsRefusal;
        let (slug, title) = match refusal {
            SnsRefusal::TopicNotAllowed => (
                "sns-topic-not-allowed",
                "Messages from this SNS topic are not taken",
            ),
            SnsRefusal::Stale | SnsRefusal::AheadOfClock => (
                "sns-message-stale",
                "The SNS message is too old or from the future",
            ),
            SnsRefusal::Malformed(format) => return Self::malformed_body(format.to_string()),
        };
        Self::new(StatusCode::FORBIDDEN, slug, title).with_detail(refusal.to_string())
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found")
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut problem = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
        );
        problem.retry_after_secs = Some(retry_after_secs);
        problem
    }

    pub fn unavailable() -> Self {
        let mut problem = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service is temporarily unavailable",
        );
        problem.retry_after_secs = Some(2);
        problem
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        )
    }

    /// `signup.proof_of_work` is on and the signup's `altcha` proof is missing or not
    /// accepted (wrong, expired or used before).
    pub fn proof_of_work(detail: impl Into<String>) -> Self {
        let mut problem = Self::new(
            StatusCode::BAD_REQUEST,
            "proof-of-work",
            "A solved proof of work is required",
        )
        .with_detail(detail);
        problem.field = Some("altcha".into());
        problem
    }

    /// The signup firewall refuses the address: no mail can reach its domain, or the
    /// domain is not accepted.
    pub fn undeliverable_address(detail: impl Into<String>) -> Self {
        let mut problem = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "undeliverable-address",
            "The address cannot receive mail from us",
        )
        .with_detail(detail);
        problem.field = Some("email".into());
        problem
    }

    /// Asking someone to confirm was refused: they blocked confirmation requests.
    pub fn signup_blocked(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "signup-blocked",
            "The person asked not to be sent confirmation requests",
        )
        .with_detail(detail)
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The last part of the `type`, which the compatible APIs map their shapes from.
    pub fn slug(&self) -> &str {
        self.type_uri.rsplit(':').next().unwrap_or_default()
    }

    /// Starts an answer with this problem's status and `Retry-After`.
    pub fn response_builder(&self, status: StatusCode) -> HttpResponseBuilder {
        let mut builder = HttpResponse::build(status);
        build_with_retry_after(&mut builder, self.retry_after_secs);
        builder
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.title, self.status)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        Problem::status_code(self)
    }

    fn error_response(&self) -> HttpResponse {
        self.response_builder(self.status_code())
            .content_type(CONTENT_TYPE)
            .json(self)
    }
}

impl From<ManualChangeError> for Problem {
    fn from(error: ManualChangeError) -> Self {
        let detail = error.to_string();
        match error {
            ManualChangeError::BasisRequired => Problem::invalid_field("lawful_basis", detail),
            ManualChangeError::EvidenceRequired
            | ManualChangeError::Unsubscribed
            | ManualChangeError::Erased => Problem::invalid_field("consent_evidence", detail),
            ManualChangeError::ConfirmationNeedsOptIn => {
                Problem::invalid_field("send_confirmation", detail)
            }
            ManualChangeError::OptIn(OptInRefused::Blocked) => Problem::signup_blocked(detail),
            ManualChangeError::OptIn(OptInRefused::MailLimitReached) => {
                Problem::rate_limited(24 * 3600).with_detail(detail)
            }
            ManualChangeError::ConsentedAtWithoutConsent
            | ManualChangeError::ConsentedAtInFuture => {
                Problem::invalid_field("consented_at", detail)
            }
        }
    }
}

impl From<RequestError> for Problem {
    fn from(error: RequestError) -> Self {
        let detail = error.to_string();
        match error {
            RequestError::NotFound => Problem::not_found().with_detail(detail),
            RequestError::UnknownType(_) => Problem::invalid_field("subscription_type", detail),
            RequestError::Refused(refused) => refused.into(),
            RequestError::Member(MemberError::NotAMember) => {
                Problem::not_found().with_detail("The requested resource could not be found.")
            }
            RequestError::Member(MemberError::StatusRequired { field }) => {
                Problem::invalid_field(field, detail)
            }
            RequestError::Member(_) => Problem::invalid_field("email_address", detail),
            RequestError::TargetExists => Problem::conflict("new_email", detail),
            RequestError::SameAddress => Problem::invalid_field("new_email", detail),
            RequestError::Moved(_) => Problem::conflict("email", detail),
            RequestError::Store(e) => e.into(),
        }
    }
}

impl From<FeedbackFormatError> for Problem {
    fn from(error: FeedbackFormatError) -> Self {
        let mut problem = Problem::malformed_body(error.to_string());
        problem.field = error.field.map(str::to_string);
        problem
    }
}

impl From<FeedbackError> for Problem {
    fn from(error: FeedbackError) -> Self {
        match error {
            FeedbackError::Format(e) => e.into(),
            FeedbackError::Signature(reason) => {
                tracing::debug!(%reason, "feedback signature refused");
                Problem::invalid_signature()
            }
            FeedbackError::SnsRefused(refusal) => {
                tracing::warn!(%refusal, "SNS message refused");
                Problem::sns_refused(&refusal)
            }
            // SNS retries a delivery that did not get a 2xx.
            FeedbackError::Upstream(what) => Problem::unavailable().with_detail(what),
            FeedbackError::Store(e) => e.into(),
        }
    }
}

impl From<SignupError> for Problem {
    fn from(error: SignupError) -> Self {
        let detail = error.to_string();
        match error {
            SignupError::NoTypes | SignupError::UnknownType(_) => {
                Problem::invalid_field("subscription_types", detail)
            }
            SignupError::UnknownNotice(_) => Problem::invalid_field("notice_version", detail),
            SignupError::RateLimited { retry_after_secs } => {
                Problem::rate_limited(retry_after_secs)
            }
            SignupError::ProofOfWork(_) => Problem::proof_of_work(detail),
            SignupError::Undeliverable(_) => Problem::undeliverable_address(detail),
            SignupError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "store unavailable");
                metrics::counter!("optin_store_errors_total", "kind" => "unavailable").increment(1);
                Problem::unavailable()
            }
            StoreError::Conflict => {
                metrics::counter!("optin_store_errors_total", "kind" => "conflict").increment(1);
                Problem::unavailable()
                    .with_detail("the contact is being changed by another request; try again")
            }
            StoreError::Corrupt(reason) => {
                tracing::error!(%reason, "stored data could not be decoded");
                metrics::counter!("optin_store_errors_total", "kind" => "corrupt").increment(1);
                Problem::internal()
            }
        }
    }
}

impl From<AuthError> for Problem {
    fn from(error: AuthError) -> Self {
        let (status, slug, title) = match error {
            AuthError::Missing => (
                StatusCode::UNAUTHORIZED,
                "missing-api-key",
                "An API key is required",
            ),
            AuthError::Invalid => (
                StatusCode::UNAUTHORIZED,
                "invalid-api-key",
                "The API key is not valid",
            ),
            AuthError::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "insufficient-scope",
                "The API key may not do this",
            ),
        };
        Problem::new(status, slug, title).with_detail(error.to_string())
    }
}

/// Turns actix's JSON extractor errors into problems, so even a body that never reached a
/// handler is answered in our shape.
pub fn json_error(
    error: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    let problem = match &error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            Problem::payload_too_large("the body is larger than the configured limit")
        }
        JsonPayloadError::ContentType => Problem::unsupported_media_type("application/json"),
        JsonPayloadError::Deserialize(e) if e.is_data() => match missing_field(&e.to_string()) {
            Some(field) => Problem::invalid_field(&field, format!("{field} is required")),
            None => Problem::invalid_field("body", e.to_string()),
        },
        other => Problem::malformed_body(other.to_string()),
    };
    problem.into()
}

/// Query strings that cannot be decoded are answered as problems too.
pub fn query_error(
    error: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    Problem::malformed_body(format!("the query string could not be read: {error}")).into()
}

/// Pulls the field name out of serde's "missing field `x`" message.
pub fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next().map(str::to_string)
}
