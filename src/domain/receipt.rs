//! A consent receipt as it is kept: with the opt-in event it belongs to, in parts that
//! give back the exact compact JWS the person was given.
//!
//! The header and the payload are kept decoded. A receipt is mostly the same JSON-LD
//! every time, which the store's compression removes almost entirely, while its base64
//! hides every repetition (a receipt packs to about a quarter of what its compact form
//! does). Base64url without padding has one encoding per byte string, so encoding the
//! parts again gives the signed bytes back exactly.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredReceipt {
    /// The protected header's JSON, as signed.
    header: String,
    /// The payload's JSON, as signed.
    payload: String,
    /// The signature, base64url as in the compact form.
    signature: String,
}

impl StoredReceipt {
    /// Splits a compact JWS (`header.payload.signature`) whose header and payload are
    /// UTF-8 JSON text. `None` when it is not one, or would not come back byte for byte.
    pub fn from_compact(compact: &str) -> Option<Self> {
        let mut parts = compact.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let text = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
        };
        let stored = Self {
            header: text(header)?,
            payload: text(payload)?,
            signature: signature.to_string(),
        };
        (stored.compact() == compact).then_some(stored)
    }

    /// The compact JWS, exactly as issued.
    pub fn compact(&self) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(&self.header),
            URL_SAFE_NO_PAD.encode(&self.payload),
            self.signature
        )
    }

    /// Hex SHA-256 of the compact JWS: what its event records.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.compact().as_bytes()))
    }

    /// The header's JSON, for reading the `kid`.
    pub fn header_json(&self) -> &str {
        &self.header
    }

    /// The payload's JSON, for reading what the receipt states.
    pub fn payload_json(&self) -> &str {
        &self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPACT: &str = "eyJhbGciOiJFZERTQSJ9.eyJhIjoxfQ.c2lnbmF0dXJl";

    #[test]
    fn a_receipt_comes_back_byte_for_byte_with_its_hash() {
        let stored = StoredReceipt::from_compact(COMPACT).expect("a compact JWS");
        assert_eq!(stored.header_json(), r#"{"alg":"EdDSA"}"#);
        assert_eq!(stored.payload_json(), r#"{"a":1}"#);
        assert_eq!(stored.compact(), COMPACT);
        let json = serde_json::to_string(&stored).unwrap();
        let back: StoredReceipt = serde_json::from_str(&json).unwrap();
        assert_eq!(back.compact(), COMPACT);
        assert_eq!(
            back.sha256(),
            hex::encode(Sha256::digest(COMPACT.as_bytes()))
        );
    }

    #[test]
    fn what_is_not_a_compact_jws_of_json_text_is_refused() {
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.eyJhIjoxfQ.c2ln",
            // Padding would not come back: the parts are written without it.
            "eyJhbGciOiJFZERTQSJ9.eyJhIjoxfQ==.c2ln",
            // Not UTF-8.
            "_w.eyJhIjoxfQ.c2ln",
        ] {
            assert!(StoredReceipt::from_compact(bad).is_none(), "{bad:?}");
        }
    }
}
