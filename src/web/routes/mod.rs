//! One file per resource. Handlers parse the request into domain types, call one
//! service operation, and map its result to an answer.

pub(super) mod backup;
#[cfg(test)]
mod body_parsers_proptest;
pub(super) mod confirm;
pub(super) mod contacts;
pub(super) mod eligibility;
pub(super) mod feedback;
pub(super) mod funnel;
pub(super) mod home;
pub(super) mod hosted;
pub(super) mod imports;
pub(super) mod jwks;
pub(super) mod manage;
pub(super) mod one_click;
pub mod ops;
pub(super) mod outbox;
pub(super) mod page;
pub(super) mod preferences;
pub(in crate::web) mod processing_record;
pub(super) mod quarantine;
pub(super) mod receipts;
pub(super) mod received;
pub(super) mod renew;
pub(super) mod rights;
pub(super) mod signup;
pub(super) mod signup_challenge;
pub(super) mod subscription_types;
pub(super) mod unsubscribe;
pub(super) mod webhooks;
