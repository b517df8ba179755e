//! The hosted signup form's own proof-of-work solver (`solver.js`): a small script, no
//! third-party widget. The page inlines it and allows exactly it through its CSP.
//!
//! What the page needs: a `<form data-altcha-challenge="/v1/signup-challenge">` with a
//! hidden `<input name="altcha">` (added if missing), the script inline, and a CSP with
//! `script-src` [`csp_source`] and `connect-src 'self'`; a `<noscript>` text for people
//! without JavaScript.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The script, to be put inline in the page, unchanged.
pub const SCRIPT: &str = include_str!("solver.js");

/// The CSP source that allows exactly [`SCRIPT`] inline: `'sha256-<base64>'`.
pub fn csp_source() -> String {
    format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csp_source_is_the_hash_of_the_script() {
        let source = csp_source();
        assert!(
            source.starts_with("'sha256-") && source.ends_with("='"),
            "{source}"
        );
        assert_eq!(source.len(), "'sha256-'".len() + 44);
        assert!(SCRIPT.contains("data-altcha-challenge"));
    }
}
