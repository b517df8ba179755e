//! optin: a double opt-in email subscription service with GDPR provenance.
//!
//! Start at [`startup`] to see how the pieces are put together.

pub mod auth;
pub mod backup;
pub mod client_network;
pub mod clock;
pub mod config;
pub mod domain;
pub mod feedback;
pub mod firewall;
pub mod links;
pub mod mail;
pub mod maintenance;
pub mod outbox;
pub mod private_files;
pub mod receipts;
pub mod service;
pub mod setting_list;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod templating;
pub mod tokens;
pub mod typo;
pub mod web;
pub mod webhooks;
