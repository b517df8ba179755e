//! Free text kept as proof: consent evidence, an explanation of a lawful basis, the form
//! a signup came from. One rule for all of it, applied where a request is parsed:
//! trimmed, empty means none, and longer than [`Evidence::MAX_CHARS`] is refused, never
//! cut, since a cut proof could say something its writer did not.

/// Text that passed the rule; the only way to get one is [`Evidence::parse`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Evidence(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at most {} characters", Evidence::MAX_CHARS)]
pub struct EvidenceTooLong;

impl Evidence {
    /// Longest text kept.
    pub const MAX_CHARS: usize = 2048;

    /// `None` for absent or blank text.
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, EvidenceTooLong> {
        let Some(text) = raw.map(str::trim).filter(|text| !text.is_empty()) else {
            return Ok(None);
        };
        if text.chars().count() > Self::MAX_CHARS {
            return Err(EvidenceTooLong);
        }
        Ok(Some(Self(text.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_none_text_is_trimmed_and_too_long_is_refused_not_cut() {
        assert_eq!(Evidence::parse(None), Ok(None));
        assert_eq!(Evidence::parse(Some("  \t ")), Ok(None));
        let kept = Evidence::parse(Some("  signed form #12 "))
            .unwrap()
            .unwrap();
        assert_eq!(kept.as_str(), "signed form #12");
        let longest = "é".repeat(Evidence::MAX_CHARS);
        assert!(Evidence::parse(Some(&longest)).unwrap().is_some());
        let longer = format!("{longest}x");
        assert_eq!(Evidence::parse(Some(&longer)), Err(EvidenceTooLong));
    }
}
