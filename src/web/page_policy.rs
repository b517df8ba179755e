//! What one page may do beyond the site-wide policy ([`super::CONTENT_SECURITY_POLICY`]):
//! be framed by the allowed origins, run its own inline script (allowed by a nonce made
//! for that one answer, or the hosted form's solver by its hash, with the fetch of its
//! challenge), or post its form to one more origin. The page's
//! `Content-Security-Policy` is built here, and a frameable page is marked so that no
//! `X-Frame-Options` is added to it (see [`super::middleware::frame_options`]).

use actix_web::http::header::{HeaderValue, CONTENT_SECURITY_POLICY};
use actix_web::HttpResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::middleware::frame_options::Frameable;

#[derive(Clone, Debug, Default)]
pub struct PagePolicy {
    /// Origins that may frame the page; none: it stays unframeable.
    pub framed_by: Vec<String>,
    /// Sources of scripts, such as `'nonce-…'` (see [`PagePolicy::with_nonce`]).
    pub scripts: Vec<String>,
    /// Origins besides the page's own that its form may post to.
    pub form_targets: Vec<String>,
    /// The page's script fetches from its own origin (`connect-src 'self'`).
    pub connects_home: bool,
}

/// A nonce for one answer's inline script: 128 random bits, in the URL-safe base64 that
/// CSP allows and HTML needs no escaping for. `None` when the system has no randomness to
/// give, and then the page goes without its script.
pub fn new_nonce() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

impl PagePolicy {
    /// Allows the inline scripts that carry `nonce`.
    #[must_use]
    pub fn with_nonce(mut self, nonce: &str) -> Self {
        self.scripts.push(format!("'nonce-{nonce}'"));
        self
    }

    /// Allows the hosted form's proof-of-work solver (by the hash of its text) and the
    /// challenge it fetches from this origin.
    #[must_use]
    pub fn with_solver(mut self) -> Self {
        self.scripts
            .push(crate::firewall::hosted_solver::csp_source());
        self.connects_home = true;
        self
    }

    pub fn content_security_policy(&self) -> String {
        let ancestors = if self.framed_by.is_empty() {
            "'none'".to_string()
        } else {
            origins(&self.framed_by)
        };
        let mut form_action = "'self'".to_string();
        if !self.form_targets.is_empty() {
            form_action = format!("{form_action} {}", origins(&self.form_targets));
        }
        let mut policy = format!(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action {form_action}; base-uri 'none'; frame-ancestors {ancestors}"
        );
        if !self.scripts.is_empty() {
            policy.push_str("; script-src ");
            policy.push_str(&self.scripts.join(" "));
        }
        if self.connects_home {
            policy.push_str("; connect-src 'self'");
        }
        policy
    }

    /// Sets the page's policy on its answer, and marks a frameable one.
    pub fn apply(&self, response: &mut HttpResponse) {
        if let Ok(value) = HeaderValue::from_str(&self.content_security_policy()) {
            response
                .headers_mut()
                .insert(CONTENT_SECURITY_POLICY, value);
        }
        if !self.framed_by.is_empty() {
            response.extensions_mut().insert(Frameable);
        }
    }
}

/// Origins as CSP sources: bare, without a trailing slash, as browsers compare them.
fn origins(list: &[String]) -> String {
    list.iter()
        .map(|o| o.trim_end_matches('/'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The origin of an absolute URL (`https://shop.example/thanks` → `https://shop.example`).
pub fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.origin() {
        url::Origin::Tuple(..) => Some(parsed.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_site_wide_policy() {
        assert_eq!(
            PagePolicy::default().content_security_policy(),
            super::super::CONTENT_SECURITY_POLICY
        );
    }

    #[test]
    fn a_framed_page_names_its_ancestors_scripts_and_form_targets() {
        let policy = PagePolicy {
            framed_by: vec!["https://shop.example/".into(), "https://b.example".into()],
            scripts: Vec::new(),
            form_targets: vec!["https://shop.example".into()],
            connects_home: false,
        }
        .with_nonce("abc");
        let csp = policy.content_security_policy();
        assert!(
            csp.contains("frame-ancestors https://shop.example https://b.example"),
            "{csp}"
        );
        assert!(
            csp.contains("form-action 'self' https://shop.example;"),
            "{csp}"
        );
        assert!(csp.ends_with("; script-src 'nonce-abc'"), "{csp}");
    }

    #[test]
    fn origins_are_taken_from_absolute_urls_only() {
        assert_eq!(
            origin_of("https://shop.example:8443/thanks?x=1").as_deref(),
            Some("https://shop.example:8443")
        );
        assert_eq!(origin_of("/signup/received"), None);
        assert_eq!(origin_of("data:text/plain,x"), None);
    }

    #[test]
    fn nonces_differ() {
        let (a, b) = (new_nonce().unwrap(), new_nonce().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
    }
}
