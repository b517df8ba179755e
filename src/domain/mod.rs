//! Parsed domain types and the pure state transitions on them. Nothing here does I/O.
//!
//! - [`contact`]: a contact and every transition on it, each returning a [`Planned`]
//!   change under the service's [`Rules`];
//! - [`change`]: the one atomic store write a plan becomes;
//! - the parsed values requests are made of: [`email`], [`evidence`], [`status`],
//!   [`subscription_type`], [`event`], [`outbox_job`], [`tombstone`], and the consent
//!   [`receipt`] kept with its event.

pub mod change;
pub mod contact;
pub mod contact_id;
pub mod email;
pub mod event;
pub mod evidence;
pub mod funnel;
pub mod locale;
pub mod outbox_job;
pub mod plan;
pub mod receipt;
pub mod rules;
pub mod status;
pub mod subscription_type;
pub mod timer;
pub mod tombstone;

pub use change::{ContactChange, ContactWrite, MemberIndexChange, Stats};
pub use contact::{
    BlockRequests, BounceType, CodeAttempt, CodeOutcome, ConfirmationRequest, Confirmed,
    ConfirmedSignup, ConsentSwept, Contact, Erased, FeedbackKind, FeedbackNote, FeedbackPolicy,
    HeldSignup, ManualChange, ManualChangeError, ManualOutcome, ManualResult, MemberError,
    MemberStatus, MemberWrite, MemberWriteMode, Membership, MoveTarget, OptInRefused,
    PendingConfirmation, PreferenceChoice, PreferencesRefused, QuarantineId, QuarantineReason,
    ReceiptMail, Release, Reminded, Renewal, Restriction, SeenFeedback, SentMail, SignupIntent,
    StatusChange, Subscription, Unreachable, UnsubscribeTarget, Unsubscribed,
};
pub use contact_id::{ContactId, ContactIndex};
pub use email::{EmailAddress, EmailError};
pub use event::{
    ChainCheck, ChainHead, ConfirmMethod, ConfirmedHow, Event, EventDraft, EventKind, RequestMeta,
    SignupEvidence, Source,
};
pub use evidence::{Evidence, EvidenceTooLong};
pub use funnel::{FunnelReport, FunnelStep, SignupDoor};
pub use outbox_job::{MailKind, MailTask, OutboxJob, Task, WebhookTask};
pub use plan::{Announcement, Plan, Planned};
pub use receipt::StoredReceipt;
pub use rules::{MailAllowance, Rules, MAIL_ALLOWANCE_WINDOW_SECS};
pub use status::{LawfulBasis, Status};
pub use subscription_type::{
    Catalog, ConsentNotice, NoticeRef, Purpose, SubscriptionType, SubscriptionTypeId,
    UnknownNotice, UnknownType,
};
pub use timer::{DueTimes, Timer};
pub use tombstone::{ErasureReason, Tombstone};
