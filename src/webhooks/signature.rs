//! Standard Webhooks v1 signatures: `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the bytes of a `whsec_` secret.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";
/// Shorter keys are guessable; longer ones gain nothing over SHA-256's block.
pub const MIN_KEY_BYTES: usize = 24;
pub const MAX_KEY_BYTES: usize = 64;
/// What `optin keys webhook` makes.
const GENERATED_KEY_BYTES: usize = 32;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with `whsec_`")]
    Prefix,
    #[error("the part after `whsec_` is not standard base64")]
    Base64,
    #[error("must hold {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, not {0}")]
    Length(usize),
}

/// The decoded key of one endpoint. Its `Debug` shows no byte of it.
#[derive(Clone)]
pub struct SigningKey(SecretSlice<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([REDACTED])")
    }
}

impl SigningKey {
    /// Reads `whsec_` + standard base64 of 24–64 bytes.
    pub fn parse(secret: &str) -> Result<Self, SecretError> {
        let encoded = secret
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(Self(key.into()))
    }

    /// A new random `whsec_` secret of 32 bytes.
    pub fn generate() -> Result<String, getrandom::Error> {
        let mut key = [0u8; GENERATED_KEY_BYTES];
        getrandom::fill(&mut key)?;
        Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.0.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value for one attempt.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Whether any `v1` signature in a (space-separated) `webhook-signature` value is
    /// ours, compared in constant time. The receiver's timestamp tolerance is its own
    /// business; tests check it separately.
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header
            .split(' ')
            .filter_map(|one| one.strip_prefix("v1,"))
            .filter_map(|encoded| STANDARD.decode(encoded).ok())
            .any(|tag| self.mac(id, timestamp, body).verify_slice(&tag).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the Standard Webhooks reference libraries' sign test (identical in the Go,
    // Python, JavaScript and Rust test suites of standard-webhooks/standard-webhooks),
    // and checked by hand with:
    //   printf '%s' 'msg_p5jXN8AQM9LWM0D4loKWxJek.1_614_265_330.{"test": 2432232314}' |
    //   openssl dgst -sha256 -mac HMAC -binary \
    //     -macopt hexkey:$(printf MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw | base64 -d | xxd -p -c 100) |
    //   base64
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_standard_webhooks_vector() {
        let key = SigningKey::parse(SPEC_SECRET).unwrap();
        assert_eq!(key.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY), SPEC_SIGNATURE);
    }

    #[test]
    fn verifies_the_vector_among_several_and_refuses_changes() {
        let key = SigningKey::parse(SPEC_SECRET).unwrap();
        let header = format!("v2,abc v1,AAAA {SPEC_SIGNATURE}");
        assert!(key.verify(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, &header));
        assert!(!key.verify(SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_BODY, SPEC_SIGNATURE));
        assert!(!key.verify("msg_other", SPEC_TIMESTAMP, SPEC_BODY, SPEC_SIGNATURE));
        assert!(!key.verify(
            SPEC_ID,
            SPEC_TIMESTAMP,
            br#"{"test": 2432232315}"#,
            SPEC_SIGNATURE
        ));
        assert!(!key.verify(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, "v1,not base64!"));
    }

    #[test]
    fn secrets_need_the_prefix_base64_and_24_to_64_bytes() {
        assert_eq!(
            SigningKey::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::Prefix
        );
        assert_eq!(
            SigningKey::parse("whsec_not*base64").unwrap_err(),
            SecretError::Base64
        );
        let short = format!("whsec_{}", STANDARD.encode([7u8; 23]));
        assert_eq!(
            SigningKey::parse(&short).unwrap_err(),
            SecretError::Length(23)
        );
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert_eq!(
            SigningKey::parse(&long).unwrap_err(),
            SecretError::Length(65)
        );
        assert!(SigningKey::parse(&format!("whsec_{}", STANDARD.encode([7u8; 64]))).is_ok());
    }

    #[test]
    fn generated_secrets_parse_and_differ() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        assert_ne!(a, b);
        assert!(SigningKey::parse(&a).is_ok());
    }

    #[test]
    fn debug_shows_no_key() {
        let key = SigningKey::parse(SPEC_SECRET).unwrap();
        let shown = format!("{key:?}");
        assert!(
            !shown.contains("MfKQ") && shown.contains("REDACTED"),
            "{shown}"
        );
    }
}
