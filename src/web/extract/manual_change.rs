//! Request parsing shared by the routes that change subscriptions by hand: the single
//! `PUT …/subscriptions/{type}`, each line of an import, and the console's form.

use serde::Deserialize;

use crate::domain::{Catalog, EmailAddress, Evidence, LawfulBasis, ManualChange, Source, Status};
use crate::web::problem::Problem;

/// An address from a path or a body field, refused with the field's name.
pub fn parse_email(raw: &str, field: &str) -> Result<EmailAddress, Problem> {
    EmailAddress::parse(raw).map_err(|e| Problem::invalid_field(field, e.to_string()))
}

/// Free text kept as proof, refused with the field's name when too long.
pub fn parse_evidence(raw: Option<&str>, field: &str) -> Result<Option<Evidence>, Problem> {
    Evidence::parse(raw).map_err(|e| Problem::invalid_field(field, format!("{field}: {e}")))
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
    /// RFC 3339: when the person gave the consent, where not now.
    pub consented_at: Option<String>,
}

impl ManualChangeBody {
    /// Parses into a domain change for `type_id`, recorded with `source`, naming the
    /// field at fault.
    pub fn parse(
        self,
        catalog: &Catalog,
        type_id: &str,
        source: Source,
    ) -> Result<ManualChange, Problem> {
        let subscription_type = catalog
            .lookup(type_id)
            .map_err(|e| {
                Problem::invalid_field("subscription_type", format!("subscription_type: {e}"))
            })?
            .clone();
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
        let consented_at = self
            .consented_at
            .map(|at| chrono::DateTime::parse_from_rfc3339(at.trim()))
            .transpose()
            .map_err(|_| {
                Problem::invalid_field(
                    "consented_at",
                    "consented_at is a time in RFC 3339, e.g. 2025-03-14T09:26:53Z",
                )
            })?
            .map(|at| at.with_timezone(&chrono::Utc));
        Ok(ManualChange {
            consented_at,
            subscription_type,
            status,
            lawful_basis,
            explanation: parse_evidence(self.explanation.as_deref(), "explanation")?,
            consent_evidence: parse_evidence(self.consent_evidence.as_deref(), "consent_evidence")?,
            send_confirmation: self.send_confirmation,
            source,
        })
    }
}
