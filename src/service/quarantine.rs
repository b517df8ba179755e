//! The quarantine seen from the admin's side: the listing of held signups, their
//! release (the confirmation goes out under the signup's rules and the mail cap) and
//! drop, and their expiry with the confirmation TTL. Each goes through the one commit
//! path on the contact that holds the signup.

use chrono::{DateTime, Utc};

use super::commit::Reach;
use super::{RequestError, Subscriptions};
use crate::domain::{
    Contact, HeldSignup, Planned, QuarantineId, QuarantineReason, Release, RequestMeta, Source,
    Timer,
};
use crate::store::StoreError;

/// The most held signups one listing answers.
pub const MAX_QUARANTINE_PAGE: usize = 1_000;
/// Held signups one expiry run looks at.
const EXPIRY_BATCH: usize = 500;

/// One held signup, as `GET /v1/quarantine` and the console list it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Quarantined {
    pub id: String,
    pub email: String,
    pub types: Vec<String>,
    pub reason: QuarantineReason,
    /// When the (latest) held request came.
    pub at: DateTime<Utc>,
    /// `signup_form` or `signup_api`.
    pub source: Source,
    pub expires_at: DateTime<Utc>,
}

impl Quarantined {
    fn of(contact: &Contact, held: &HeldSignup) -> Self {
        Self {
            id: QuarantineId {
                contact: contact.id().clone(),
                held: held.id,
            }
            .to_string(),
            email: contact.email().as_str().to_string(),
            types: held.types.iter().map(ToString::to_string).collect(),
            reason: held.reason,
            at: held.signup.at,
            source: held.signup.source,
            expires_at: held.expires_at,
        }
    }
}

impl Subscriptions {
    /// The held signups, the oldest first, at most `limit` (up to
    /// [`MAX_QUARANTINE_PAGE`]). They expire with the confirmation TTL, so the list stays
    /// as short as a week of risky signups.
    pub async fn quarantine(&self, limit: usize) -> Result<Vec<Quarantined>, StoreError> {
        let limit = limit.min(MAX_QUARANTINE_PAGE);
        let ids = self
            .store
            .due_contacts(Timer::Quarantine, crate::clock::latest(), limit)
            .await?;
        let contacts = self.store.load_contacts(&ids).await?;
        Ok(contacts
            .iter()
            .flatten()
            .filter_map(|contact| Some(Quarantined::of(contact, contact.held()?)))
            .collect())
    }

    /// Mails the confirmation a held signup would have had (within the address's cap),
    /// or opts in its single opt-in types, and no longer holds it.
    pub async fn release_quarantined(
        &self,
        id: &QuarantineId,
        meta: &RequestMeta,
    ) -> Result<(), RequestError> {
        let release = self
            .commit(&id.contact, Reach::Signup, |found| {
                Ok::<_, RequestError>(match found.contact {
                    Some(contact) => contact.clone().release_held(
                        id.held,
                        &self.rules,
                        found.mail,
                        meta,
                        found.now,
                    ),
                    None => Planned::Nothing(Release::NotFound),
                })
            })
            .await?;
        match release {
            Release::Released => {
                tracing::info!(
                    actor = meta.actor.as_deref().unwrap_or_default(),
                    "held signup released"
                );
                Ok(())
            }
            Release::NotFound => Err(RequestError::NotFound),
            Release::Refused(refused) => Err(refused.into()),
        }
    }

    /// Drops a held signup unasked (with its contact, when it held nothing else).
    pub async fn drop_quarantined(&self, id: &QuarantineId) -> Result<(), RequestError> {
        let dropped = self
            .commit(&id.contact, Reach::Signup, |found| {
                Ok::<_, RequestError>(match found.contact {
                    Some(contact) => contact.clone().drop_held(id.held),
                    None => Planned::Nothing(false),
                })
            })
            .await?;
        if dropped {
            Ok(())
        } else {
            Err(RequestError::NotFound)
        }
    }

    /// Drops every held signup whose time is up; answers how many.
    pub(super) async fn expire_quarantined(&self) -> Result<usize, StoreError> {
        let mut expired = 0;
        loop {
            let due = self
                .store
                .due_contacts(Timer::Quarantine, self.now(), EXPIRY_BATCH)
                .await?;
            let mut this_run = 0;
            for id in &due {
                let dropped = self
                    .commit(id, Reach::Signup, |found| {
                        Ok::<_, StoreError>(match found.contact {
                            Some(contact) => contact.clone().expire_held(found.now),
                            None => Planned::Nothing(false),
                        })
                    })
                    .await?;
                this_run += usize::from(dropped);
            }
            expired += this_run;
            // An entry that expired nothing means a bug (the index and the contact are
            // written together); stop rather than loop over it.
            if due.len() < EXPIRY_BATCH || this_run < due.len() {
                return Ok(expired);
            }
        }
    }
}
