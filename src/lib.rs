//! optin: a double opt-in email subscription service with GDPR provenance.
//!
//! Start at [`startup`] to see how the pieces are put together.

pub mod auth;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod links;
pub mod mail;
pub mod routes;
pub mod startup;
pub mod store;
pub mod subscriptions;
pub mod telemetry;
pub mod tokens;
pub mod webhooks;
