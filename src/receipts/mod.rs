//! Consent receipts: a signed copy of one opt-in that the person holds as well as the
//! controller. A receipt is a compact JWS (`EdDSA` over Ed25519, with `kid`) whose
//! payload is a JSON-LD consent receipt in the W3C Data Privacy Vocabulary's terms for
//! ISO/IEC TS 27560:2023. Anyone checks it with any JOSE library against the keys at
//! `/.well-known/jwks.json`; its SHA-256 goes into the opt-in event, so the hash chain
//! covers it.
//!
//! - [`keys`]: Ed25519 keys from PKCS#8 PEM files, their RFC 7638 `kid`, the key ring
//!   (the first signs, all are published) and new key files;
//! - [`payload`]: the facts of one opt-in ([`ReceiptFacts`]) and the JSON-LD they become;
//! - [`issue`]: [`ReceiptIssuer::issue`] gives the compact JWS and its SHA-256;
//! - [`jwks`]: the public keys as a JWK Set;
//! - [`summary`]: what a stored receipt states, read back from its payload.
//!
//! Nothing here stores or sends: the service issues a receipt while it records the
//! opt-in, and the mail and the export carry what it gives.

pub mod issue;
pub mod jwks;
pub mod keys;
pub mod payload;
pub mod summary;

pub use issue::{receipt_sha256, Receipt, ReceiptError, ReceiptIssuer};
pub use jwks::{Jwks, PublicJwk};
pub use keys::{generate_key_file, ReceiptKey, ReceiptKeyError, ReceiptKeys};
pub use payload::{
    ConsentAct, Controller, ControllerError, NotAConsent, ReceiptFacts, ReceiptPurpose,
    RecordedData,
};
pub use summary::ReceiptSummary;
