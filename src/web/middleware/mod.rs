//! Wrapped around every request or a group of them: the access log, the deadline and
//! `Cache-Control: no-store` for answers with personal data.

pub mod access_log;
pub mod no_store;
pub mod timeout;
