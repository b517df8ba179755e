//! optin: a double opt-in email subscription service with GDPR provenance.
//!
//! Start at [`startup`] to see how the pieces are put together.

pub mod clock;
pub mod domain;
pub mod store;
