//! What handlers take from a request: API keys, JSON object bodies, the client address,
//! the page locale and the request's metadata for events.

pub mod api_key;
pub mod client_ip;
pub mod contact_request;
pub mod json_body;
pub mod link_page;
pub mod locale;
pub mod manual_change;
pub mod request_meta;
