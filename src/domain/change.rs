//! One atomic write for one contact: its new state, new events, outbox jobs and the
//! counter deltas that keep statistics exact without scanning.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::contact::Contact;
use super::contact_id::ContactId;
use super::event::Event;
use super::funnel::FunnelStep;
use super::outbox_job::OutboxJob;
use super::status::{LawfulBasis, Status};
use super::subscription_type::Catalog;
use super::timer::Timer;
use super::tombstone::Tombstone;

/// Counter names shared by both stores.
pub mod counter {
    pub const CONTACTS: &str = "contacts";
    pub const MARKETING: &str = "marketing";
    pub const PENDING: &str = "pending";
    pub const UNREACHABLE: &str = "unreachable";

    pub fn by_type(type_id: &str, status: super::Status) -> String {
        format!("type:{type_id}:{}", status.as_str())
    }

    /// Contacts opted in to a type on one lawful basis (the record of processing).
    pub fn by_basis(type_id: &str, basis: super::LawfulBasis) -> String {
        format!("basis:{type_id}:{}", basis.as_str())
    }
}

// One per write, never kept in bulk: boxing the contact would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContactWrite {
    /// Write the contact if its stored version is still `expected_version` (0: absent).
    Put(Contact),
    /// Delete the contact, its events and its outbox jobs.
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactChange {
    pub contact_id: ContactId,
    /// The version the change was computed from; 0 when the contact did not exist.
    pub expected_version: u64,
    pub write: ContactWrite,
    pub new_events: Vec<Event>,
    pub new_jobs: Vec<OutboxJob>,
    /// Pending confirmations created (with expiry) and removed, for the expiry index.
    pub pending_added: Vec<(Uuid, DateTime<Utc>)>,
    pub pending_removed: Vec<Uuid>,
    pub counters: BTreeMap<String, i64>,
    pub set_tombstone: Option<Tombstone>,
    pub clear_tombstone: bool,
    /// For the retention index: since when the contact has had no opt-in (`None`: it has
    /// one, has no status at all, or is deleted — then it is not in the index).
    pub inactive_since: Option<DateTime<Utc>>,
    /// The member index (Mailchimp's `subscriber_hash`) entries this change adds or drops.
    pub member_index: MemberIndexChange,
    /// Every timer's due time after the change (`None`: not set, or deleted), for the
    /// stores' due index.
    pub timers: BTreeMap<Timer, Option<DateTime<Utc>>>,
    /// The confirmation funnel's counters this change adds to (see
    /// [`super::funnel`]): kept apart from the statistics counters, and like them
    /// summed over all shards.
    pub funnel: BTreeMap<String, i64>,
}

/// Entries of the member index: a keyed hash of the MD5 of an address (see
/// `service::members`) pointing at the contact id. Set when a contact gets its address
/// (creation, rectification), removed when the address goes (erasure, rectification).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberIndexChange {
    pub set: Option<String>,
    pub remove: Option<String>,
}

impl ContactChange {
    /// Derives everything a store must do from the state before and after a transition.
    /// `after` gets its version bumped here, so transitions never touch versions.
    pub fn between(
        contact_id: ContactId,
        before: Option<&Contact>,
        after: Option<Contact>,
        new_events: Vec<Event>,
        new_jobs: Vec<OutboxJob>,
        catalog: &Catalog,
    ) -> Self {
        let expected_version = before.map_or(0, Contact::version);
        let mut counters = BTreeMap::new();
        if let Some(before) = before {
            add_counts(&mut counters, before, catalog, -1);
        }
        if let Some(after) = &after {
            add_counts(&mut counters, after, catalog, 1);
        }
        counters.retain(|_, delta| *delta != 0);

        let before_pending: Vec<Uuid> = before
            .map(|c| c.pending().iter().map(|p| p.id).collect())
            .unwrap_or_default();
        let after_pending: Vec<(Uuid, DateTime<Utc>)> = after
            .as_ref()
            .map(|c| c.pending().iter().map(|p| (p.id, p.expires_at)).collect())
            .unwrap_or_default();
        let pending_added = after_pending
            .iter()
            .filter(|(id, _)| !before_pending.contains(id))
            .copied()
            .collect();
        let pending_removed = before_pending
            .iter()
            .filter(|id| !after_pending.iter().any(|(a, _)| a == *id))
            .copied()
            .collect();

        let inactive_since = after.as_ref().and_then(Contact::inactive_since);
        let due = after
            .as_ref()
            .map(|c| c.due_times(catalog))
            .unwrap_or_default();
        let timers = Timer::ALL
            .into_iter()
            .map(|timer| (timer, due.get(&timer).copied()))
            .collect();
        let write = match after {
            Some(contact) => ContactWrite::Put(contact.with_version(expected_version + 1)),
            None => ContactWrite::Delete,
        };
        Self {
            contact_id,
            expected_version,
            write,
            new_events,
            new_jobs,
            pending_added,
            pending_removed,
            counters,
            set_tombstone: None,
            clear_tombstone: false,
            inactive_since,
            member_index: MemberIndexChange::default(),
            timers,
            funnel: BTreeMap::new(),
        }
    }

    /// A change that only sets or clears the tombstone of a contact that holds nothing.
    pub fn tombstone_only(contact_id: ContactId) -> Self {
        Self {
            contact_id,
            expected_version: 0,
            write: ContactWrite::Delete,
            new_events: Vec::new(),
            new_jobs: Vec::new(),
            pending_added: Vec::new(),
            pending_removed: Vec::new(),
            counters: BTreeMap::new(),
            set_tombstone: None,
            clear_tombstone: false,
            inactive_since: None,
            member_index: MemberIndexChange::default(),
            timers: Timer::ALL.into_iter().map(|timer| (timer, None)).collect(),
            funnel: BTreeMap::new(),
        }
    }

    #[must_use]
    pub fn with_tombstone(mut self, tombstone: Tombstone) -> Self {
        self.set_tombstone = Some(tombstone);
        self
    }

    /// Counts each step once in [`Self::funnel`].
    #[must_use]
    pub fn with_funnel(mut self, steps: &[FunnelStep]) -> Self {
        for name in steps.iter().flat_map(FunnelStep::counters) {
            *self.funnel.entry(name).or_default() += 1;
        }
        self
    }

    #[must_use]
    pub fn clearing_tombstone(mut self) -> Self {
        self.clear_tombstone = true;
        self
    }
}

/// A contact is counted once it holds a status for any type; marketing contacts are those
/// opted in to at least one marketing type.
fn add_counts(
    counters: &mut BTreeMap<String, i64>,
    contact: &Contact,
    catalog: &Catalog,
    sign: i64,
) {
    *counters.entry(counter::PENDING.to_string()).or_default() +=
        sign * contact.pending().len() as i64;
    if contact.is_unreachable() {
        *counters
            .entry(counter::UNREACHABLE.to_string())
            .or_default() += sign;
    }
    if contact.subscriptions().is_empty() {
        return;
    }
    *counters.entry(counter::CONTACTS.to_string()).or_default() += sign;
    if contact.is_opted_in_to_any(|t| catalog.is_marketing(t.as_str())) {
        *counters.entry(counter::MARKETING.to_string()).or_default() += sign;
    }
    for (type_id, subscription) in contact.subscriptions() {
        if subscription.status != Status::NotSubscribed {
            *counters
                .entry(counter::by_type(type_id.as_str(), subscription.status))
                .or_default() += sign;
        }
        if let (Status::OptedIn, Some(basis)) = (subscription.status, subscription.lawful_basis) {
            *counters
                .entry(counter::by_basis(type_id.as_str(), basis))
                .or_default() += sign;
        }
    }
}

/// Contacts opted in per type and lawful basis, read from the counters; a type or basis
/// with none is left out.
pub fn opted_in_by_basis(
    counters: &BTreeMap<String, i64>,
    catalog: &Catalog,
) -> HashMap<String, HashMap<LawfulBasis, u64>> {
    catalog
        .all()
        .iter()
        .map(|t| {
            let bases = LawfulBasis::ALL
                .into_iter()
                .filter_map(|basis| {
                    let count = counters.get(&counter::by_basis(t.id.as_str(), basis))?;
                    u64::try_from(*count)
                        .ok()
                        .filter(|n| *n > 0)
                        .map(|n| (basis, n))
                })
                .collect();
            (t.id.to_string(), bases)
        })
        .collect()
}

/// Counts per type and status, derived from the counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TypeCounts {
    pub opted_in: i64,
    pub not_subscribed: i64,
    pub unsubscribed: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub marketing_contacts: i64,
    pub non_marketing_contacts: i64,
    pub pending_confirmations: i64,
    pub unreachable_contacts: i64,
    pub by_type: BTreeMap<String, TypeCounts>,
}

impl Stats {
    pub fn from_counters(counters: &BTreeMap<String, i64>, catalog: &Catalog) -> Self {
        let get = |name: &str| counters.get(name).copied().unwrap_or(0);
        let contacts = get(counter::CONTACTS);
        let marketing = get(counter::MARKETING);
        let by_type = catalog
            .all()
            .iter()
            .map(|t| {
                let opted_in = get(&counter::by_type(t.id.as_str(), Status::OptedIn));
                let unsubscribed = get(&counter::by_type(t.id.as_str(), Status::Unsubscribed));
                let counts = TypeCounts {
                    opted_in,
                    unsubscribed,
                    not_subscribed: contacts - opted_in - unsubscribed,
                };
                (t.id.to_string(), counts)
            })
            .collect();
        Self {
            marketing_contacts: marketing,
            non_marketing_contacts: contacts - marketing,
            pending_confirmations: get(counter::PENDING),
            unreachable_contacts: get(counter::UNREACHABLE),
            by_type,
        }
    }
}
