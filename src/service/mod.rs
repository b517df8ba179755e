//! The operations of the service, one per intent, each a whole request: the doors (the
//! `/v1` API, the pages, the console, the HubSpot and Mailchimp APIs) parse a request,
//! make one call here and translate the answer. Each operation loads what it needs,
//! plans the change with a domain transition under the service's [`Rules`], and commits
//! it through the one commit path ([`commit`]), which checks the contact's version and
//! retries on a conflict. The same intent through two doors is the same call.

mod admin;
mod backups;
mod commit;
mod confirm;
mod consent;
mod console;
mod disk_purge;
mod eligibility;
mod errors;
mod expiry;
mod feedback;
mod funnel;
mod link_access;
mod manage;
mod manual;
mod members;
mod notices;
mod preferences;
pub mod processing_record;
mod quarantine;
mod receipts;
mod rectify;
mod reminders;
mod retention;
mod rights;
mod screening;
mod signup;
mod signup_pace;
mod unsubscribe;
mod webhook_endpoints;
mod work_room;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use self::work_room::WorkRoom;

pub use commit::Moved;
pub use confirm::{CodeAnswer, CodeRequest, ConfirmPage, ConfirmRequest, Submitted};
pub use consent::{ConsentSweepReport, RenewalPage};
pub use console::{MAX_SIGN_INS_PER_WINDOW, SIGN_IN_WINDOW_SECS};
pub use eligibility::{BatchEligibility, Eligibility, IneligibleReason};
pub use errors::{RequestError, SignupError};
pub use expiry::PurgeReport;
pub use feedback::{FeedbackError, SnsClient};
pub use link_access::LinkError;
pub use members::{is_subscriber_hash, subscriber_hash, MemberRef, MemberRequest, ReindexReport};
pub use preferences::{PreferencesView, TypeView};
pub use quarantine::{Quarantined, MAX_QUARANTINE_PAGE};
pub use receipts::ReceiptView;
pub use reminders::ReminderReport;
pub use rights::{Export, Provenance};
pub use signup::{NoticeVersions, SignupAnswer, SignupForm, SignupRequest, TypoCheck};
pub use unsubscribe::{ResubscribeRequested, UnsubscribeKind, UnsubscribePage};
pub use webhook_endpoints::EndpointView;

pub use crate::store::{OutboxDepth, StoreError};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::{Catalog, ContactId, EmailAddress, Rules};
use crate::links::Links;
use crate::store::SharedStore;

pub struct Subscriptions {
    store: SharedStore,
    config: Arc<Config>,
    rules: Rules,
    clock: SharedClock,
    links: Links,
    outbox_wakeup: Arc<Notify>,
    /// Fetches SNS certificates and confirms subscriptions for `POST /v1/feedback/ses`.
    sns: SnsClient,
    /// Addresses of batch eligibility checks being worked on.
    read_room: WorkRoom,
    /// Items of feedback batches being written.
    write_room: WorkRoom,
    /// Dumps and tombstone lists of the store, for the running service.
    backups: crate::backup::Backups,
    /// Erasures not yet purged from the store's files.
    disk_purge: disk_purge::DiskPurge,
    /// How soon a signup may answer, so that its time does not tell what it created.
    signup_pace: signup_pace::SignupPace,
}

/// Addresses of batch checks worked on at once: two full batches, one per core of a small
/// server. More would only split the same CPU and store finer and make every batch late.
const BATCH_ADDRESSES_AT_ONCE: usize = 20_000;
/// Feedback items written at once: two full calls of the providers' usual 1,000. A write
/// costs dozens of reads, so the room is smaller.
const FEEDBACK_ITEMS_AT_ONCE: usize = 2_000;

impl Subscriptions {
    pub fn new(
        store: SharedStore,
        config: Arc<Config>,
        clock: SharedClock,
        outbox_wakeup: Arc<Notify>,
    ) -> Self {
        let settings = &config.settings;
        let links = Links::new(
            config.signer.clone(),
            config.public_url.clone(),
            settings.links.unsubscribe_ttl_days,
            settings.links.preferences_ttl_days,
        );
        let rules = Rules::new(
            config.catalog.clone(),
            chrono::Duration::days(i64::from(settings.signup.confirmation_ttl_days)),
            config.feedback.policy,
        )
        .with_reminder_after(
            (settings.signup.reminder_after_minutes > 0)
                .then(|| crate::clock::minutes(settings.signup.reminder_after_minutes.into())),
        );
        let backups = crate::backup::Backups::new(
            store.clone(),
            &config.index,
            config.backup_recipients.clone(),
            clock.clone(),
        );
        Self {
            disk_purge: disk_purge::DiskPurge::owed_from(clock.now()),
            backups,
            store,
            config,
            rules,
            clock,
            links,
            outbox_wakeup,
            sns: SnsClient::default(),
            read_room: WorkRoom::new(BATCH_ADDRESSES_AT_ONCE),
            write_room: WorkRoom::new(FEEDBACK_ITEMS_AT_ONCE),
            signup_pace: signup_pace::SignupPace::default(),
        }
    }

    /// The SES input's fetcher; tests point it at their own server through its hook.
    pub fn sns(&self) -> &SnsClient {
        &self.sns
    }

    /// The whole configuration, for startup and the command line; the doors take what
    /// they need from their own state instead.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn catalog(&self) -> &Catalog {
        self.rules.catalog()
    }

    pub fn links(&self) -> &Links {
        &self.links
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Lets the outbox worker know a job is due now.
    fn wake_outbox(&self) {
        self.outbox_wakeup.notify_one();
    }

    pub fn contact_id(&self, email: &EmailAddress) -> ContactId {
        self.config.index.contact_id(email)
    }
}
