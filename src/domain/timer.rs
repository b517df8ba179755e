//! Work a contact waits for until a given time: a reminder of a pending confirmation,
//! a consent to renew or that lapses, a quarantined signup that expires. The contact's state says when (each feature writes
//! its due times into it); the store keeps an index of contacts by due time per timer,
//! derived with every write like the other indexes, and the sweeps read it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// The kinds of timed work, each with its own index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// A pending confirmation that gets one reminder mail.
    Reminder,
    /// A consent that is asked to be renewed, or that lapses.
    Consent,
    /// A signup held in quarantine, dropped when the confirmation TTL has passed. The
    /// index doubles as the listing of held signups.
    Quarantine,
}

impl Timer {
    pub const ALL: [Timer; 3] = [Timer::Reminder, Timer::Consent, Timer::Quarantine];

    /// The name the stores key the index by.
    pub fn as_str(self) -> &'static str {
        match self {
            Timer::Reminder => "reminder",
            Timer::Consent => "consent",
            Timer::Quarantine => "quarantine",
        }
    }
}

/// When each timer of a contact is next due; a timer that is absent is not set.
pub type DueTimes = BTreeMap<Timer, DateTime<Utc>>;
