//! The operations of the service: each reads a contact, plans a transition with pure
//! domain code, and has the store write the result atomically (retrying on a concurrent
//! change). Routes call these and hold no business rules themselves.

mod confirm;
mod eligibility;
mod expiry;
mod manual;
mod preferences;
mod retention;
mod rights;
mod signup;
mod unsubscribe;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

pub use confirm::{ConfirmError, Confirmed};
pub use eligibility::{Eligibility, EligibilityError};
pub use expiry::PurgeReport;
pub use manual::{
    ManualChange, ManualChangeError, ManualOutcome, ManualResult, MAX_EVIDENCE_CHARS,
};
pub use preferences::{PreferenceChoice, PreferencesError, PreferencesView, TypeView};
pub use rights::{Export, Provenance, RightsError};
pub use signup::{NoticeVersions, SignupError, SignupRequest};
pub use unsubscribe::{UnsubscribeError, UnsubscribeTarget, Unsubscribed};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::{Contact, ContactChange, ContactId, EmailAddress, Event, OutboxJob, Tombstone};
use crate::links::Links;
use crate::store::{SharedStore, StoreError};

/// How often a change is retried when another request changed the contact meanwhile.
const MAX_CONFLICT_RETRIES: usize = 8;

/// What a transition wants written. `after: None` deletes the contact.
pub(crate) struct Plan<T> {
    after: Option<Contact>,
    events: Vec<Event>,
    jobs: Vec<OutboxJob>,
    tombstone: Option<Tombstone>,
    clear_tombstone: bool,
    value: T,
}

impl<T> Plan<T> {
    fn keep(after: Contact, events: Vec<Event>, value: T) -> Self {
        Self {
            after: Some(after),
            events,
            jobs: Vec::new(),
            tombstone: None,
            clear_tombstone: false,
            value,
        }
    }

    fn delete(value: T) -> Self {
        Self {
            after: None,
            events: Vec::new(),
            jobs: Vec::new(),
            tombstone: None,
            clear_tombstone: false,
            value,
        }
    }
}

/// The result of planning: write something, or answer without writing.
pub(crate) enum Planned<T> {
    Write(Plan<T>),
    Nothing(T),
}

pub struct Subscriptions {
    store: SharedStore,
    config: Arc<Config>,
    clock: SharedClock,
    links: Links,
    outbox_wakeup: Arc<Notify>,
}

impl Subscriptions {
    pub fn new(
        store: SharedStore,
        config: Arc<Config>,
        clock: SharedClock,
        outbox_wakeup: Arc<Notify>,
    ) -> Self {
        let links = Links::from_config(&config);
        Self {
            store,
            config,
            clock,
            links,
            outbox_wakeup,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn links(&self) -> &Links {
        &self.links
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Lets the outbox worker know a job is due now.
    pub fn wake_outbox(&self) {
        self.outbox_wakeup.notify_one();
    }

    pub fn contact_id(&self, email: &EmailAddress) -> ContactId {
        self.config.index.contact_id(email)
    }

    pub async fn contact(&self, email: &EmailAddress) -> Result<Option<Contact>, StoreError> {
        self.store.load_contact(&self.contact_id(email)).await
    }

    /// Reads the contact, plans, writes; re-reads and re-plans when the contact changed
    /// in between, so concurrent requests never overwrite each other.
    pub(crate) async fn change_contact<T, E>(
        &self,
        id: &ContactId,
        plan: impl Fn(Option<&Contact>, DateTime<Utc>) -> Result<Planned<T>, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let before = self.store.load_contact(id).await?;
            let now = self.clock.now();
            let plan = match plan(before.as_ref(), now)? {
                Planned::Nothing(value) => return Ok(value),
                Planned::Write(plan) => plan,
            };
            if before.is_none() && plan.after.is_none() && plan.tombstone.is_none() {
                return Ok(plan.value);
            }
            let queues_mail = !plan.jobs.is_empty();
            let mut change = match (before.as_ref(), plan.after) {
                (None, None) => ContactChange::tombstone_only(id.clone()),
                (before, after) => ContactChange::between(
                    before,
                    after,
                    plan.events,
                    plan.jobs,
                    &self.config.catalog,
                ),
            };
            change.set_tombstone = plan.tombstone;
            change.clear_tombstone = plan.clear_tombstone;
            match self.store.apply(change).await {
                Ok(()) => {
                    if queues_mail {
                        self.outbox_wakeup.notify_one();
                    }
                    return Ok(plan.value);
                }
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }
}
