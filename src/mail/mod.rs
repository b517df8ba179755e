//! Outgoing mail: templates rendered per locale and subscription type, composed into
//! MIME messages with one-click unsubscribe headers, and sent over SMTP or into a folder.
//!
//! The flow for one outbox job: [`MailTemplates::render`] gives a [`RenderedMail`],
//! [`compose_message`] turns it into a `lettre::Message`, and [`MailTransport::send`]
//! delivers it, telling a permanent refusal from a failure worth retrying.

pub mod compose;
pub mod dkim;
pub mod sender;
mod smtp_pool;
pub mod templates;
pub mod transport;

pub use compose::{
    compose_message, list_unsubscribe_value, ComposeError, Envelope, ListUnsubscribe,
    ListUnsubscribePost, LIST_UNSUBSCRIBE_POST,
};
pub use templates::{
    ConfirmationData, MailTemplates, PreferencesLinkData, RenderedMail, TemplateError, TypeSummary,
    CONFIRMATION_MAIL, PREFERENCES_LINK_MAIL, REMINDER_MAIL,
};
pub use transport::{MailTransport, TransportError};
