//! The preference center: every type with its status; any change in one save. The token
//! came by mail, so it proves the person owns the address: opt-ins here are consent.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{Plan, Planned, Subscriptions};
use crate::domain::{
    Catalog, ConsentNotice, Contact, ContactId, LawfulBasis, Purpose, RequestMeta, Source, Status,
    StatusChange,
};
use crate::store::StoreError;
use crate::tokens::{Purpose as TokenPurpose, TokenError};

#[derive(Debug, thiserror::Error)]
pub enum PreferencesError {
    #[error("the preferences link is not valid")]
    InvalidToken(#[source] TokenError),
    /// The contact no longer exists (erased, or its only signup expired).
    #[error("there is nothing stored for this link any more")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<super::RightsError> for PreferencesError {
    fn from(error: super::RightsError) -> Self {
        match error {
            super::RightsError::Store(e) => PreferencesError::Store(e),
            _ => PreferencesError::Gone,
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

#[derive(Clone, Debug, serde::Serialize)]
pub struct PreferencesView {
    pub contact_id: ContactId,
    pub locale: String,
    pub types: Vec<TypeView>,
    pub restricted: bool,
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
}

impl Subscriptions {
    pub(crate) fn preferences_contact(&self, token: &str) -> Result<ContactId, PreferencesError> {
        let claims = self
            .links()
            .signer()
            .verify(token, TokenPurpose::Preferences, self.now())
            .map_err(|reason| {
                tracing::debug!(%reason, "preferences token refused");
                PreferencesError::InvalidToken(reason)
            })?;
        Ok(claims.contact_id)
    }

    /// A preferences link for a contact whose unsubscribe link was used (for the
    /// "manage all subscriptions" link on the unsubscribe page).
    pub fn preferences_url_for(&self, contact: &ContactId) -> String {
        self.links().preferences(contact, self.now())
    }

    /// The person's own export, from the preference center; recorded as an event.
    pub async fn export_own_data(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<super::Export, PreferencesError> {
        let id = self.preferences_contact(token)?;
        let contact = self
            .store()
            .load_contact(&id)
            .await?
            .ok_or(PreferencesError::Gone)?;
        self.export_for_person(&contact.email, meta)
            .await
            .map_err(PreferencesError::from)
    }

    /// The person's own erasure, after the confirmation page.
    pub async fn erase_own_data(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<(), PreferencesError> {
        let id = self.preferences_contact(token)?;
        self.erase_contact(&id, "self_service", meta)
            .await
            .map_err(PreferencesError::from)
    }

    /// Checks a preferences token without reading the store (for the erase question page).
    pub fn check_preferences_token(&self, token: &str) -> Result<(), PreferencesError> {
        self.preferences_contact(token).map(drop)
    }

    pub async fn view_preferences(
        &self,
        token: &str,
        locale: Option<&str>,
    ) -> Result<PreferencesView, PreferencesError> {
        let id = self.preferences_contact(token)?;
        let contact = self
            .store()
            .load_contact(&id)
            .await?
            .ok_or(PreferencesError::Gone)?;
        Ok(view(&self.config().catalog, &contact, locale))
    }

    pub async fn save_preferences(
        &self,
        token: &str,
        choice: &PreferenceChoice,
        locale: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<PreferencesView, PreferencesError> {
        let id = self.preferences_contact(token)?;
        let catalog = &self.config().catalog;
        self.change_contact(&id, |before, now| {
            let before = before.ok_or(PreferencesError::Gone)?;
            Ok(plan_preferences(catalog, before, choice, locale, meta, now))
        })
        .await
    }
}

fn plan_preferences(
    catalog: &Catalog,
    before: &Contact,
    choice: &PreferenceChoice,
    locale: Option<&str>,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Planned<PreferencesView> {
    let mut contact = before.clone();
    let mut events = Vec::new();
    for subscription_type in catalog.all() {
        let id = &subscription_type.id;
        let covered = choice.unsubscribe_all || choice.shown.contains(id.as_str());
        if !covered {
            continue;
        }
        let wanted = !choice.unsubscribe_all && choice.opted_in.contains(id.as_str());
        let current = contact.status(id);
        let change = if wanted && current != Status::OptedIn {
            let (locale, current_notice) = subscription_type
                .current_notice(&contact.locale, catalog.default_locale())
                .expect("the catalog guarantees a notice in the default locale");
            let shown: ConsentNotice = choice
                .notice_versions
                .get(id.as_str())
                .and_then(|version| subscription_type.notice_version(&locale, version))
                .unwrap_or_else(|| current_notice.clone());
            let mut change = StatusChange::new(Status::OptedIn, Source::PreferenceCenter)
                .with_basis(LawfulBasis::Consent);
            change.consent_notice = Some(subscription_type.notice_ref(&locale, &shown));
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
    let shown = view(catalog, &contact, locale);
    if events.is_empty() {
        return Planned::Nothing(shown);
    }
    Planned::Write(Plan::keep(contact, events, shown))
}

fn view(catalog: &Catalog, contact: &Contact, locale: Option<&str>) -> PreferencesView {
    let locale = locale.unwrap_or(&contact.locale).to_string();
    let fallback = catalog.default_locale();
    let types = catalog
        .all()
        .iter()
        .map(|t| {
            let (_, notice) = t
                .current_notice(&locale, fallback)
                .expect("the catalog guarantees a notice in the default locale");
            let status = contact.status(&t.id);
            TypeView {
                id: t.id.to_string(),
                name: t.name_in(&locale, fallback),
                description: t.description_in(&locale, fallback),
                purpose: t.purpose,
                status,
                opted_in: status == Status::OptedIn,
                notice_version: notice.version.clone(),
                notice_text: notice.text.clone(),
            }
        })
        .collect();
    PreferencesView {
        contact_id: contact.id.clone(),
        locale,
        types,
        restricted: contact.is_restricted(),
    }
}
