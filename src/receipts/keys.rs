//! Receipt signing keys: Ed25519 keys read from PKCS#8 PEM files, each named by its
//! RFC 7638 JWK thumbprint, kept in a ring whose first key signs while every key is
//! published, so that receipts signed before a rotation still verify.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use super::jwks::{Jwks, PublicJwk};

#[derive(Debug, thiserror::Error)]
pub enum ReceiptKeyError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("{} holds the same key as {} (kid {kid}); list each key once", path.display(), first.display())]
    Duplicate {
        path: PathBuf,
        first: PathBuf,
        kid: String,
    },
    #[error("{} exists; optin never overwrites a key (remove it first, or choose another file)", .0.display())]
    Exists(PathBuf),
    #[error("cannot write the key file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make a key: {0}")]
    Generate(String),
}

/// One Ed25519 key, ready to sign with jsonwebtoken and to publish.
pub struct ReceiptKey {
    kid: String,
    /// The public key, base64url without padding: the JWK's `x`.
    x: String,
    signing: jsonwebtoken::EncodingKey,
}

impl fmt::Debug for ReceiptKey {
    // The kid names the key; nothing of the private half is ever shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiptKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ReceiptKey {
    /// An Ed25519 private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as
    /// `optin keys receipt` and `openssl genpkey -algorithm ed25519` write it.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let pem = pem.trim();
        if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err("the key is encrypted; store it without a passphrase, readable only by optin (mode 0600)".into());
        }
        if !pem.starts_with("-----BEGIN PRIVATE KEY-----") {
            return Err(
                "not a PKCS#8 PEM private key: expected '-----BEGIN PRIVATE KEY-----'".into(),
            );
        }
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|_| "not an Ed25519 key, or a damaged one".to_string())?;
        Self::from_signing_key(&key)
    }

    fn from_signing_key(key: &SigningKey) -> Result<Self, String> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| format!("cannot encode the key: {e}"))?;
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        Ok(Self {
            kid: jwk_thumbprint(&x),
            x,
            signing: jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        })
    }

    /// The RFC 7638 thumbprint of the public key: the JWS `kid` and the JWKS entry's.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(super) fn encoding_key(&self) -> &jsonwebtoken::EncodingKey {
        &self.signing
    }

    pub fn public_jwk(&self) -> PublicJwk {
        PublicJwk::ed25519(&self.x, &self.kid)
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key (`x`, base64url): SHA-256 of the JWK's
/// required members in lexicographic order with no whitespace (RFC 8037 §2 names them:
/// `crv`, `kty`, `x`), base64url without padding.
///
/// Written here rather than taken from jsonwebtoken, whose OKP thumbprint leaves the
/// quotes off `crv` and so hashes something other than the RFC's input.
pub fn jwk_thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The configured keys, in order: the first signs, all are published. Never empty.
#[derive(Debug)]
pub struct ReceiptKeys {
    keys: Vec<ReceiptKey>,
}

impl ReceiptKeys {
    /// Reads every file of `consent.receipt_keys`; `None` when the list is empty
    /// (receipts are off).
    pub fn load(paths: &[PathBuf]) -> Result<Option<Self>, ReceiptKeyError> {
        let mut keys: Vec<(ReceiptKey, &PathBuf)> = Vec::with_capacity(paths.len());
        for path in paths {
            let pem = std::fs::read_to_string(path).map_err(|source| ReceiptKeyError::Read {
                path: path.clone(),
                source,
            })?;
            let key = ReceiptKey::from_pem(&pem).map_err(|reason| ReceiptKeyError::Invalid {
                path: path.clone(),
                reason,
            })?;
            // A key listed twice would be published twice under one kid, and a
            // verifier that picks the first match could not tell which file is meant.
            if let Some((_, first)) = keys.iter().find(|(known, _)| known.kid == key.kid) {
                return Err(ReceiptKeyError::Duplicate {
                    path: path.clone(),
                    first: (*first).clone(),
                    kid: key.kid,
                });
            }
            keys.push((key, path));
        }
        Ok(Self::new(keys.into_iter().map(|(key, _)| key).collect()))
    }

    /// A ring of keys already read; `None` when there are none.
    pub fn new(keys: Vec<ReceiptKey>) -> Option<Self> {
        (!keys.is_empty()).then_some(Self { keys })
    }

    /// The key new receipts are signed with.
    pub fn signing_key(&self) -> &ReceiptKey {
        &self.keys[0]
    }

    /// Every key, the signing one first: what `/.well-known/jwks.json` publishes.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self.keys.iter().map(ReceiptKey::public_jwk).collect(),
        }
    }
}

/// A new Ed25519 key as PKCS#8 PEM.
pub fn generate_key_pem() -> Result<String, ReceiptKeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| ReceiptKeyError::Generate(format!("no randomness available: {e}")))?;
    let pem = SigningKey::from_bytes(&seed)
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| ReceiptKeyError::Generate(e.to_string()))?;
    Ok(pem.to_string())
}

/// `optin keys receipt --out FILE`: writes a new key (mode 0600, never over an existing
/// file) and gives its kid.
pub fn generate_key_file(out: &Path) -> Result<String, ReceiptKeyError> {
    if out.exists() {
        return Err(ReceiptKeyError::Exists(out.to_path_buf()));
    }
    let pem = generate_key_pem()?;
    let key = ReceiptKey::from_pem(&pem).map_err(ReceiptKeyError::Generate)?;
    crate::private_files::write_new(out, pem.as_bytes()).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            ReceiptKeyError::Exists(out.to_path_buf())
        } else {
            ReceiptKeyError::Write {
                path: out.to_path_buf(),
                source,
            }
        }
    })?;
    Ok(key.kid)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The Ed25519 key of RFC 8037 Appendix A.1 (`d`, `x`) and its RFC 7638 thumbprint
    /// from Appendix A.3.
    pub(crate) const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    pub(crate) const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const RFC8037_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

    pub(crate) fn rfc8037_key() -> ReceiptKey {
        let seed: [u8; 32] = URL_SAFE_NO_PAD
            .decode(RFC8037_D)
            .unwrap()
            .try_into()
            .unwrap();
        ReceiptKey::from_signing_key(&SigningKey::from_bytes(&seed)).unwrap()
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint_of_the_rfc_8037_example_key() {
        assert_eq!(jwk_thumbprint(RFC8037_X), RFC8037_THUMBPRINT);
        let key = rfc8037_key();
        assert_eq!(key.x, RFC8037_X);
        assert_eq!(key.kid(), RFC8037_THUMBPRINT);
    }

    #[test]
    fn a_key_survives_its_pem_and_keeps_its_kid() {
        let pem = generate_key_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let first = ReceiptKey::from_pem(&pem).unwrap();
        let again = ReceiptKey::from_pem(&pem).unwrap();
        assert_eq!(first.kid(), again.kid());
        assert_eq!(first.kid().len(), 43, "base64url of 32 bytes");
        assert!(!format!("{first:?}").contains(&pem[30..60]));
    }

    #[test]
    fn what_is_not_an_ed25519_pkcs8_key_is_refused_with_a_reason() {
        let refused = |pem: &str| ReceiptKey::from_pem(pem).err().unwrap_or_default();
        assert!(refused("hello").contains("not a PKCS#8 PEM private key"));
        assert!(refused("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n").contains("encrypted"));
        assert!(
            refused("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .contains("not an Ed25519 key")
        );
        let p256 = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let p256_pem = p256::pkcs8::EncodePrivateKey::to_pkcs8_pem(&p256, LineEnding::LF).unwrap();
        assert!(refused(&p256_pem).contains("not an Ed25519 key"));
    }

    #[test]
    fn the_ring_signs_with_the_first_key_publishes_all_and_refuses_a_key_twice() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.pem");
        let b = dir.path().join("b.pem");
        let kid_a = generate_key_file(&a).unwrap();
        let kid_b = generate_key_file(&b).unwrap();
        assert_ne!(kid_a, kid_b);

        let ring = ReceiptKeys::load(&[b.clone(), a.clone()]).unwrap().unwrap();
        assert_eq!(ring.signing_key().kid(), kid_b);
        let published: Vec<String> = ring.jwks().keys.into_iter().map(|k| k.kid).collect();
        assert_eq!(published, [kid_b.clone(), kid_a]);

        assert!(ReceiptKeys::load(&[]).unwrap().is_none());
        let twice = ReceiptKeys::load(&[b.clone(), b.clone()]).unwrap_err();
        assert!(matches!(twice, ReceiptKeyError::Duplicate { ref kid, .. } if *kid == kid_b));
        let missing = ReceiptKeys::load(&[dir.path().join("nope.pem")]).unwrap_err();
        assert!(missing.to_string().contains("nope.pem"), "{missing}");
    }

    #[test]
    fn a_new_key_file_is_private_and_never_overwrites() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("receipt.pem");
        generate_key_file(&out).unwrap();
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let before = std::fs::read_to_string(&out).unwrap();
        assert!(matches!(
            generate_key_file(&out),
            Err(ReceiptKeyError::Exists(_))
        ));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), before);
    }
}
