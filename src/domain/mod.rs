//! Parsed domain types and the pure state transitions on them. Nothing here does I/O.

pub mod change;
pub mod contact;
pub mod contact_id;
pub mod email;
pub mod event;
pub mod locale;
pub mod outbox_job;
pub mod reachability;
pub mod status;
pub mod subscription_type;
pub mod tombstone;

pub use change::{ContactChange, ContactWrite, MemberIndexChange, Stats};
pub use contact::{ConfirmationRequest, Contact, PendingConfirmation, StatusChange, Subscription};
pub use contact_id::{ContactId, ContactIndex};
pub use email::{EmailAddress, EmailError};
pub use event::{
    ChainCheck, ChainHead, Event, EventDraft, EventKind, RequestMeta, SignupEvidence, Source,
};
pub use outbox_job::{MailKind, MailTask, OutboxJob, Task, WebhookTask};
pub use reachability::{
    BounceType, FeedbackKind, FeedbackNote, FeedbackPolicy, SeenFeedback, Unreachable,
};
pub use status::{LawfulBasis, Status};
pub use subscription_type::{
    Catalog, ConsentNotice, NoticeRef, Purpose, SubscriptionType, SubscriptionTypeId,
};
pub use tombstone::{ErasureReason, Tombstone};
