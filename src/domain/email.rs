//! A normalized email address: the only way to get one is `EmailAddress::parse`.

use std::fmt;

/// The longest address we accept (RFC 5321 path limit minus the angle brackets).
const MAX_ADDRESS_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("the address is empty")]
    Empty,
    #[error("the address is longer than 254 characters")]
    TooLong,
    #[error("the address needs exactly one local part and one domain, joined by '@'")]
    MissingAt,
    #[error("the part before '@' is not valid")]
    InvalidLocalPart,
    #[error("the domain is not valid")]
    InvalidDomain,
}

/// Trimmed, lower-cased, domain in IDNA ASCII form, at most 254 characters.
///
/// Deliberately not `Display`: an address must never end up in a log line by accident.
/// Use [`EmailAddress::masked`] for logs and [`EmailAddress::as_str`] where the real
/// address is needed (mail headers, exports).
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        // Checked before any further work so huge inputs are refused cheaply.
        if trimmed.len() > MAX_ADDRESS_LEN * 4 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(EmailError::MissingAt)?;
        let local = local.to_lowercase();
        if !is_valid_local_part(&local) {
            return Err(EmailError::InvalidLocalPart);
        }
        let domain = normalize_domain(domain)?;
        let address = format!("{local}@{domain}");
        if address.len() > MAX_ADDRESS_LEN {
            return Err(EmailError::TooLong);
        }
        Ok(Self(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`, in IDNA ASCII form.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }

    /// `j***@example.com`: enough for an operator to correlate, not enough to identify.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    /// The address without its `+tag` (`carol+news@x` is `carol@x`), for every domain:
    /// one mailbox behind many tags shares one allowance of mails. The address itself is
    /// kept as typed everywhere else.
    #[must_use]
    pub fn without_tag(&self) -> Self {
        match self.0.rsplit_once('@') {
            Some((local, domain)) => match local.split_once('+') {
                Some((base, _)) if !base.is_empty() => Self(format!("{base}@{domain}")),
                _ => self.clone(),
            },
            None => self.clone(),
        }
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.masked())
    }
}

impl<'de> serde::Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        EmailAddress::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Masks anything that looks like an address; used for log output of raw input too.
pub fn mask(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// Masks every address-looking part of a free text, such as an SMTP server's reply
/// (`550 5.1.1 <jane@example.com>: Recipient address rejected`), before the text is
/// logged or stored. Every `@` with address characters on both sides is taken for an
/// address; over-masking a harmless `@` costs nothing, a missed address is a leak.
pub fn mask_addresses(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut masked = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < chars.len() {
        if chars[at] != '@' {
            at += 1;
            continue;
        }
        let mut start = at;
        while start > copied && is_local_char(chars[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < chars.len() && is_domain_char(chars[end]) {
            end += 1;
        }
        if start == at || end == at + 1 {
            at += 1;
            continue;
        }
        masked.extend(&chars[copied..start]);
        let local: String = chars[start..at].iter().collect();
        let domain: String = chars[at + 1..end].iter().collect();
        masked.push_str(&mask(&format!("{local}@{domain}")));
        copied = end;
        at = end;
    }
    masked.extend(&chars[copied..]);
    masked
}

/// RFC 5322 dot-atom, plus any non-ASCII character (RFC 6531 allows UTF-8 local parts).
fn is_valid_local_part(local: &str) -> bool {
    if local.is_empty() || local.len() > MAX_LOCAL_LEN {
        return false;
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    local.chars().all(is_local_char)
}

fn is_local_char(c: char) -> bool {
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";
    c.is_ascii_alphanumeric()
        || c == '.'
        || SPECIALS.contains(c)
        || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
}

/// Domain characters as they may appear in free text: IDNA ASCII or still in Unicode.
fn is_domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || c == '.'
        || c == '-'
        || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
}

fn normalize_domain(domain: &str) -> Result<String, EmailError> {
    let ascii = idna::domain_to_ascii(domain).map_err(|_| EmailError::InvalidDomain)?;
    let labels: Vec<&str> = ascii.split('.').collect();
    // A mail domain needs at least one dot: "localhost" style addresses are not deliverable.
    if labels.len() < 2 {
        return Err(EmailError::InvalidDomain);
    }
    let labels_ok = labels.iter().all(|label| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    let tld_ok = labels
        .last()
        .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()));
    if labels_ok && tld_ok {
        Ok(ascii)
    } else {
        Err(EmailError::InvalidDomain)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_tag_is_dropped_for_the_mail_allowance_and_nothing_else() {
        let tagged = EmailAddress::parse("Carol+News@Example.com").unwrap();
        assert_eq!(tagged.as_str(), "carol+news@example.com", "kept as typed");
        assert_eq!(tagged.without_tag().as_str(), "carol@example.com");
        let two = EmailAddress::parse("carol+a+b@example.com").unwrap();
        assert_eq!(two.without_tag().as_str(), "carol@example.com");
        let plain = EmailAddress::parse("carol@example.com").unwrap();
        assert_eq!(plain.without_tag(), plain);
        let leading = EmailAddress::parse("+carol@example.com").unwrap();
        assert_eq!(leading.without_tag(), leading, "no base to keep");
    }
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        let email = EmailAddress::parse("  Jane.Doe@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "jane.doe@example.com");
    }

    #[test]
    fn converts_unicode_domain_to_idna_ascii() {
        let email = EmailAddress::parse("ana@bücher.example").unwrap();
        assert_eq!(email.as_str(), "ana@xn--bcher-kva.example");
    }

    #[test]
    fn rejects_invalid_addresses() {
        for raw in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a..b@example.com",
            "a b@example.com",
            "a@exa mple.com",
            "a@-x.com",
            "a@1.2",
        ] {
            assert!(
                EmailAddress::parse(raw).is_err(),
                "{raw:?} should be rejected"
            );
        }
    }

    #[test]
    fn rejects_addresses_longer_than_254() {
        let long = format!(
            "{}@{}.com",
            "a".repeat(64),
            "b".repeat(63) + "." + &"c".repeat(63) + "." + &"d".repeat(63)
        );
        assert!(long.len() > 254);
        assert_eq!(EmailAddress::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn masks_all_but_the_first_character() {
        let email = EmailAddress::parse("jane@example.com").unwrap();
        assert_eq!(email.masked(), "j***@example.com");
        assert!(!format!("{email:?}").contains("jane"));
    }

    #[test]
    fn masks_every_address_in_a_free_text() {
        assert_eq!(
            mask_addresses("550 5.1.1 <jane.doe@example.com>: Recipient address rejected"),
            "550 5.1.1 <j***@example.com>: Recipient address rejected"
        );
        assert_eq!(
            mask_addresses("from bob+x@a.example to ana@bücher.example, done"),
            "from b***@a.example to a***@bücher.example, done"
        );
        assert_eq!(
            mask_addresses("no address @ here, nor@ here, nor @there"),
            "no address @ here, nor@ here, nor @there"
        );
        let masked = mask_addresses("j***@example.com");
        assert_eq!(masked, "j***@example.com", "masking twice changes nothing");
    }

    proptest::proptest! {
        #[test]
        fn masked_text_keeps_no_local_part(local in "[a-z0-9._+-]{2,20}", before in "[ <:;,]{0,3}", after in "[ >:;,]{0,3}") {
            let local = local.trim_matches('.').to_string();
            proptest::prop_assume!(local.len() >= 2 && !local.contains(".."));
            let text = format!("550{before}{local}@example.com{after}rejected");
            let masked = mask_addresses(&text);
            proptest::prop_assert!(!masked.contains(&format!("{local}@")), "{}", masked);
        }

        #[test]
        fn masking_arbitrary_text_never_panics(text in ".{0,300}") {
            let _ = mask_addresses(&text);
        }

        #[test]
        fn parse_never_panics_and_output_is_normal(raw in ".{0,300}") {
            if let Ok(email) = EmailAddress::parse(&raw) {
                proptest::prop_assert!(email.as_str().len() <= 254);
                proptest::prop_assert_eq!(EmailAddress::parse(email.as_str()).unwrap(), email.clone());
                proptest::prop_assert_eq!(email.as_str().to_lowercase(), email.as_str());
            }
        }
    }
}
