//! The languages the service speaks.

/// The locales that pages and mails ship in.
pub const SUPPORTED_LOCALES: [&str; 2] = ["en", "nl"];
