//! Wrapped around every request or a group of them: the access log, the deadline,
//! `Cache-Control: no-store` for answers with personal data, and `X-Frame-Options`.

pub mod access_log;
pub mod frame_options;
pub mod no_store;
pub mod timeout;
