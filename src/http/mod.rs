//! HTTP plumbing shared by the routes: errors as problem+json, pages, locales, request
//! metadata, API key checks and the access log.

pub mod access_log;
pub mod api_key;
pub mod client_ip;
pub mod json_body;
pub mod locale;
pub mod no_store;
pub mod pages;
pub mod problem;
pub mod request_meta;
pub mod timeout;
