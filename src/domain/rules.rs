//! The context every transition takes: what the configuration says about subscription
//! types, how long a confirmation waits, and how feedback counts. Built once at start.

use chrono::Duration;

use super::contact::FeedbackPolicy;
use super::subscription_type::{Catalog, SubscriptionTypeId};

#[derive(Clone, Debug)]
pub struct Rules {
    catalog: Catalog,
    confirmation_ttl: Duration,
    feedback: FeedbackPolicy,
    marketing_types: Vec<SubscriptionTypeId>,
    reminder_after: Option<Duration>,
}

impl Rules {
    pub fn new(catalog: Catalog, confirmation_ttl: Duration, feedback: FeedbackPolicy) -> Self {
        let marketing_types = catalog
            .all()
            .iter()
            .filter(|t| t.is_marketing())
            .map(|t| t.id.clone())
            .collect();
        Self {
            catalog,
            confirmation_ttl,
            feedback,
            marketing_types,
            reminder_after: None,
        }
    }

    /// Confirmations still pending this long after they were asked for get one reminder
    /// mail (`signup.reminder_after_minutes`); `None`: no reminders.
    #[must_use]
    pub fn with_reminder_after(mut self, after: Option<Duration>) -> Self {
        self.reminder_after = after;
        self
    }

    pub fn reminder_after(&self) -> Option<Duration> {
        self.reminder_after
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn default_locale(&self) -> &str {
        self.catalog.default_locale()
    }

    /// How long a pending confirmation waits for its click.
    pub fn confirmation_ttl(&self) -> Duration {
        self.confirmation_ttl
    }

    pub fn feedback(&self) -> &FeedbackPolicy {
        &self.feedback
    }

    /// The types a complaint unsubscribes.
    pub fn marketing_types(&self) -> &[SubscriptionTypeId] {
        &self.marketing_types
    }
}

/// The per-address mail cap counts over a rolling day; a backup keeps an allowance until
/// this long after its newest mail.
pub const MAIL_ALLOWANCE_WINDOW_SECS: u64 = 24 * 3600;

/// Whether a transition may queue a mail that someone else's request causes
/// (confirmations, preferences links): the per-address cap decides, and the service asks
/// it only when a plan holds such a mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailAllowance {
    Available,
    Spent,
}
