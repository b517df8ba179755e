//! The preference center: every type with its status; any change in one save. The token
//! came by mail, so it proves the person owns the address: opt-ins here are consent.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use super::{LinkError, Plan, Planned, Subscriptions};
use crate::domain::ErasureReason;
use crate::domain::{
    Catalog, Contact, ContactId, LawfulBasis, Purpose, RequestMeta, Source, Status, StatusChange,
    SubscriptionType,
};
use crate::tokens::Purpose as TokenPurpose;

impl From<super::RightsError> for LinkError {
    fn from(error: super::RightsError) -> Self {
        match error {
            super::RightsError::Store(e) => LinkError::Store(e),
            _ => LinkError::Gone,
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct TypeView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub purpose: Purpose,
    pub status: crate::domain::Status,
    pub opted_in: bool,
    pub notice_version: String,
    pub notice_text: String,
}

impl TypeView {
    /// A type as a page shows it in `locale`: with the notice shown there today, the
    /// one a tick on that page agrees to.
    pub(super) fn of(t: &SubscriptionType, status: Status, locale: &str, fallback: &str) -> Self {
        let (_, notice) = t.current_notice(locale, fallback);
        TypeView {
            id: t.id.to_string(),
            name: t.name_in(locale, fallback),
            description: t.description_in(locale, fallback),
            purpose: t.purpose,
            status,
            opted_in: status == Status::OptedIn,
            notice_version: notice.version.clone(),
            notice_text: notice.text.clone(),
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PreferencesView {
    pub contact_id: ContactId,
    pub locale: String,
    pub types: Vec<TypeView>,
    pub restricted: bool,
    /// The person asked not to be sent confirmation requests.
    pub signups_blocked: bool,
    /// The link is fresh enough for export and erasure.
    pub rights_allowed: bool,
}

/// What the person chose on the page.
#[derive(Clone, Debug, Default)]
pub struct PreferenceChoice {
    pub opted_in: BTreeSet<String>,
    /// The notice version shown beside each checkbox, to record what they agreed to.
    pub notice_versions: BTreeMap<String, String>,
    pub unsubscribe_all: bool,
    /// The types the form covered; others keep their status. A post that names none
    /// changes nothing (except "unsubscribe from all").
    pub shown: BTreeSet<String>,
    /// Lift the person's own block on confirmation requests.
    pub allow_signups: bool,
}

/// A verified preferences link: whose it is, its language, and whether it is fresh
/// enough for export and erasure.
struct PreferencesLink {
    contact_id: ContactId,
    locale: Option<String>,
    rights_allowed: bool,
}

impl Subscriptions {
    /// Preferences links must carry their issue time (version 1 links, which could be
    /// reached from an unsubscribe page, are treated as expired).
    fn preferences_link(&self, token: &str) -> Result<PreferencesLink, LinkError> {
        let claims = self.verify_link(token, TokenPurpose::Preferences)?;
        let issued_at = claims.issued_at.ok_or(LinkError::Expired)?;
        let max_age = Duration::minutes(i64::from(
            self.config().settings.links.rights_max_age_minutes,
        ));
        Ok(PreferencesLink {
            contact_id: claims.contact_id,
            locale: claims.locale,
            rights_allowed: self.now() - issued_at <= max_age,
        })
    }

    fn fresh_preferences_link(&self, token: &str) -> Result<ContactId, LinkError> {
        let link = self.preferences_link(token)?;
        if !link.rights_allowed {
            return Err(LinkError::NeedsFreshLink);
        }
        Ok(link.contact_id)
    }

    /// The person's own export, from the preference center; recorded as an event.
    pub async fn export_own_data(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<super::Export, LinkError> {
        let id = self.fresh_preferences_link(token)?;
        self.spend_post(&id).await?;
        let contact = self.store.load_contact(&id).await?.ok_or(LinkError::Gone)?;
        Ok(self.export_for_person(&contact.email, meta).await?)
    }

    /// The person's own erasure, after the confirmation page.
    pub async fn erase_own_data(&self, token: &str, meta: &RequestMeta) -> Result<(), LinkError> {
        let id = self.fresh_preferences_link(token)?;
        self.spend_post(&id).await?;
        Ok(self
            .erase_contact(&id, ErasureReason::SelfService, meta)
            .await?)
    }

    /// Checks that a link may ask for erasure, without reading the store (for the
    /// question page).
    pub fn check_rights_link(&self, token: &str) -> Result<(), LinkError> {
        self.fresh_preferences_link(token).map(drop)
    }

    /// "Mail me a fresh link", offered where an aged link cannot export or erase.
    pub async fn mail_fresh_preferences_link(&self, token: &str) -> Result<(), LinkError> {
        let link = self.preferences_link(token)?;
        self.mail_preferences_link(&link.contact_id).await
    }

    /// `locale`: the browser's language, used only when the link carries none.
    pub async fn view_preferences(
        &self,
        token: &str,
        locale: &str,
    ) -> Result<PreferencesView, LinkError> {
        let link = self.preferences_link(token)?;
        let contact = self
            .store
            .load_contact(&link.contact_id)
            .await?
            .ok_or(LinkError::Gone)?;
        let locale = link.locale.as_deref().unwrap_or(locale);
        Ok(view(
            &self.config().catalog,
            &contact,
            locale,
            link.rights_allowed,
        ))
    }

    pub async fn save_preferences(
        &self,
        token: &str,
        choice: &PreferenceChoice,
        locale: &str,
        meta: &RequestMeta,
    ) -> Result<PreferencesView, LinkError> {
        let link = self.preferences_link(token)?;
        self.spend_post(&link.contact_id).await?;
        let catalog = &self.config().catalog;
        let locale = link.locale.as_deref().unwrap_or(locale);
        self.change_contact(&link.contact_id, |before, now, _| {
            let before = before.ok_or(LinkError::Gone)?;
            Ok(plan_preferences(
                catalog,
                before,
                choice,
                locale,
                link.rights_allowed,
                meta,
                now,
            ))
        })
        .await
    }
}

fn plan_preferences(
    catalog: &Catalog,
    before: &Contact,
    choice: &PreferenceChoice,
    locale: &str,
    rights_allowed: bool,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Planned<PreferencesView> {
    let mut contact = before.clone();
    let mut events = Vec::new();
    if choice.allow_signups {
        events.extend(contact.lift_signup_block(Source::PreferenceCenter, meta, now));
    }
    for subscription_type in catalog.all() {
        let id = &subscription_type.id;
        let covered = choice.unsubscribe_all || choice.shown.contains(id.as_str());
        if !covered {
            continue;
        }
        let wanted = !choice.unsubscribe_all && choice.opted_in.contains(id.as_str());
        let current = contact.status(id);
        let change = if wanted && current != Status::OptedIn {
            // The notice beside the checkbox: the version the form names, else today's.
            let (notice_locale, current) =
                subscription_type.current_notice(locale, catalog.default_locale());
            let notice = choice
                .notice_versions
                .get(id.as_str())
                .and_then(|v| subscription_type.notice_version(&notice_locale, v))
                .unwrap_or_else(|| current.clone());
            let shown = Some(subscription_type.notice_ref(&notice_locale, &notice));
            let mut change = StatusChange::new(Status::OptedIn, Source::PreferenceCenter)
                .with_basis(LawfulBasis::Consent);
            change.consent_notice = shown;
            Some(change)
        } else if !wanted && current == Status::OptedIn {
            Some(StatusChange::new(
                Status::Unsubscribed,
                Source::PreferenceCenter,
            ))
        } else {
            None
        };
        if let Some(change) = change {
            events.extend(contact.change_status(id, change, meta, now));
        }
    }
    let shown = view(catalog, &contact, locale, rights_allowed);
    if events.is_empty() {
        return Planned::Nothing(shown);
    }
    Planned::Write(Plan::keep(contact, events, shown))
}

fn view(
    catalog: &Catalog,
    contact: &Contact,
    locale: &str,
    rights_allowed: bool,
) -> PreferencesView {
    let fallback = catalog.default_locale();
    let types = catalog
        .all()
        .iter()
        .map(|t| TypeView::of(t, contact.status(&t.id), locale, fallback))
        .collect();
    PreferencesView {
        contact_id: contact.id.clone(),
        locale: locale.to_string(),
        types,
        restricted: contact.is_restricted(),
        signups_blocked: contact.signup_blocked_since.is_some(),
        rights_allowed,
    }
}
