//! Signing: the receipt claims as a compact JWS (`alg` `EdDSA`, `kid`, `typ` `JWT`) made
//! by jsonwebtoken, and the SHA-256 the opt-in event records.
//!
//! `typ` is `JWT` because the payload is a JWT claims set (`iss`, `iat`, `jti`): every
//! JWT tool shows and checks it, and `iss` tells a verifier where the keys are. There is
//! deliberately no `exp`: a receipt stays proof of the consent it records after that
//! consent lapses, so JWT libraries must not refuse it then; the consent's own end is
//! in the payload (`dpv:hasDuration`).

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header};
use sha2::{Digest, Sha256};
use url::Url;
use uuid::Uuid;

use super::jwks::Jwks;
use super::keys::ReceiptKeys;
use super::payload::{receipt_claims, Controller, Issuance, ReceiptFacts};

/// One signed receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The receipt's own id (`jti`, `dpv:hasIdentifier`).
    pub id: Uuid,
    /// The key that signed it.
    pub kid: String,
    /// `header.payload.signature`, base64url: what is mailed and stored.
    pub compact: String,
    /// Lower-case hex SHA-256 of `compact`: what the opt-in event records.
    pub sha256: String,
}

/// Hex SHA-256 of a receipt's compact form, as recorded in its event.
pub fn receipt_sha256(compact: &str) -> String {
    hex::encode(Sha256::digest(compact.as_bytes()))
}

#[derive(Debug, thiserror::Error)]
#[error("cannot sign a consent receipt: {0}")]
pub struct ReceiptError(#[from] jsonwebtoken::errors::Error);

/// Issues receipts for one controller with the configured keys.
#[derive(Debug)]
pub struct ReceiptIssuer {
    keys: ReceiptKeys,
    controller: Controller,
    issuer: Url,
}

impl ReceiptIssuer {
    /// `issuer` is the service's public URL, whose `/.well-known/jwks.json` publishes
    /// `keys`.
    pub fn new(keys: ReceiptKeys, controller: Controller, issuer: Url) -> Self {
        Self {
            keys,
            controller,
            issuer,
        }
    }

    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// The kid new receipts carry.
    pub fn signing_kid(&self) -> &str {
        self.keys.signing_key().kid()
    }

    /// Signs a receipt of `facts`, issued at `issued_at`, with the first key.
    pub fn issue(
        &self,
        facts: &ReceiptFacts,
        issued_at: DateTime<Utc>,
    ) -> Result<Receipt, ReceiptError> {
        let id = Uuid::new_v4();
        let claims = receipt_claims(
            facts,
            &Issuance {
                controller: &self.controller,
                issuer: &self.issuer,
                receipt_id: id,
                issued_at,
            },
        );
        let key = self.keys.signing_key();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid().to_string());
        let compact = jsonwebtoken::encode(&header, &claims, key.encoding_key())?;
        Ok(Receipt {
            id,
            kid: key.kid().to_string(),
            sha256: receipt_sha256(&compact),
            compact,
        })
    }

    /// Every key, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Jwks {
        self.keys.jwks()
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use chrono::TimeZone;
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::Value;

    use super::super::keys::tests::{rfc8037_key, RFC8037_X};
    use super::super::payload::{ConsentAct, ReceiptPurpose, RecordedData};
    use super::*;
    use crate::domain::{ContactId, NoticeRef, Purpose, SubscriptionTypeId};

    fn issuer() -> ReceiptIssuer {
        ReceiptIssuer::new(
            ReceiptKeys::new(vec![rfc8037_key()]).unwrap(),
            Controller::new(
                "Example B.V.",
                "privacy@example.com",
                "https://example.com/",
            )
            .unwrap(),
            Url::parse("https://news.example.com/").unwrap(),
        )
    }

    fn facts() -> ReceiptFacts {
        ReceiptFacts {
            event_id: Uuid::parse_str("0190d6f0-7c1a-7000-8000-000000000001").unwrap(),
            prev_hash: "ab".repeat(32),
            contact: ContactId::parse(&"c0".repeat(16)).unwrap(),
            purpose: ReceiptPurpose {
                type_id: SubscriptionTypeId::parse("blog-updates").unwrap(),
                name: "Blog updates".into(),
                description: "A mail when we publish a new post.".into(),
                category: Purpose::Marketing,
            },
            notice: NoticeRef {
                id: SubscriptionTypeId::parse("blog-updates").unwrap(),
                locale: "en".into(),
                version: "2024-05-v3".into(),
                sha256: "5e".repeat(32),
            },
            act: ConsentAct::Given,
            consented_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            method: "button".into(),
            recorded: RecordedData {
                ip_address: true,
                user_agent: false,
            },
            expires_at: None,
            withdraw_url: Url::parse("https://news.example.com/unsubscribe/tok").unwrap(),
        }
    }

    fn issued_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 6).unwrap()
    }

    fn verified_claims(compact: &str) -> jsonwebtoken::errors::Result<Value> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let key = DecodingKey::from_ed_components(RFC8037_X)?;
        jsonwebtoken::decode::<Value>(compact, &key, &validation).map(|data| data.claims)
    }

    #[test]
    fn the_signature_matches_rfc_8037_appendix_a_4() {
        // Ed25519 is deterministic, so the RFC's example signature is a known answer for
        // the key as loaded and handed to jsonwebtoken.
        let signing_input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let signature = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            rfc8037_key().encoding_key(),
            Algorithm::EdDSA,
        )
        .unwrap();
        assert_eq!(
            signature,
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    #[test]
    fn a_receipt_is_a_compact_jws_that_verifies_and_names_its_key() {
        let receipt = issuer().issue(&facts(), issued_at()).unwrap();
        let parts: Vec<&str> = receipt.compact.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], rfc8037_key().kid());
        assert_eq!(receipt.kid, rfc8037_key().kid());
        assert_eq!(receipt.sha256, receipt_sha256(&receipt.compact));
        assert_eq!(receipt.sha256.len(), 64);

        let claims = verified_claims(&receipt.compact).unwrap();
        assert_eq!(claims["jti"], receipt.id.to_string());
        assert_eq!(claims["iss"], "https://news.example.com");
        assert_eq!(claims["iat"], issued_at().timestamp());
        assert!(claims.get("exp").is_none());

        // One changed character of the signature, then of the payload: neither verifies.
        let mut forged = receipt.compact.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        assert!(verified_claims(std::str::from_utf8(&forged).unwrap()).is_err());
        let mut claims_changed = claims.clone();
        claims_changed["event_id"] = Value::from("0190d6f0-7c1a-7000-8000-000000000002");
        let changed_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_changed).unwrap());
        let spliced = format!("{}.{}.{}", parts[0], changed_payload, parts[2]);
        assert!(verified_claims(&spliced).is_err());
    }

    #[test]
    fn the_payload_is_a_dpv_consent_receipt_of_the_facts() {
        let facts = facts();
        let receipt = issuer().issue(&facts, issued_at()).unwrap();
        let claims = verified_claims(&receipt.compact).unwrap();
        assert_eq!(claims["@context"]["dpv"], "https://w3id.org/dpv#");
        assert_eq!(
            claims["@context"]["eu-gdpr"],
            "https://w3id.org/dpv/legal/eu/gdpr#"
        );
        assert_eq!(claims["@type"], "dpv:ConsentReceipt");
        assert_eq!(claims["event_id"], facts.event_id.to_string());
        assert_eq!(claims["prev_hash"], facts.prev_hash);
        assert_eq!(claims["dct:created"]["@value"], "2026-01-02T03:04:06Z");

        let record = &claims["dpv:hasRecordOfActivity"];
        assert_eq!(record["@type"], "dpv:ConsentRecord");
        assert_eq!(record["dct:identifier"], facts.event_id.to_string());
        assert_eq!(
            record["dpv:hasDataSubject"]["dct:identifier"],
            facts.contact.as_str()
        );
        assert_eq!(
            record["dpv:hasDataController"]["@id"],
            "https://example.com/"
        );
        assert_eq!(record["dpv:hasEntity"]["dpv:hasName"], "Example B.V.");
        assert_eq!(
            record["dpv:hasEntity"]["schema:contactPoint"]["schema:email"],
            "privacy@example.com"
        );
        let notice = &record["dpv:hasNotice"];
        assert_eq!(notice["dct:identifier"], "blog-updates");
        assert_eq!(notice["schema:version"], "2024-05-v3");
        assert_eq!(notice["schema:sha256"], facts.notice.sha256);

        let process = &record["dpv:hasProcess"];
        assert_eq!(process["dpv:hasLegalBasis"]["@id"], "eu-gdpr:A6-1-a");
        assert_eq!(process["dpv:hasPurpose"]["dct:identifier"], "blog-updates");
        assert_eq!(process["dpv:hasPurpose"]["dct:title"], "Blog updates");
        assert_eq!(
            process["dpv:hasPurpose"]["skos:broader"]["@id"],
            "dpv:DirectMarketing"
        );
        let data: Vec<&str> = process["dpv:hasPersonalData"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["@id"].as_str().unwrap())
            .collect();
        assert_eq!(data, ["pd:EmailAddress", "pd:IPAddress"]);

        let status = &record["dpv:hasConsentStatus"];
        assert_eq!(status["@type"][0], "dpv:ConsentGiven");
        assert_eq!(status["dpv:hasIndicationMethod"], "button");
        assert_eq!(
            status["dpv:isIndicatedAtTime"]["@value"],
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(status["dpv:hasDuration"]["@type"], "dpv:UntilEventDuration");
        assert_eq!(
            record["dpv:hasConsentControl"]["dpv:isExercisedAt"]["@id"],
            "https://news.example.com/unsubscribe/tok"
        );
    }

    #[test]
    fn a_stored_receipt_reads_back_what_it_states() {
        let facts = facts();
        let receipt = issuer().issue(&facts, issued_at()).unwrap();
        let stored = crate::domain::StoredReceipt::from_compact(&receipt.compact).unwrap();
        let summary = super::super::ReceiptSummary::of(&stored).unwrap();
        assert_eq!(summary.receipt_id, receipt.id.to_string());
        assert_eq!(summary.kid, receipt.kid);
        assert_eq!(summary.event_id, facts.event_id.to_string());
        assert_eq!(summary.issued_at, "2026-01-02T03:04:06Z");
        assert_eq!(summary.subscription_type, "blog-updates");
        assert_eq!(summary.purpose, "Blog updates");
        assert_eq!(summary.act, "given");
        assert_eq!(summary.consented_at, "2026-01-02T03:04:05Z");
        assert_eq!(summary.method, "button");
        assert_eq!(summary.expires_at, None);
        assert_eq!(summary.notice_version, "2024-05-v3");
        assert_eq!(summary.controller_name, "Example B.V.");
        assert_eq!(summary.controller_email, "privacy@example.com");
        assert_eq!(
            summary.withdraw_url,
            "https://news.example.com/unsubscribe/tok"
        );

        let mut renewed = facts;
        renewed.act = ConsentAct::Renewed;
        renewed.expires_at = Some(Utc.with_ymd_and_hms(2027, 1, 2, 3, 4, 5).unwrap());
        let receipt = issuer().issue(&renewed, issued_at()).unwrap();
        let stored = crate::domain::StoredReceipt::from_compact(&receipt.compact).unwrap();
        let summary = super::super::ReceiptSummary::of(&stored).unwrap();
        assert_eq!(summary.act, "renewed");
        assert_eq!(summary.expires_at.as_deref(), Some("2027-01-02T03:04:05Z"));
    }

    #[test]
    fn a_renewal_with_an_expiry_says_so() {
        let mut facts = facts();
        facts.act = ConsentAct::Renewed;
        facts.expires_at = Some(Utc.with_ymd_and_hms(2027, 1, 2, 3, 4, 5).unwrap());
        facts.recorded = RecordedData::default();
        let receipt = issuer().issue(&facts, issued_at()).unwrap();
        let claims = verified_claims(&receipt.compact).unwrap();
        let record = &claims["dpv:hasRecordOfActivity"];
        let status = &record["dpv:hasConsentStatus"];
        assert_eq!(status["@type"][0], "dpv:RenewedConsentGiven");
        assert_eq!(status["dpv:hasDuration"]["@type"], "dpv:UntilTimeDuration");
        assert_eq!(
            status["dpv:hasDuration"]["rdf:value"]["@value"],
            "2027-01-02T03:04:05Z"
        );
        assert_eq!(
            record["dpv:hasProcess"]["dpv:hasPersonalData"],
            serde_json::json!([{ "@id": "pd:EmailAddress" }])
        );
    }
}
