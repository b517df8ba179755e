//! ALTCHA-compatible proof of work: challenges that a browser solves by trying numbers,
//! and the check of a solution, in the format the ALTCHA widget and server libraries use.
//!
//! A challenge is `challenge = hex SHA-256(salt || decimal secret number)` with
//! `signature = hex HMAC-SHA256(key, challenge)`. The salt carries the expiry as
//! `<random hex>?expires=<unix seconds>&`, as the ALTCHA libraries write it (the closing
//! `&` keeps the number from being read as more digits of the expiry). The signature
//! covers the challenge and the challenge covers the salt, so a solution whose hash
//! matches cannot have had its expiry changed.

use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The only algorithm offered and accepted.
pub const ALGORITHM: &str = "SHA-256";
/// Random bytes in a salt (as the ALTCHA libraries use).
const SALT_BYTES: usize = 12;
/// A payload longer than this is refused before it is decoded: a real one is ~300.
const MAX_PAYLOAD_LEN: usize = 2048;

/// Browsers encode with `btoa`, which pads; other clients may not.
const PAYLOAD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What `GET /v1/signup-challenge` answers: the ALTCHA challenge JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub algorithm: String,
    pub challenge: String,
    pub maxnumber: u64,
    pub salt: String,
    pub signature: String,
}

/// Why a solution was refused. Every variant is the client's fault; none needs logging
/// above debug level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofRefusal {
    #[error("no proof of work was sent")]
    Missing,
    #[error("the proof of work is not a base64 ALTCHA payload")]
    Malformed,
    #[error("the proof of work is not for a challenge of ours")]
    BadSignature,
    #[error("the proof of work does not solve its challenge")]
    WrongAnswer,
    #[error("the challenge has expired")]
    Expired,
    #[error("the proof of work was already used")]
    Replayed,
}

/// A solution that checked out: what is left is to spend it once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Solved {
    /// The store key that makes it single-use; the challenge is unique per challenge.
    pub replay_key: String,
    pub expires_at: DateTime<Utc>,
}

/// The payload a solver sends back, as the widget writes it (it adds fields such as
/// `took`, which are ignored).
#[derive(Deserialize)]
struct Payload {
    algorithm: String,
    challenge: String,
    number: u64,
    salt: String,
    signature: String,
}

/// Makes challenges and checks solutions under optin's keys.
#[derive(Clone)]
pub struct ProofOfWork {
    /// HMAC states with the key absorbed; the first signs, all verify (rotation).
    keys: Vec<Hmac<Sha256>>,
    ttl: Duration,
    max_number: u64,
}

impl std::fmt::Debug for ProofOfWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofOfWork")
            .field("keys", &self.keys.len())
            .field("ttl", &self.ttl)
            .field("max_number", &self.max_number)
            .finish()
    }
}

impl ProofOfWork {
    /// `keys` must not be empty: the first signs. Returns `None` when it is.
    pub fn new(keys: &[[u8; 32]], ttl: Duration, max_number: u64) -> Option<Self> {
        let keys: Vec<Hmac<Sha256>> = keys
            .iter()
            .map(|key| Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes 32-byte keys"))
            .collect();
        (!keys.is_empty()).then_some(Self {
            keys,
            ttl,
            max_number,
        })
    }

    /// A fresh challenge that expires `ttl` after `now`.
    pub fn challenge(&self, now: DateTime<Utc>) -> Result<Challenge, getrandom::Error> {
        let mut nonce = [0u8; SALT_BYTES];
        getrandom::fill(&mut nonce)?;
        // The modulo's bias is below 2^-40 for any allowed maximum: no help to a solver.
        let number = getrandom::u64()? % (self.max_number + 1);
        let expires = (now + self.ttl).timestamp();
        let salt = format!("{}?expires={expires}&", hex::encode(nonce));
        let challenge = challenge_of(&salt, number);
        Ok(Challenge {
            algorithm: ALGORITHM.to_string(),
            signature: hex::encode(sign(&self.keys[0], &challenge)),
            challenge,
            maxnumber: self.max_number,
            salt,
        })
    }

    /// Checks a solution (base64 of the JSON payload): the signature in constant time,
    /// the hash, and the expiry. Spending it once is the caller's next step.
    pub fn check(&self, payload: &str, now: DateTime<Utc>) -> Result<Solved, ProofRefusal> {
        let payload = payload.trim();
        if payload.is_empty() {
            return Err(ProofRefusal::Missing);
        }
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(ProofRefusal::Malformed);
        }
        let json = PAYLOAD_BASE64
            .decode(payload)
            .map_err(|_| ProofRefusal::Malformed)?;
        let payload: Payload =
            serde_json::from_slice(&json).map_err(|_| ProofRefusal::Malformed)?;
        if payload.algorithm != ALGORITHM {
            return Err(ProofRefusal::Malformed);
        }
        let signature = hex::decode(&payload.signature).map_err(|_| ProofRefusal::BadSignature)?;
        let signed = self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(payload.challenge.as_bytes());
            mac.verify_slice(&signature).is_ok()
        });
        if !signed {
            return Err(ProofRefusal::BadSignature);
        }
        if challenge_of(&payload.salt, payload.number) != payload.challenge {
            return Err(ProofRefusal::WrongAnswer);
        }
        // Past this point the salt is one we made (the signed challenge covers it).
        let expires_at = expiry_in(&payload.salt).ok_or(ProofRefusal::Malformed)?;
        if expires_at <= now {
            return Err(ProofRefusal::Expired);
        }
        Ok(Solved {
            replay_key: format!("altcha:{}", payload.challenge),
            expires_at,
        })
    }
}

fn challenge_of(salt: &str, number: u64) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    // As the ALTCHA libraries verify: a salt given back without its closing `&` still
    // hashes with it, so the number can never be read as part of a parameter.
    if !salt.ends_with('&') {
        hasher.update(b"&");
    }
    hasher.update(number.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

fn sign(key: &Hmac<Sha256>, challenge: &str) -> Vec<u8> {
    let mut mac = key.clone();
    mac.update(challenge.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The `expires` parameter of a salt (`<hex>?expires=<secs>&…`).
fn expiry_in(salt: &str) -> Option<DateTime<Utc>> {
    let (_, query) = salt.split_once('?')?;
    let seconds = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("expires="))?
        .parse::<i64>()
        .ok()?;
    DateTime::from_timestamp(seconds, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn pow(key: u8) -> ProofOfWork {
        ProofOfWork::new(&[[key; 32]], Duration::seconds(300), 1000).unwrap()
    }

    /// Tries every number, as a browser would.
    fn solve(challenge: &Challenge) -> u64 {
        (0..=challenge.maxnumber)
            .find(|n| challenge_of(&challenge.salt, *n) == challenge.challenge)
            .expect("a challenge of ours has a solution within maxnumber")
    }

    fn payload(challenge: &Challenge, number: u64) -> String {
        PAYLOAD_BASE64.encode(
            serde_json::json!({
                "algorithm": challenge.algorithm,
                "challenge": challenge.challenge,
                "number": number,
                "salt": challenge.salt,
                "signature": challenge.signature,
                "took": 12,
            })
            .to_string(),
        )
    }

    #[test]
    fn a_challenge_has_the_altcha_shape() {
        let challenge = pow(1).challenge(now()).unwrap();
        assert_eq!(challenge.algorithm, "SHA-256");
        assert_eq!(challenge.maxnumber, 1000);
        assert_eq!(challenge.challenge.len(), 64);
        assert_eq!(challenge.signature.len(), 64);
        let (nonce, query) = challenge.salt.split_once('?').unwrap();
        assert_eq!(nonce.len(), 24);
        assert_eq!(query, "expires=1800000300&");
        let key = Hmac::<Sha256>::new_from_slice(&[1; 32]).unwrap();
        assert_eq!(
            challenge.signature,
            hex::encode(sign(&key, &challenge.challenge))
        );
    }

    #[test]
    fn a_solution_checks_out_until_its_challenge_expires() {
        let pow = pow(1);
        let challenge = pow.challenge(now()).unwrap();
        let solved = payload(&challenge, solve(&challenge));
        let checked = pow.check(&solved, now()).unwrap();
        assert_eq!(
            checked.replay_key,
            format!("altcha:{}", challenge.challenge)
        );
        assert_eq!(checked.expires_at, now() + Duration::seconds(300));
        assert_eq!(
            pow.check(&solved, now() + Duration::seconds(300)),
            Err(ProofRefusal::Expired)
        );
    }

    #[test]
    fn wrong_answers_forged_signatures_and_garbage_are_refused() {
        let ours = pow(1);
        let challenge = ours.challenge(now()).unwrap();
        let answer = solve(&challenge);
        assert_eq!(
            ours.check(&payload(&challenge, answer + 1), now()),
            Err(ProofRefusal::WrongAnswer)
        );
        assert_eq!(
            pow(2).check(&payload(&challenge, answer), now()),
            Err(ProofRefusal::BadSignature)
        );
        // A salt with a later expiry no longer hashes to the signed challenge.
        let mut stretched = challenge.clone();
        stretched.salt = stretched
            .salt
            .replace("expires=1800000300", "expires=1900000000");
        assert_eq!(
            ours.check(&payload(&stretched, answer), now()),
            Err(ProofRefusal::WrongAnswer)
        );
        for garbage in ["%%%", "bm90IGpzb24=", &"A".repeat(5000)] {
            assert_eq!(ours.check(garbage, now()), Err(ProofRefusal::Malformed));
        }
        assert_eq!(ours.check("  ", now()), Err(ProofRefusal::Missing));
        let sha1 = PAYLOAD_BASE64.encode(
            serde_json::json!({"algorithm": "SHA-1", "challenge": challenge.challenge,
                "number": answer, "salt": challenge.salt, "signature": challenge.signature})
            .to_string(),
        );
        assert_eq!(ours.check(&sha1, now()), Err(ProofRefusal::Malformed));
    }

    #[test]
    fn solutions_under_a_rotated_out_key_still_verify() {
        let old = pow(1);
        let challenge = old.challenge(now()).unwrap();
        let solved = payload(&challenge, solve(&challenge));
        let rotated = ProofOfWork::new(&[[2; 32], [1; 32]], Duration::seconds(300), 1000).unwrap();
        assert!(rotated.check(&solved, now()).is_ok());
    }

    #[test]
    fn a_salt_given_back_without_its_closing_ampersand_still_checks_out() {
        let pow = pow(1);
        let challenge = pow.challenge(now()).unwrap();
        let answer = solve(&challenge);
        let mut trimmed = challenge.clone();
        trimmed.salt.pop();
        assert!(pow.check(&payload(&trimmed, answer), now()).is_ok());
    }

    #[test]
    fn an_unpadded_payload_is_read_too() {
        let pow = pow(1);
        let challenge = pow.challenge(now()).unwrap();
        let solved = payload(&challenge, solve(&challenge));
        assert!(pow.check(solved.trim_end_matches('='), now()).is_ok());
    }
}
