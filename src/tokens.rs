//! Signed links: `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`.
//!
//! The payload is `version|key id|purpose|contact id|type|expiry|pending id|issued|locale`,
//! with empty fields where a purpose has none. Version 1 payloads (without the issue time
//! and the locale) still verify, so links mailed before version 2 keep working; purposes
//! that need the issue time refuse them. Several keys may be configured: the first signs,
//! all verify, so keys rotate without breaking links already sent.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::domain::{ContactId, SubscriptionTypeId};

const FORMAT_VERSION: &str = "2";
/// The first format, without issue time and locale: still verified, never signed.
const FORMAT_VERSION_1: &str = "1";
/// Locales in tokens are short tags such as `en` or `pt-BR`.
const MAX_LOCALE_LEN: usize = 16;
/// Tokens longer than this are refused before any decoding work.
const MAX_TOKEN_LEN: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Confirm,
    Unsubscribe,
    /// Only asks for a preferences link to be mailed to the address.
    Manage,
    Preferences,
    /// Renews one type's consent that is about to lapse.
    Renew,
}

impl Purpose {
    /// One letter per purpose: how tokens, and the per-purpose POST budgets, name it.
    pub fn code(self) -> &'static str {
        match self {
            Purpose::Confirm => "c",
            Purpose::Unsubscribe => "u",
            Purpose::Manage => "m",
            Purpose::Preferences => "p",
            Purpose::Renew => "r",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        [
            Purpose::Confirm,
            Purpose::Unsubscribe,
            Purpose::Manage,
            Purpose::Preferences,
            Purpose::Renew,
        ]
        .into_iter()
        .find(|p| p.code() == code)
    }
}

/// What a token says. Built by the service, never taken from a request unverified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub purpose: Purpose,
    pub contact_id: ContactId,
    pub subscription_type: Option<SubscriptionTypeId>,
    pub expires_at: DateTime<Utc>,
    /// For `confirm`, the pending confirmation it confirms (so the link is single-use);
    /// for an unsubscribe link in a confirmation mail, the signup it cancels.
    pub pending_id: Option<Uuid>,
    /// When the link was made; `None` only for version 1 links, which predate the field.
    pub issued_at: Option<DateTime<Utc>>,
    /// The language of the mail that carried the link, so its pages speak it too.
    pub locale: Option<String>,
}

/// Why a token was refused. Logged at debug level only; callers answer one generic page.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token format version is not supported")]
    UnsupportedVersion,
    #[error("token was signed with an unknown key")]
    UnknownKey,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token is for another purpose")]
    WrongPurpose,
    /// The signature verified, so saying "expired" reveals nothing a forger could use.
    #[error("token has expired")]
    Expired,
}

#[derive(Clone)]
pub struct SigningKey {
    pub id: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

#[derive(Clone)]
pub struct TokenSigner {
    /// Never empty: the first key signs.
    keys: Vec<SigningKey>,
    /// Each key's HMAC state with the key already absorbed, in the order of `keys`.
    /// Every eligibility answer signs two links; cloning this state skips hashing the
    /// key again each time.
    keyed: Vec<Hmac<Sha256>>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keyed HMAC states hold the keys themselves: never shown.
        f.debug_struct("TokenSigner")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Returns `None` when no key is given: a signer needs at least one.
    pub fn new(keys: Vec<SigningKey>) -> Option<Self> {
        let keyed = keys
            .iter()
            .map(|key| {
                Hmac::<Sha256>::new_from_slice(&key.secret)
                    .expect("HMAC accepts keys of any length")
            })
            .collect();
        (!keys.is_empty()).then_some(Self { keys, keyed })
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let key = &self.keys[0];
        let mut mac = self.keyed[0].clone();
        let payload = [
            FORMAT_VERSION,
            &key.id,
            claims.purpose.code(),
            claims.contact_id.as_str(),
            claims.subscription_type.as_ref().map_or("", |t| t.as_str()),
            &claims.expires_at.timestamp().to_string(),
            &claims
                .pending_id
                .map(|p| p.simple().to_string())
                .unwrap_or_default(),
            &claims
                .issued_at
                .map(|at| at.timestamp().to_string())
                .unwrap_or_default(),
            claims.locale.as_deref().unwrap_or_default(),
        ]
        .join("|");
        mac.update(payload.as_bytes());
        let signature = mac.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    pub fn verify(
        &self,
        token: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload_b64, signature_b64) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TokenError::Malformed)?;
        let payload = String::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
        let fields: Vec<&str> = payload.split('|').collect();
        let (key_id, purpose_code, contact, type_id, expiry, pending, issued, locale) =
            match fields[..] {
                [FORMAT_VERSION, key, purpose, contact, kind, expiry, pending, issued, locale] => {
                    (key, purpose, contact, kind, expiry, pending, issued, locale)
                }
                [FORMAT_VERSION_1, key, purpose, contact, kind, expiry, pending] => {
                    (key, purpose, contact, kind, expiry, pending, "", "")
                }
                [v, ..] if v != FORMAT_VERSION && v != FORMAT_VERSION_1 => {
                    return Err(TokenError::UnsupportedVersion)
                }
                _ => return Err(TokenError::Malformed),
            };
        let key = self
            .keys
            .iter()
            .position(|k| k.id == key_id)
            .ok_or(TokenError::UnknownKey)?;
        let mut mac = self.keyed[key].clone();
        mac.update(payload.as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;

        // Past this point the payload is ours, so parse failures mean a bug, still refused.
        if Purpose::from_code(purpose_code) != Some(purpose) {
            return Err(TokenError::WrongPurpose);
        }
        let expires_at = timestamp(expiry).ok_or(TokenError::Malformed)?;
        if expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(Claims {
            purpose,
            contact_id: ContactId::parse(contact).map_err(|_| TokenError::Malformed)?,
            subscription_type: optional(type_id, |t| SubscriptionTypeId::parse(t).ok())?,
            expires_at,
            pending_id: optional(pending, |p| Uuid::parse_str(p).ok())?,
            issued_at: optional(issued, timestamp)?,
            locale: optional(locale, |l| {
                (l.len() <= MAX_LOCALE_LEN
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                .then(|| l.to_string())
            })?,
        })
    }
}

impl TokenSigner {
    /// Signs a payload of another kind than links (the console session), as
    /// `base64url(key id "|" payload) "." base64url(mac)`. The MAC covers `context` too,
    /// so a value signed for one use never verifies for another, nor as a link.
    pub fn sign_opaque(&self, context: &str, payload: &str) -> String {
        let key = &self.keys[0];
        let signed = format!("{}|{payload}", key.id);
        let signature = opaque_mac(&self.keyed[0], context, &signed)
            .finalize()
            .into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(signed),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The payload of a value made by [`Self::sign_opaque`] with the same `context`, by
    /// any configured key; `None` for anything else. The MAC is compared in constant time.
    pub fn verify_opaque(&self, context: &str, token: &str) -> Option<String> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let (signed_b64, signature_b64) = token.split_once('.')?;
        let signed = String::from_utf8(URL_SAFE_NO_PAD.decode(signed_b64).ok()?).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).ok()?;
        let (key_id, payload) = signed.split_once('|')?;
        let key = self.keys.iter().position(|k| k.id == key_id)?;
        opaque_mac(&self.keyed[key], context, &signed)
            .verify_slice(&signature)
            .ok()?;
        Some(payload.to_string())
    }
}

impl TokenSigner {
    /// A key of its own for another use of the signing keys (the ALTCHA challenges'
    /// HMAC), one per configured key in the same order, so the first is current and the
    /// rest keep verifying through a rotation: HMAC-SHA256(signing key, `purpose`). A
    /// derived key reveals nothing about the signing key, and never signs a link.
    pub fn derived_keys(&self, purpose: &str) -> Vec<[u8; 32]> {
        self.keyed
            .iter()
            .map(|keyed| {
                let mut mac = keyed.clone();
                mac.update(purpose.as_bytes());
                mac.finalize().into_bytes().into()
            })
            .collect()
    }
}

/// What the MAC of a confirmation code covers first, so that no other value made with
/// the signing keys can be one.
const CODE_PURPOSE: &str = "optin confirmation code v1";
/// Codes are this many decimal digits.
pub const CODE_DIGITS: usize = 6;

impl TokenSigner {
    /// The code of a pending confirmation, shown in its mails: six digits derived from
    /// its id under the first signing key, so nothing needs storing and the reminder
    /// carries the same code. A code reveals nothing about the key or about other codes.
    pub fn confirmation_code(&self, pending_id: Uuid) -> String {
        code_from(self.keyed[0].clone(), pending_id)
    }

    /// Whether `entered` is the code of `pending_id` under any configured key (a code
    /// mailed before a key rotation still works), compared in constant time.
    pub fn confirmation_code_matches(&self, pending_id: Uuid, entered: &str) -> bool {
        use subtle::ConstantTimeEq;
        let mut matched = subtle::Choice::from(0);
        for keyed in &self.keyed {
            matched |= code_from(keyed.clone(), pending_id)
                .as_bytes()
                .ct_eq(entered.as_bytes());
        }
        matched.into()
    }
}

/// HMAC(signing key, purpose, 0, pending id), its first eight bytes modulo a million.
fn code_from(mut mac: Hmac<Sha256>, pending_id: Uuid) -> String {
    mac.update(CODE_PURPOSE.as_bytes());
    mac.update(&[0]);
    mac.update(pending_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 2^64 is so much larger than a million that the remainder is uniform to 1 in 10^13.
    format!("{:06}", u64::from_be_bytes(first) % 1_000_000)
}

/// The MAC of a signup reference covers this, so it passes for nothing else.
const SIGNUP_REF_CONTEXT: &str = "optin signup reference v1";

/// What one signup request created: a reference to its pending confirmation, signed,
/// held by the browser that signed up (the `optin_bind` cookie) and by the page that
/// asks for the code. A request that created none gets a reference of the same shape to
/// a confirmation that does not exist, so the reference tells nobody what the address
/// is (see `service::signup`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignupRef {
    pub contact_id: ContactId,
    pub pending_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

impl SignupRef {
    /// `expiry|contact id|pending id`: every field of fixed length, so every reference
    /// has the same size.
    pub fn sign(&self, signer: &TokenSigner) -> String {
        let payload = format!(
            "{:010}|{}|{}",
            self.expires_at.timestamp().max(0),
            self.contact_id,
            self.pending_id.simple()
        );
        signer.sign_opaque(SIGNUP_REF_CONTEXT, &payload)
    }

    /// The reference a signed value holds, while it has not expired.
    pub fn verify(signer: &TokenSigner, value: &str, now: DateTime<Utc>) -> Option<Self> {
        let payload = signer.verify_opaque(SIGNUP_REF_CONTEXT, value)?;
        let mut fields = payload.split('|');
        let (expiry, contact, pending) = (fields.next()?, fields.next()?, fields.next()?);
        let expires_at = timestamp(expiry).filter(|at| *at > now)?;
        Some(Self {
            contact_id: ContactId::parse(contact).ok()?,
            pending_id: Uuid::parse_str(pending).ok()?,
            expires_at,
        })
    }

    /// Whether this is the signup a confirmation link is for.
    pub fn is_for(&self, claims: &Claims) -> bool {
        claims.pending_id == Some(self.pending_id) && claims.contact_id == self.contact_id
    }
}

fn opaque_mac(keyed: &Hmac<Sha256>, context: &str, signed: &str) -> Hmac<Sha256> {
    let mut mac = keyed.clone();
    mac.update(context.as_bytes());
    // A separator no context contains, so that context and payload cannot shift.
    mac.update(&[0]);
    mac.update(signed.as_bytes());
    mac
}

fn timestamp(seconds: &str) -> Option<DateTime<Utc>> {
    seconds
        .parse::<i64>()
        .ok()
        .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
}

fn optional<T>(
    field: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, TokenError> {
    if field.is_empty() {
        Ok(None)
    } else {
        parse(field).map(Some).ok_or(TokenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn key(id: &str, byte: u8) -> SigningKey {
        SigningKey {
            id: id.to_string(),
            secret: vec![byte; 32],
        }
    }

    #[test]
    fn opaque_values_verify_only_in_their_context_and_under_a_configured_key() {
        let old = TokenSigner::new(vec![key("old", 1)]).unwrap();
        let value = old.sign_opaque("session", "1700000000|csrf|ops|x");
        assert_eq!(
            old.verify_opaque("session", &value).as_deref(),
            Some("1700000000|csrf|ops|x")
        );
        assert_eq!(old.verify_opaque("other", &value), None, "another context");
        let rotated = TokenSigner::new(vec![key("new", 2), key("old", 1)]).unwrap();
        assert!(
            rotated.verify_opaque("session", &value).is_some(),
            "old keys verify"
        );
        let gone = TokenSigner::new(vec![key("new", 2)]).unwrap();
        assert_eq!(gone.verify_opaque("session", &value), None, "a removed key");
        let (payload, signature) = value.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode("old|1900000000|csrf|ops");
        assert_eq!(
            old.verify_opaque("session", &format!("{forged_payload}.{signature}")),
            None
        );
        assert_eq!(old.verify_opaque("session", payload), None);
        let link = old.sign(&claims(Purpose::Preferences));
        assert_eq!(
            old.verify_opaque("session", &link),
            None,
            "a link is no session"
        );
    }

    #[test]
    fn derived_keys_follow_the_signing_keys_and_differ_per_purpose() {
        let signer = TokenSigner::new(vec![key("new", 2), key("old", 1)]).unwrap();
        let altcha = signer.derived_keys("altcha");
        assert_eq!(altcha.len(), 2);
        let mut mac = Hmac::<Sha256>::new_from_slice(&[2; 32]).unwrap();
        mac.update(b"altcha");
        assert_eq!(altcha[0], <[u8; 32]>::from(mac.finalize().into_bytes()));
        assert_ne!(altcha[0], altcha[1]);
        assert_ne!(signer.derived_keys("other")[0], altcha[0]);
    }

    fn claims(purpose: Purpose) -> Claims {
        Claims {
            purpose,
            contact_id: ContactId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            subscription_type: Some(SubscriptionTypeId::parse("blog-updates").unwrap()),
            expires_at: Utc.timestamp_opt(Utc::now().timestamp() + 3600, 0).unwrap(),
            pending_id: Some(Uuid::new_v4()),
            issued_at: Some(Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap()),
            locale: Some("nl".to_string()),
        }
    }

    #[test]
    fn a_signed_token_verifies_to_the_same_claims() {
        let signer = TokenSigner::new(vec![key("k1", 1)]).unwrap();
        let original = claims(Purpose::Confirm);
        let token = signer.sign(&original);
        assert_eq!(
            signer.verify(&token, Purpose::Confirm, Utc::now()).unwrap(),
            original
        );
    }

    #[test]
    fn a_tampered_byte_is_refused() {
        let signer = TokenSigner::new(vec![key("k1", 1)]).unwrap();
        let token = signer.sign(&claims(Purpose::Unsubscribe));
        for position in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered != token {
                assert!(
                    signer
                        .verify(&tampered, Purpose::Unsubscribe, Utc::now())
                        .is_err(),
                    "accepted change at {position}"
                );
            }
        }
    }

    #[test]
    fn a_token_from_another_key_is_refused() {
        let ours = TokenSigner::new(vec![key("k1", 1)]).unwrap();
        let theirs = TokenSigner::new(vec![key("k1", 2)]).unwrap();
        let token = theirs.sign(&claims(Purpose::Confirm));
        assert_eq!(
            ours.verify(&token, Purpose::Confirm, Utc::now()),
            Err(TokenError::BadSignature)
        );
        let unknown = TokenSigner::new(vec![key("k9", 1)])
            .unwrap()
            .sign(&claims(Purpose::Confirm));
        assert_eq!(
            ours.verify(&unknown, Purpose::Confirm, Utc::now()),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let signer = TokenSigner::new(vec![key("k1", 1)]).unwrap();
        let token = signer.sign(&claims(Purpose::Confirm));
        let later = Utc::now() + Duration::hours(2);
        assert_eq!(
            signer.verify(&token, Purpose::Confirm, later),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_for_another_purpose_is_refused() {
        let signer = TokenSigner::new(vec![key("k1", 1)]).unwrap();
        let token = signer.sign(&claims(Purpose::Preferences));
        assert_eq!(
            signer.verify(&token, Purpose::Unsubscribe, Utc::now()),
            Err(TokenError::WrongPurpose)
        );
    }

    #[test]
    fn a_rotated_out_signing_key_still_verifies() {
        let old = TokenSigner::new(vec![key("old", 1)]).unwrap();
        let token = old.sign(&claims(Purpose::Unsubscribe));
        let rotated = TokenSigner::new(vec![key("new", 2), key("old", 1)]).unwrap();
        assert!(rotated
            .verify(&token, Purpose::Unsubscribe, Utc::now())
            .is_ok());
        let fresh = rotated.sign(&claims(Purpose::Unsubscribe));
        assert!(old
            .verify(&fresh, Purpose::Unsubscribe, Utc::now())
            .is_err());
    }

    #[test]
    fn a_version_1_token_still_verifies_without_issue_time_or_locale() {
        let signer = TokenSigner::new(vec![key("k1", 1)]).unwrap();
        let expiry = Utc::now().timestamp() + 3600;
        let payload = format!("1|k1|u|0123456789abcdef0123456789abcdef|blog-updates|{expiry}|");
        let mut mac = Hmac::<Sha256>::new_from_slice(&[1; 32]).expect("any key length");
        mac.update(payload.as_bytes());
        let signature = mac.finalize().into_bytes();
        let token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature)
        );
        let claims = signer
            .verify(&token, Purpose::Unsubscribe, Utc::now())
            .unwrap();
        assert_eq!(claims.issued_at, None);
        assert_eq!(claims.locale, None);
        assert_eq!(claims.subscription_type.unwrap().as_str(), "blog-updates");
    }

    #[test]
    fn a_manage_token_is_not_a_preferences_token() {
        let signer = TokenSigner::new(vec![key("k1", 1)]).unwrap();
        let token = signer.sign(&claims(Purpose::Manage));
        assert_eq!(
            signer.verify(&token, Purpose::Preferences, Utc::now()),
            Err(TokenError::WrongPurpose)
        );
        assert!(signer.verify(&token, Purpose::Manage, Utc::now()).is_ok());
    }

    #[test]
    fn codes_are_six_digits_per_confirmation_and_outlive_a_key_rotation() {
        let old = TokenSigner::new(vec![key("old", 1)]).unwrap();
        let pending = Uuid::now_v7();
        let code = old.confirmation_code(pending);
        assert_eq!(code.len(), CODE_DIGITS);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(
            old.confirmation_code(Uuid::now_v7()),
            code,
            "another confirmation, another code"
        );
        assert!(old.confirmation_code_matches(pending, &code));
        assert!(!old.confirmation_code_matches(pending, "12345"));
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert!(!old.confirmation_code_matches(pending, &wrong));
        let rotated = TokenSigner::new(vec![key("new", 2), key("old", 1)]).unwrap();
        assert!(
            rotated.confirmation_code_matches(pending, &code),
            "a mailed code still works"
        );
        assert_ne!(
            rotated.confirmation_code(pending),
            code,
            "new codes use the new key"
        );
    }

    #[test]
    fn signup_references_verify_until_they_expire_and_are_all_one_size() {
        let signer = TokenSigner::new(vec![key("k1", 1)]).unwrap();
        let now = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
        let reference = SignupRef {
            contact_id: ContactId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            pending_id: Uuid::now_v7(),
            expires_at: now + Duration::days(7),
        };
        let value = reference.sign(&signer);
        assert_eq!(
            SignupRef::verify(&signer, &value, now),
            Some(reference.clone())
        );
        assert_eq!(
            SignupRef::verify(&signer, &value, now + Duration::days(8)),
            None
        );
        let other = SignupRef {
            contact_id: ContactId::parse("fedcba9876543210fedcba9876543210").unwrap(),
            pending_id: Uuid::now_v7(),
            expires_at: now + Duration::days(7),
        };
        assert_eq!(other.sign(&signer).len(), value.len());
        assert_eq!(
            signer.verify_opaque("optin console session v1", &value),
            None
        );
        let mut link = claims(Purpose::Confirm);
        assert!(!reference.is_for(&link));
        link.pending_id = Some(reference.pending_id);
        link.contact_id = reference.contact_id.clone();
        assert!(reference.is_for(&link));
    }

    #[test]
    fn a_renewal_token_renews_and_does_nothing_else() {
        let signer = TokenSigner::new(vec![key("k1", 1)]).unwrap();
        let token = signer.sign(&claims(Purpose::Renew));
        for other in [
            Purpose::Confirm,
            Purpose::Unsubscribe,
            Purpose::Manage,
            Purpose::Preferences,
        ] {
            assert_eq!(
                signer.verify(&token, other, Utc::now()),
                Err(TokenError::WrongPurpose)
            );
            let theirs = signer.sign(&claims(other));
            assert_eq!(
                signer.verify(&theirs, Purpose::Renew, Utc::now()),
                Err(TokenError::WrongPurpose)
            );
        }
        assert!(signer.verify(&token, Purpose::Renew, Utc::now()).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(raw in ".{0,600}") {
            let signer = TokenSigner::new(vec![key("k1", 1)]).unwrap();
            let _ = signer.verify(&raw, Purpose::Confirm, Utc::now());
        }

        #[test]
        fn arbitrary_payloads_with_bad_signatures_are_refused(payload in "[ -~]{0,200}") {
            let signer = TokenSigner::new(vec![key("k1", 1)]).unwrap();
            let token = format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode([0u8; 32]));
            proptest::prop_assert!(signer.verify(&token, Purpose::Confirm, Utc::now()).is_err());
        }
    }
}
