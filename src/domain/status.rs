//! The status of one (contact, subscription type), and the lawful bases of GDPR Art. 6(1).

use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    OptedIn,
    NotSubscribed,
    Unsubscribed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::OptedIn => "opted_in",
            Status::NotSubscribed => "not_subscribed",
            Status::Unsubscribed => "unsubscribed",
        }
    }
}

impl FromStr for Status {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "opted_in" => Ok(Status::OptedIn),
            "not_subscribed" => Ok(Status::NotSubscribed),
            "unsubscribed" => Ok(Status::Unsubscribed),
            _ => Err(UnknownName),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown name")]
pub struct UnknownName;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LawfulBasis {
    Consent,
    Contract,
    LegalObligation,
    VitalInterests,
    PublicTask,
    LegitimateInterests,
}

impl LawfulBasis {
    pub const ALL: [LawfulBasis; 6] = [
        LawfulBasis::Consent,
        LawfulBasis::Contract,
        LawfulBasis::LegalObligation,
        LawfulBasis::VitalInterests,
        LawfulBasis::PublicTask,
        LawfulBasis::LegitimateInterests,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LawfulBasis::Consent => "consent",
            LawfulBasis::Contract => "contract",
            LawfulBasis::LegalObligation => "legal_obligation",
            LawfulBasis::VitalInterests => "vital_interests",
            LawfulBasis::PublicTask => "public_task",
            LawfulBasis::LegitimateInterests => "legitimate_interests",
        }
    }

    /// The point of GDPR Art. 6(1) that makes processing on this basis lawful.
    pub fn gdpr_article(self) -> &'static str {
        match self {
            LawfulBasis::Consent => "Art. 6(1)(a)",
            LawfulBasis::Contract => "Art. 6(1)(b)",
            LawfulBasis::LegalObligation => "Art. 6(1)(c)",
            LawfulBasis::VitalInterests => "Art. 6(1)(d)",
            LawfulBasis::PublicTask => "Art. 6(1)(e)",
            LawfulBasis::LegitimateInterests => "Art. 6(1)(f)",
        }
    }
}

impl FromStr for LawfulBasis {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LawfulBasis::ALL
            .into_iter()
            .find(|basis| basis.as_str() == s)
            .ok_or(UnknownName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for basis in LawfulBasis::ALL {
            let json = serde_json::to_string(&basis).unwrap();
            assert_eq!(json, format!("\"{}\"", basis.as_str()));
            assert_eq!(basis.as_str().parse::<LawfulBasis>().unwrap(), basis);
        }
        assert_eq!(
            serde_json::to_string(&Status::NotSubscribed).unwrap(),
            "\"not_subscribed\""
        );
        assert!("subscribed".parse::<Status>().is_err());
    }
}
