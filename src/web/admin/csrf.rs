//! Cross-site request forgery: every console form posts the session's token, compared in
//! constant time. The cookie is `SameSite=Strict` as well; the token is the check that
//! does not depend on the browser.

use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::session::Session;
use super::ConsoleError;

/// The form in `body`, after its `csrf` field matched the session's token: a missing or
/// wrong token is 403, a form that does not parse 400.
pub fn checked_form<T: DeserializeOwned>(
    session: &Session,
    body: &[u8],
) -> Result<T, ConsoleError> {
    let presented = url::form_urlencoded::parse(body)
        .find(|(key, _)| key == "csrf")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(session.csrf.as_bytes())) {
        tracing::warn!("console form refused: missing or wrong CSRF token");
        return Err(ConsoleError::Forbidden);
    }
    serde_html_form::from_bytes(body).map_err(|error| {
        tracing::debug!(%error, "console form did not parse");
        ConsoleError::BadRequest
    })
}

/// A form with nothing in it but the token.
#[derive(serde::Deserialize)]
pub struct TokenOnly {}
