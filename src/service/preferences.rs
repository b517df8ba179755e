//! The preference center: every type with its status; any change in one save; the
//! person's own export and erasure. The link came by mail to the address, so it proves
//! the person owns it. Export and erasure need a link issued within
//! `links.rights_max_age_minutes`.

use chrono::Duration;

use super::commit::Reach;
use super::{Export, LinkError, Subscriptions};
use crate::domain::{
    Catalog, Contact, ContactId, ErasureReason, PreferenceChoice, PreferencesRefused, Purpose,
    RequestMeta, Status, SubscriptionType, UnknownNotice,
};
use crate::tokens::Purpose as LinkPurpose;

#[derive(Clone, Debug, serde::Serialize)]
pub struct TypeView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub purpose: Purpose,
    pub status: Status,
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
    /// Set when a save was refused because a tick's notice was not the one shown:
    /// nothing changed, and the page shows today's text.
    #[serde(skip)]
    pub refused: Option<UnknownNotice>,
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
        let claims = self.verify_link(token, LinkPurpose::Preferences)?;
        let issued_at = claims.issued_at.ok_or(LinkError::Expired)?;
        let max_age =
            Duration::minutes(i64::from(self.config.settings.links.rights_max_age_minutes));
        Ok(PreferencesLink {
            contact_id: claims.contact_id,
            locale: claims.locale,
            rights_allowed: self.now() - issued_at <= max_age,
        })
    }

    fn fresh_preferences_link(&self, token: &str) -> Result<PreferencesLink, LinkError> {
        let link = self.preferences_link(token)?;
        if !link.rights_allowed {
            return Err(LinkError::NeedsFreshLink);
        }
        Ok(link)
    }

    /// The person's own export, from the preference center; recorded as an event.
    pub async fn export_own_data(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<Export, LinkError> {
        let link = self.fresh_preferences_link(token)?;
        self.spend_post(&link.contact_id, LinkPurpose::Preferences)
            .await?;
        let id = self
            .commit(&link.contact_id, Reach::Link, |found| {
                let contact = found.contact.ok_or(LinkError::Gone)?;
                Ok::<_, LinkError>(
                    contact
                        .clone()
                        .record_export(meta, found.now)
                        .map(|()| contact.id().clone()),
                )
            })
            .await?;
        let contact = self.store.load_contact(&id).await?.ok_or(LinkError::Gone)?;
        Ok(self.export_of(contact).await?)
    }

    /// The person's own erasure, after the question page. Answers the link's language,
    /// for the page that says it is done.
    pub async fn erase_own_data(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<Option<String>, LinkError> {
        let link = self.fresh_preferences_link(token)?;
        self.spend_post(&link.contact_id, LinkPurpose::Preferences)
            .await?;
        self.erase_by_id(
            &link.contact_id,
            Reach::Link,
            ErasureReason::SelfService,
            meta,
        )
        .await
        .map_err(|error| match error {
            super::RequestError::Store(e) => LinkError::Store(e),
            _ => LinkError::Gone,
        })?;
        Ok(link.locale)
    }

    /// Checks that a link may ask for erasure, without reading the store (for the
    /// question page); answers the link's language.
    pub fn check_rights_link(&self, token: &str) -> Result<Option<String>, LinkError> {
        self.fresh_preferences_link(token).map(|link| link.locale)
    }

    /// "Mail me a fresh link", offered where an aged link cannot export or erase.
    pub async fn mail_fresh_preferences_link(
        &self,
        token: &str,
    ) -> Result<Option<String>, LinkError> {
        let link = self.preferences_link(token)?;
        self.mail_preferences_link(&link.contact_id, LinkPurpose::Preferences)
            .await?;
        Ok(link.locale)
    }

    /// `locale`: the browser's language, used only when the link carries none.
    pub async fn view_preferences(
        &self,
        token: &str,
        locale: &str,
    ) -> Result<PreferencesView, LinkError> {
        let link = self.preferences_link(token)?;
        let contact = self
            .read_link(&link.contact_id)
            .await?
            .ok_or(LinkError::Gone)?;
        let locale = link.locale.as_deref().unwrap_or(locale);
        Ok(view(self.catalog(), &contact, locale, link.rights_allowed))
    }

    /// Saves the form. A tick whose notice the page did not show changes nothing: the
    /// answer is the page again, with today's text and the refusal.
    pub async fn save_preferences(
        &self,
        token: &str,
        choice: &PreferenceChoice,
        locale: &str,
        meta: &RequestMeta,
    ) -> Result<PreferencesView, LinkError> {
        let link = self.preferences_link(token)?;
        self.spend_post(&link.contact_id, LinkPurpose::Preferences)
            .await?;
        let locale = link.locale.as_deref().unwrap_or(locale);
        let saved = self
            .commit(&link.contact_id, Reach::Link, |found| {
                let contact = found.contact.ok_or(LinkError::Gone)?;
                match contact
                    .clone()
                    .set_preferences(choice, &self.rules, locale, meta, found.now)
                {
                    Ok(planned) => Ok::<_, LinkError>(planned.map(|after| (after, None))),
                    Err(PreferencesRefused::NoticeNotShown(refused)) => Ok(
                        crate::domain::Planned::Nothing((contact.clone(), Some(refused))),
                    ),
                }
            })
            .await?;
        let (after, refused) = saved;
        let mut shown = view(self.catalog(), &after, locale, link.rights_allowed);
        shown.refused = refused;
        Ok(shown)
    }
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
        contact_id: contact.id().clone(),
        locale: locale.to_string(),
        types,
        restricted: contact.is_restricted(),
        signups_blocked: contact.is_signup_blocked(),
        rights_allowed,
        refused: None,
    }
}
