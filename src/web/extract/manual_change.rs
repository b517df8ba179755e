//! Request parsing shared by the routes that change subscriptions by hand: the single
//! `PUT …/subscriptions/{type}` and each line of an import.

use serde::Deserialize;

use crate::domain::{EmailAddress, LawfulBasis, Status};
use crate::service::{ManualChange, Subscriptions, MAX_EVIDENCE_CHARS};
use crate::web::problem::Problem;

/// An address from a path or a body field, refused with the field's name.
pub fn parse_email(raw: &str, field: &str) -> Result<EmailAddress, Problem> {
    EmailAddress::parse(raw).map_err(|e| Problem::invalid_field(field, e.to_string()))
}

/// The body of a manual change, as the PUT route and each import line carry it.
#[derive(Deserialize)]
pub struct ManualChangeBody {
    pub status: Option<String>,
    pub lawful_basis: Option<String>,
    pub explanation: Option<String>,
    pub consent_evidence: Option<String>,
    #[serde(default)]
    pub send_confirmation: bool,
}

impl ManualChangeBody {
    /// Parses into a domain change for `type_id`, naming the field at fault.
    pub fn parse(
        self,
        subscriptions: &Subscriptions,
        type_id: &str,
    ) -> Result<ManualChange, Problem> {
        let subscription_type = subscriptions
            .known_type(type_id)
            .map_err(|e| Problem::invalid_field("subscription_type", e.to_string()))?;
        let status = self
            .status
            .ok_or_else(|| Problem::invalid_field("status", "status is required"))?;
        let status: Status = status.parse().map_err(|_| {
            Problem::invalid_field(
                "status",
                "status is one of opted_in, not_subscribed, unsubscribed",
            )
        })?;
        let lawful_basis = self
            .lawful_basis
            .map(|b| b.parse::<LawfulBasis>())
            .transpose()
            .map_err(|_| {
                Problem::invalid_field(
                    "lawful_basis",
                    "lawful_basis is one of the six bases of GDPR Art. 6(1)",
                )
            })?;
        for (field, value) in [
            ("explanation", &self.explanation),
            ("consent_evidence", &self.consent_evidence),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_EVIDENCE_CHARS)
            {
                return Err(Problem::invalid_field(
                    field,
                    format!("at most {MAX_EVIDENCE_CHARS} characters"),
                ));
            }
        }
        let non_empty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        Ok(ManualChange {
            subscription_type,
            status,
            lawful_basis,
            explanation: non_empty(self.explanation),
            consent_evidence: non_empty(self.consent_evidence),
            send_confirmation: self.send_confirmation,
        })
    }
}
