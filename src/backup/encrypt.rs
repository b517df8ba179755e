//! Encryption of dumps with age (X25519 recipients, `age1…`), so that the `age` tool,
//! or any age implementation, decrypts them with the matching identity.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::str::FromStr;

use age::x25519;

use super::BackupError;

/// The first bytes of every age file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";

/// Who can decrypt a dump: none (a plain dump) or one or more age recipients.
#[derive(Clone, Debug, Default)]
pub struct Recipients(Vec<x25519::Recipient>);

impl Recipients {
    /// Parses `age1…` recipients; an empty list means a plain dump.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Self, String> {
        list.iter()
            .map(|text| {
                let text = text.as_ref().trim();
                x25519::Recipient::from_str(text).map_err(|reason| {
                    format!("'{text}' is not an age X25519 recipient (age1…): {reason}")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `out` wrapped so that what is written to it is encrypted to these recipients, or
    /// `out` itself when there are none.
    pub fn wrap<W: Write>(&self, out: W) -> Result<Sealed<W>, BackupError> {
        if self.0.is_empty() {
            return Ok(Sealed::Plain(out));
        }
        let encryptor =
            age::Encryptor::with_recipients(self.0.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| BackupError::Encrypt(e.to_string()))?;
        let writer = encryptor
            .wrap_output(out)
            .map_err(|e| BackupError::Write(e.to_string()))?;
        Ok(Sealed::Age(Box::new(writer)))
    }
}

/// A dump's output, plain or encrypted; [`Sealed::finish`] must be called at the end.
pub enum Sealed<W: Write> {
    Plain(W),
    Age(Box<age::stream::StreamWriter<W>>),
}

impl<W: Write> Sealed<W> {
    /// Ends the encryption (its last chunk and tag) and hands back the output.
    pub fn finish(self) -> Result<W, BackupError> {
        match self {
            Sealed::Plain(out) => Ok(out),
            Sealed::Age(writer) => writer
                .finish()
                .map_err(|e| BackupError::Write(e.to_string())),
        }
    }
}

impl<W: Write> Write for Sealed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sealed::Plain(out) => out.write(buf),
            Sealed::Age(writer) => writer.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sealed::Plain(out) => out.flush(),
            Sealed::Age(writer) => writer.flush(),
        }
    }
}

/// The identities in an age identity file (the output of `age-keygen`).
pub struct Identities(Vec<Box<dyn age::Identity>>);

impl Identities {
    pub fn load(path: &Path) -> Result<Self, BackupError> {
        let file = std::fs::File::open(path).map_err(|e| {
            BackupError::Decrypt(format!(
                "cannot read the identity file {}: {e}",
                path.display()
            ))
        })?;
        let identities = age::IdentityFile::from_buffer(BufReader::new(file))
            .and_then(|file| {
                file.into_identities()
                    .map_err(|e| std::io::Error::other(e.to_string()))
            })
            .map_err(|e| {
                BackupError::Decrypt(format!(
                    "{} is not an age identity file: {e}",
                    path.display()
                ))
            })?;
        Ok(Self(identities))
    }
}

/// The plaintext of `input`: decrypted when it is an age file (which needs
/// `identities`), as it is otherwise.
pub fn open_sealed<R: BufRead + 'static>(
    mut input: R,
    identities: Option<&Identities>,
) -> Result<Box<dyn Read>, BackupError> {
    let starts_with_age = input
        .fill_buf()
        .map_err(|e| BackupError::Read(e.to_string()))?
        .starts_with(AGE_MAGIC);
    if !starts_with_age {
        return Ok(Box::new(input));
    }
    let identities = identities.ok_or(BackupError::NeedsIdentity)?;
    let decryptor =
        age::Decryptor::new_buffered(input).map_err(|e| BackupError::Decrypt(e.to_string()))?;
    let reader = decryptor
        .decrypt(
            identities
                .0
                .iter()
                .map(|i| i.as_ref() as &dyn age::Identity),
        )
        .map_err(|e| BackupError::Decrypt(e.to_string()))?;
    Ok(Box::new(reader))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_sealed_output_opens_with_the_identity_only() {
        let identity = x25519::Identity::generate();
        let recipients =
            Recipients::parse(&[identity.to_public().to_string()]).expect("a recipient");
        let mut sealed = recipients.wrap(Vec::new()).expect("wraps");
        sealed.write_all(b"consent proof").expect("writes");
        let bytes = sealed.finish().expect("finishes");
        assert!(bytes.starts_with(AGE_MAGIC));

        let dir = tempfile::tempdir().expect("a folder");
        let key = dir.path().join("key.txt");
        std::fs::write(&key, identity.to_string().expose_secret()).expect("writes the key");
        let identities = Identities::load(&key).expect("loads");
        let mut plain = Vec::new();
        open_sealed(std::io::Cursor::new(bytes.clone()), Some(&identities))
            .expect("opens")
            .read_to_end(&mut plain)
            .expect("reads");
        assert_eq!(plain, b"consent proof");
        assert!(matches!(
            open_sealed(std::io::Cursor::new(bytes), None),
            Err(BackupError::NeedsIdentity)
        ));
    }

    #[test]
    fn recipients_that_are_not_age_keys_are_refused_by_value() {
        let error = Recipients::parse(&["ssh-ed25519 AAAA"]).unwrap_err();
        assert!(error.contains("ssh-ed25519"), "{error}");
        assert!(Recipients::parse::<&str>(&[]).expect("none").is_empty());
    }
}
