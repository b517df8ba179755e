//! The public half of the receipt keys as a JWK Set (RFC 7517 §5), the document
//! `GET /.well-known/jwks.json` serves and every JOSE library reads.

use serde::{Deserialize, Serialize};

/// `{"keys": [...]}`; empty when receipts are off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<PublicJwk>,
}

/// An Ed25519 public key as an OKP JWK (RFC 8037 §2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub key_use: String,
}

impl PublicJwk {
    pub(super) fn ed25519(x: &str, kid: &str) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: x.into(),
            kid: kid.into(),
            alg: "EdDSA".into(),
            key_use: "sig".into(),
        }
    }
}
