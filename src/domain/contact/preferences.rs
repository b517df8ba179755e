//! The preference center: every type with its status, any change in one save. Its link
//! came by mail to the address, so it proves the person owns it: opt-ins here are
//! consent, recorded against the notice the page showed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{Contact, StatusChange};
use crate::domain::funnel::FunnelStage;
use crate::domain::plan::{Plan, Planned};
use crate::domain::rules::Rules;
use crate::domain::subscription_type::UnknownNotice;
use crate::domain::{RequestMeta, Source, Status};

/// What the person chose on the page.
#[derive(Clone, Debug, Default)]
pub struct PreferenceChoice {
    pub opted_in: BTreeSet<String>,
    /// The notice version shown beside each checkbox: what a tick agrees to.
    pub notice_versions: BTreeMap<String, String>,
    pub unsubscribe_all: bool,
    /// The types the form covered; others keep their status. A post that names none
    /// changes nothing (except "unsubscribe from all").
    pub shown: BTreeSet<String>,
    /// Lift the person's own block on confirmation requests.
    pub allow_signups: bool,
}

/// A save refused as a whole, so that nothing changes and the page is shown again.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PreferencesRefused {
    /// A tick whose notice version is missing or was never published in the page's
    /// language: the page is shown again with the text of today.
    #[error(transparent)]
    NoticeNotShown(#[from] UnknownNotice),
}

impl Contact {
    /// Applies a save of the preference center in `locale` (the language the page was
    /// shown in). Answers the contact as it is afterwards.
    pub fn set_preferences(
        mut self,
        choice: &PreferenceChoice,
        rules: &Rules,
        locale: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Planned<Contact>, PreferencesRefused> {
        let source = Source::PreferenceCenter;
        let pending_before = self.pending.clone();
        let mut events = Vec::new();
        if choice.allow_signups {
            events.extend(self.lift_signup_block(source, meta, now));
        }
        if choice.unsubscribe_all {
            events.extend(
                self.leave_everything(rules, source, meta, now)
                    .into_iter()
                    .flatten(),
            );
        } else {
            for subscription_type in rules.catalog().all() {
                let id = &subscription_type.id;
                if !choice.shown.contains(id.as_str()) {
                    continue;
                }
                let wanted = choice.opted_in.contains(id.as_str());
                let current = self.status(id);
                let change = if wanted && current != Status::OptedIn {
                    let version = choice
                        .notice_versions
                        .get(id.as_str())
                        .map_or("", String::as_str);
                    let shown = subscription_type.notice_shown(
                        locale,
                        rules.default_locale(),
                        Some(version),
                    )?;
                    Some(StatusChange::consent(source, shown))
                } else if !wanted && current == Status::OptedIn {
                    Some(StatusChange::new(Status::Unsubscribed, source))
                } else {
                    None
                };
                if let Some(change) = change {
                    events.extend(self.change_status(id, change, meta, now));
                }
            }
        }
        if events.is_empty() {
            return Ok(Planned::Nothing(self));
        }
        let withdrawn = self.funnel_removed(&pending_before, FunnelStage::Cancelled);
        Ok(Planned::Write(
            Plan::keep(self.clone(), events, self).with_funnel(withdrawn),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{contact, notice, rules, type_id, META};
    use super::*;
    use crate::domain::LawfulBasis;

    fn ticked(types: &[&str], version: &str) -> PreferenceChoice {
        PreferenceChoice {
            opted_in: types.iter().map(|t| (*t).to_string()).collect(),
            notice_versions: types
                .iter()
                .map(|t| ((*t).to_string(), version.to_string()))
                .collect(),
            shown: ["news", "offers", "alerts"]
                .into_iter()
                .map(String::from)
                .collect(),
            ..PreferenceChoice::default()
        }
    }

    #[test]
    fn a_tick_opts_in_with_consent_to_the_notice_version_shown() {
        let now = Utc::now();
        let Planned::Write(plan) = contact(now)
            .set_preferences(&ticked(&["news"], "v1"), &rules(), "en", &META, now)
            .unwrap()
        else {
            panic!("a write")
        };
        let event = &plan.events[0];
        assert_eq!(event.source, Source::PreferenceCenter);
        assert_eq!(event.lawful_basis, Some(LawfulBasis::Consent));
        let recorded = event.consent_notice.as_ref().unwrap();
        assert_eq!(
            recorded.version, "v1",
            "the past version the page showed, not today's"
        );
        assert_ne!(recorded.sha256, notice("news").sha256);
    }

    #[test]
    fn a_tick_with_an_unknown_or_missing_notice_version_changes_nothing() {
        let now = Utc::now();
        let refused =
            contact(now).set_preferences(&ticked(&["news"], "v9"), &rules(), "en", &META, now);
        assert!(
            matches!(refused, Err(PreferencesRefused::NoticeNotShown(UnknownNotice { ref version, .. })) if version == "v9")
        );
        let mut missing = ticked(&["news"], "v2");
        missing.notice_versions.clear();
        assert!(contact(now)
            .set_preferences(&missing, &rules(), "en", &META, now)
            .is_err());
        // The Dutch page never showed v1 (it is a past English notice).
        assert!(contact(now)
            .set_preferences(&ticked(&["news"], "v1"), &rules(), "nl", &META, now)
            .is_err());
    }

    #[test]
    fn unticking_unsubscribes_and_an_unchanged_save_writes_nothing() {
        let now = Utc::now();
        let Planned::Write(plan) = contact(now)
            .set_preferences(
                &ticked(&["news", "offers"], "v2"),
                &rules(),
                "en",
                &META,
                now,
            )
            .unwrap()
        else {
            panic!("a write")
        };
        let both = plan.value;
        let Planned::Write(plan) = both
            .clone()
            .set_preferences(&ticked(&["offers"], "v2"), &rules(), "en", &META, now)
            .unwrap()
        else {
            panic!("a write")
        };
        assert_eq!(plan.value.status(&type_id("news")), Status::Unsubscribed);
        assert_eq!(plan.value.status(&type_id("offers")), Status::OptedIn);
        assert!(matches!(
            both.set_preferences(
                &ticked(&["news", "offers"], "v2"),
                &rules(),
                "en",
                &META,
                now
            ),
            Ok(Planned::Nothing(_))
        ));
    }

    #[test]
    fn the_person_lifts_their_own_block() {
        let now = Utc::now();
        let mut blocked = contact(now);
        blocked.block_signups(Source::UnsubscribePage, &META, now);
        let choice = PreferenceChoice {
            allow_signups: true,
            ..PreferenceChoice::default()
        };
        let Planned::Write(plan) = blocked
            .set_preferences(&choice, &rules(), "en", &META, now)
            .unwrap()
        else {
            panic!("a write")
        };
        assert!(!plan.value.is_signup_blocked());
    }
}
