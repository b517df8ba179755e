//! Outgoing webhooks: signed (Standard Webhooks v1) notices of every consent change, for
//! the systems that hold copies of contacts.
//!
//! These parts do no storage: [`settings`] parses `[webhooks]`, [`event`] defines the
//! payloads and which endpoint wants which, [`signature`] signs them, [`network`] says
//! which addresses a delivery may reach, and [`delivery`] makes one attempt. Queueing,
//! leases and retries belong to the durable outbox.

pub mod delivery;
pub mod event;
pub mod network;
pub mod settings;
pub mod signature;

pub use delivery::{DeliveryOutcome, WebhookClient};
pub use event::{EndpointFilter, EventData, EventType, WebhookEvent};
pub use network::NetworkPolicy;
pub use settings::{Endpoint, EndpointSettings, WebhookConfigError, WebhookSettings};
pub use signature::{SecretError, SigningKey};
