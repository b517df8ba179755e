//! DKIM signing of our own mail (RFC 6376, RFC 8463), so that mailbox providers honour
//! one-click unsubscribe (RFC 8058 §4 wants a signature covering both `List-*` headers)
//! even when the relay does not sign.
//!
//! The signing itself (canonicalization, RSA and Ed25519) is lettre's `dkim` feature;
//! this module loads and checks the key, checks DMARC alignment of `From`, names the
//! headers to sign and gives the DNS record to publish. Keys are generated here too.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{Config, DkimSettings};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use lettre::message::Mailbox;
use lettre::Message;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use rsa::RsaPrivateKey;

/// Shorter RSA keys are refused: RFC 8301 forbids signing with fewer than 1024 bits and
/// mailbox providers treat anything under 2048 as weak.
pub const MIN_RSA_BITS: usize = 2048;

/// The headers every signature covers. A listed header
/// that a mail lacks is signed as absent, so nobody can add it later.
const SIGNED_HEADERS: [&str; 9] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyAlgorithm {
    Rsa,
    Ed25519,
}

impl KeyAlgorithm {
    /// The `k=` tag of the DNS record.
    fn tag(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa => "rsa",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read the key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the key file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn invalid(reason: impl Into<String>) -> DkimError {
    DkimError::Invalid(reason.into())
}

/// A loaded, checked key with its domain and selector; signs messages.
pub struct DkimSigner {
    config: DkimConfig,
    domain: String,
    selector: String,
    algorithm: KeyAlgorithm,
    /// The `p=` tag: base64 of the public key.
    public_key: String,
}

impl fmt::Debug for DkimSigner {
    // Never the key, not even its public parts: they say nothing a log reader needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// The signer `[mail.dkim]` asks for, if any.
    pub fn from_config(config: &Config) -> Result<Option<Self>, DkimError> {
        config
            .settings
            .mail
            .dkim
            .as_ref()
            .map(|settings| Self::load(settings, &config.mail_from))
            .transpose()
    }

    /// Reads and checks the key of `settings`, and checks that `from` is aligned.
    pub fn load(settings: &DkimSettings, from: &Mailbox) -> Result<Self, DkimError> {
        let domain = checked_domain_name("domain", &settings.domain)?;
        let selector = checked_domain_name("selector", &settings.selector)?;
        let from_domain = from
            .email
            .domain()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !is_aligned(&from_domain, &domain) {
            return Err(invalid(format!(
                "the From domain {from_domain} is not {domain} or below it, so DMARC would not \
                 count the signature; sign for the From domain or a parent of it"
            )));
        }
        let path = &settings.private_key_file;
        let pem = std::fs::read_to_string(path).map_err(|source| DkimError::Read {
            path: path.clone(),
            source,
        })?;
        let key = PrivateKey::from_pem(&pem)
            .map_err(|reason| invalid(format!("{}: {reason}", path.display())))?;
        Self::new(domain, selector, &key)
    }

    fn new(domain: String, selector: String, key: &PrivateKey) -> Result<Self, DkimError> {
        let algorithm = key.algorithm();
        let public_key = key.public_key_base64()?;
        let signing_key = key.for_lettre()?;
        let headers = SIGNED_HEADERS
            .iter()
            .map(|name| HeaderName::new_from_ascii_str(name))
            .collect();
        let config = DkimConfig::new(
            selector.clone(),
            domain.clone(),
            signing_key,
            headers,
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        Ok(Self {
            config,
            domain,
            selector,
            algorithm,
            public_key,
        })
    }

    /// Adds a `DKIM-Signature` header over the message as it is now.
    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }

    /// Where the record goes: `<selector>._domainkey.<domain>`.
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record to publish for this key.
    pub fn txt_record(&self) -> String {
        txt_record(self.algorithm, &self.public_key)
    }

    /// The record as DNS zone files and providers take it: see [`dns_strings`].
    pub fn txt_record_strings(&self) -> String {
        dns_strings(&self.txt_record())
    }
}

/// The longest string one TXT record may hold (RFC 1035 §3.3: a length byte, then the
/// bytes); an RSA-2048 key alone is longer, so its record is split.
const MAX_DNS_STRING: usize = 255;

/// What is said beside the split record, on one line.
pub const SPLIT_NOTE: &str = "quoted strings of at most 255 characters each, as DNS requires; resolvers join them without spaces, so paste the line as it is";

/// A TXT record value as quoted strings of at most 255 characters each, separated by
/// spaces: `"v=DKIM1; k=rsa; p=MIIB…" "…rest"`. The record holds only base64, letters,
/// digits, `=`, `;` and spaces, so nothing needs escaping inside the quotes.
pub fn dns_strings(record: &str) -> String {
    record
        .as_bytes()
        .chunks(MAX_DNS_STRING)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `v=DKIM1; k=rsa|ed25519; p=<base64>`.
fn txt_record(algorithm: KeyAlgorithm, public_key: &str) -> String {
    format!("v=DKIM1; k={}; p={public_key}", algorithm.tag())
}

/// The DKIM domain aligns with `From` when it is the From domain or a parent of it
/// (relaxed DMARC alignment).
fn is_aligned(from_domain: &str, dkim_domain: &str) -> bool {
    from_domain == dkim_domain
        || from_domain
            .strip_suffix(dkim_domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Dot-separated labels of letters, digits, `-` and `_`, lowercased. Both values end up
/// inside the `DKIM-Signature` header and a DNS name, where anything else is an error.
fn checked_domain_name(setting: &str, value: &str) -> Result<String, DkimError> {
    let name = value.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(invalid(format!(
            "{setting} must be a DNS name such as example.com (letters, digits, '-', '_' \
             and dots), not '{value}'"
        )));
    }
    Ok(name)
}

enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl PrivateKey {
    /// RSA as PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`), Ed25519 as
    /// PKCS#8. RSA keys below [`MIN_RSA_BITS`] are refused.
    fn from_pem(pem: &str) -> Result<Self, String> {
        let pem = pem.trim();
        let key = if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs1_pem(pem)
                .map(|key| PrivateKey::Rsa(Box::new(key)))
                .map_err(|e| format!("not a readable PKCS#1 RSA key ({e})"))?
        } else if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
            if let Ok(key) = RsaPrivateKey::from_pkcs8_pem(pem) {
                PrivateKey::Rsa(Box::new(key))
            } else {
                ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                    .map(|key| PrivateKey::Ed25519(Box::new(key)))
                    .map_err(|_| {
                        "a PKCS#8 key that is neither RSA nor Ed25519, or is damaged".to_string()
                    })?
            }
        } else if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(
                "the key is encrypted; store it without a passphrase, readable \
                        only by optin (mode 0600)"
                    .into(),
            );
        } else {
            return Err(
                "not a PEM private key: expected '-----BEGIN RSA PRIVATE KEY-----' \
                        or '-----BEGIN PRIVATE KEY-----'"
                    .into(),
            );
        };
        if let PrivateKey::Rsa(rsa) = &key {
            let bits = rsa.size() * 8;
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
                ));
            }
        }
        Ok(key)
    }

    fn algorithm(&self) -> KeyAlgorithm {
        match self {
            PrivateKey::Rsa(_) => KeyAlgorithm::Rsa,
            PrivateKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// RSA: the DER SubjectPublicKeyInfo, as `openssl rsa -pubout` and opendkim publish
    /// it. Ed25519: the 32 raw bytes (RFC 8463 §4.2).
    fn public_key_base64(&self) -> Result<String, DkimError> {
        match self {
            PrivateKey::Rsa(key) => key
                .to_public_key()
                .to_public_key_der()
                .map(|der| STANDARD.encode(der.as_bytes()))
                .map_err(|e| invalid(format!("cannot encode the RSA public key: {e}"))),
            PrivateKey::Ed25519(key) => Ok(STANDARD.encode(key.verifying_key().as_bytes())),
        }
    }

    /// lettre takes RSA keys as PKCS#1 PEM and Ed25519 keys as the base64 seed.
    fn for_lettre(&self) -> Result<DkimSigningKey, DkimError> {
        let (text, algorithm) = match self {
            PrivateKey::Rsa(key) => (
                key.to_pkcs1_pem(LineEnding::LF)
                    .map_err(|e| invalid(format!("cannot re-encode the RSA key: {e}")))?
                    .to_string(),
                DkimSigningAlgorithm::Rsa,
            ),
            PrivateKey::Ed25519(key) => (
                STANDARD.encode(key.to_bytes()),
                DkimSigningAlgorithm::Ed25519,
            ),
        };
        DkimSigningKey::new(&text, algorithm).map_err(|e| invalid(e.to_string()))
    }
}

/// A newly generated key: the PEM to store and the record to publish.
pub struct GeneratedKey {
    pub pem: String,
    pub txt_record: String,
}

/// Makes a new key: RSA-2048 as PKCS#1 PEM, or Ed25519 as PKCS#8 PEM.
pub fn generate_key(algorithm: KeyAlgorithm) -> Result<GeneratedKey, DkimError> {
    let key = match algorithm {
        KeyAlgorithm::Rsa => RsaPrivateKey::new(&mut rsa::rand_core::OsRng, MIN_RSA_BITS)
            .map(|key| PrivateKey::Rsa(Box::new(key)))
            .map_err(|e| invalid(format!("cannot generate an RSA key: {e}")))?,
        KeyAlgorithm::Ed25519 => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed)
                .map_err(|e| invalid(format!("no randomness available: {e}")))?;
            PrivateKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
        }
    };
    let pem = match &key {
        PrivateKey::Rsa(rsa) => rsa
            .to_pkcs1_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| e.to_string()),
        PrivateKey::Ed25519(ed) => ed
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| e.to_string()),
    }
    .map_err(|e| invalid(format!("cannot encode the new key: {e}")))?;
    Ok(GeneratedKey {
        pem,
        txt_record: txt_record(algorithm, &key.public_key_base64()?),
    })
}

/// `optin keys dkim`: writes a new key to `out` (mode 0600, never over an existing file)
/// and returns the lines to print.
pub fn generate_key_file(
    domain: &str,
    selector: &str,
    algorithm: KeyAlgorithm,
    out: &Path,
) -> Result<String, DkimError> {
    let domain = checked_domain_name("--domain", domain)?;
    let selector = checked_domain_name("--selector", selector)?;
    if out.exists() {
        return Err(invalid(format!(
            "{} exists; optin never overwrites a key (remove it first, or choose another file)",
            out.display()
        )));
    }
    let key = generate_key(algorithm)?;
    crate::private_files::write_new(out, key.pem.as_bytes()).map_err(|source| {
        DkimError::Write {
            path: out.to_path_buf(),
            source,
        }
    })?;
    Ok(format!(
        "Wrote the {} key to {} (mode 0600).\n\
         Publish this TXT record at {selector}._domainkey.{domain}, as {SPLIT_NOTE}:\n{}\n\
         Then set [mail.dkim] domain = \"{domain}\", selector = \"{selector}\", \
         private_key_file = \"{}\".",
        algorithm.tag(),
        out.display(),
        dns_strings(&key.txt_record),
        out.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_allows_the_domain_and_its_subdomains_only() {
        assert!(is_aligned("example.com", "example.com"));
        assert!(is_aligned("news.example.com", "example.com"));
        assert!(!is_aligned("badexample.com", "example.com"));
        assert!(!is_aligned("example.com", "news.example.com"));
        assert!(!is_aligned("example.org", "example.com"));
    }

    #[test]
    fn domain_names_are_checked_and_lowercased() {
        assert_eq!(
            checked_domain_name("domain", " Example.COM. ").unwrap(),
            "example.com"
        );
        for bad in ["", "a..b", "exa mple.com", "x;h=from", "ex\r\nample"] {
            assert!(checked_domain_name("domain", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_usable_pem_key() {
        let refused = |pem: &str| PrivateKey::from_pem(pem).err().unwrap_or_default();
        assert!(refused("hello").contains("not a PEM private key"));
        assert!(refused("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n").contains("encrypted"));
        assert!(
            refused("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .contains("neither RSA nor Ed25519")
        );
    }

    #[test]
    fn a_record_is_split_into_strings_of_at_most_255_characters() {
        let record = format!("v=DKIM1; k=rsa; p={}", "A".repeat(392));
        let split = dns_strings(&record);
        let strings: Vec<&str> = split.split("\" \"").map(|s| s.trim_matches('"')).collect();
        assert_eq!(strings.len(), 2, "{split}");
        assert_eq!(strings[0].len(), 255);
        assert_eq!(strings.concat(), record);
        assert_eq!(
            dns_strings("v=DKIM1; k=ed25519; p=AB"),
            "\"v=DKIM1; k=ed25519; p=AB\""
        );
    }

    #[test]
    fn a_generated_ed25519_key_loads_and_gives_its_record() {
        let generated = generate_key(KeyAlgorithm::Ed25519).unwrap();
        let key = PrivateKey::from_pem(&generated.pem).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
        let signer = DkimSigner::new("example.com".into(), "s1".into(), &key).unwrap();
        assert_eq!(signer.txt_record(), generated.txt_record);
        assert!(generated.txt_record.starts_with("v=DKIM1; k=ed25519; p="));
        assert_eq!(signer.record_name(), "s1._domainkey.example.com");
    }
}
