//! A Mailchimp list member: how a contact stands on a list (a subscription type), and
//! what a member write does, decided here in one planned change rather than by reading
//! the contact first and choosing an operation after.
//!
//! `subscribed` is `opted_in`; `unsubscribed` is `unsubscribed`; a confirmation asked for
//! after the latest status change is `pending`; an unreachable address is `cleaned`.

use chrono::{DateTime, Utc};

use super::{Contact, ManualChange, ManualChangeError};
use crate::domain::evidence::Evidence;
use crate::domain::plan::Planned;
use crate::domain::rules::{MailAllowance, Rules};
use crate::domain::{
    LawfulBasis, RequestMeta, Source, Status, SubscriptionType, SubscriptionTypeId, Tombstone,
};

/// A contact's standing on a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    Subscribed,
    Unsubscribed,
    Pending,
    Cleaned,
}

impl Membership {
    pub fn as_str(self) -> &'static str {
        match self {
            Membership::Subscribed => "subscribed",
            Membership::Unsubscribed => "unsubscribed",
            Membership::Pending => "pending",
            Membership::Cleaned => "cleaned",
        }
    }
}

/// The status a member write asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberStatus {
    Subscribed,
    Unsubscribed,
    Pending,
}

/// Which of Mailchimp's writes this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberWriteMode {
    /// `POST …/members`: a new member; an existing one is refused.
    Add,
    /// `PUT …/members/{hash}`: a new member takes `status_if_new` (or `status`), an
    /// existing one `status` (or stays as it is).
    Upsert,
    /// `PATCH …/members/{hash}`: an existing member's `status`.
    Update,
}

/// A member write, parsed.
#[derive(Clone, Debug)]
pub struct MemberWrite {
    pub list: SubscriptionType,
    pub mode: MemberWriteMode,
    pub status: Option<MemberStatus>,
    pub status_if_new: Option<MemberStatus>,
    /// Evidence of consent for a direct `subscribed`, when the body carries all of it.
    pub evidence: Option<Evidence>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("is already a list member")]
    Exists,
    #[error("the requested resource could not be found")]
    NotAMember,
    #[error("{field} is required{}", if *.field == "status_if_new" { " for an address that is not a list member" } else { "" })]
    StatusRequired { field: &'static str },
    #[error("email_address: optin changes an address only by rectification (POST /v1/contacts/{{email}}/rectification)")]
    AddressChange,
    #[error(transparent)]
    Refused(#[from] ManualChangeError),
}

impl Contact {
    /// How the contact stands on a list; `None` when it is no member of it (no status
    /// and no pending confirmation for that type).
    pub fn membership(&self, type_id: &SubscriptionTypeId) -> Option<Membership> {
        let since = self.subscription(type_id).map(|s| s.since);
        let pending = self
            .pending
            .iter()
            .any(|p| p.types.contains(type_id) && since.is_none_or(|since| p.signup.at > since));
        let status = self.status(type_id);
        if status == Status::NotSubscribed && !pending {
            return None;
        }
        Some(if self.is_unreachable() {
            Membership::Cleaned
        } else {
            match status {
                Status::OptedIn => Membership::Subscribed,
                _ if pending => Membership::Pending,
                Status::Unsubscribed => Membership::Unsubscribed,
                Status::NotSubscribed => Membership::Pending,
            }
        })
    }

    /// A member write: `unsubscribed` is a manual change (`admin_api`); `subscribed` with
    /// evidence a manual opt-in with consent; `pending`, or `subscribed` without
    /// evidence, asks the person by a double opt-in (`signup_api`), under the same rule
    /// as every door that asks. Answers the contact afterwards.
    pub fn put_member(
        self,
        write: &MemberWrite,
        tombstone: Option<&Tombstone>,
        rules: &Rules,
        mail: MailAllowance,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Planned<Contact>, MemberError> {
        let is_member = self.membership(&write.list.id).is_some();
        let wanted = match (write.mode, is_member) {
            (MemberWriteMode::Add, true) => return Err(MemberError::Exists),
            (MemberWriteMode::Update, false) => return Err(MemberError::NotAMember),
            (MemberWriteMode::Add, false) => Some(
                write
                    .status
                    .ok_or(MemberError::StatusRequired { field: "status" })?,
            ),
            (MemberWriteMode::Upsert, false) => Some(write.status_if_new.or(write.status).ok_or(
                MemberError::StatusRequired {
                    field: "status_if_new",
                },
            )?),
            (MemberWriteMode::Upsert | MemberWriteMode::Update, true) => write.status,
        };
        let manual = |status: Status, evidence: Option<Evidence>| ManualChange {
            subscription_type: write.list.clone(),
            status,
            lawful_basis: evidence.as_ref().map(|_| LawfulBasis::Consent),
            explanation: None,
            consent_evidence: evidence,
            send_confirmation: false,
            source: Source::AdminApi,
            consented_at: None,
        };
        let change = match (wanted, &write.evidence) {
            (None, _) => return Ok(Planned::Nothing(self)),
            (Some(MemberStatus::Unsubscribed), _) => manual(Status::Unsubscribed, None),
            (Some(MemberStatus::Subscribed), Some(evidence)) => {
                manual(Status::OptedIn, Some(evidence.clone()))
            }
            (Some(MemberStatus::Subscribed), None) | (Some(MemberStatus::Pending), _) => {
                return Ok(self
                    .request_opt_in(&write.list, Source::SignupApi, rules, mail, meta, now)
                    .map_err(ManualChangeError::from)?);
            }
        };
        Ok(self
            .change_manually(&change, tombstone, rules, mail, meta, now)?
            .map(|result| result.contact))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{contact, rules, type_id, META};
    use super::super::{BounceType, StatusChange};
    use super::*;

    fn write(
        mode: MemberWriteMode,
        status: Option<MemberStatus>,
        status_if_new: Option<MemberStatus>,
    ) -> MemberWrite {
        MemberWrite {
            list: rules().catalog().lookup("news").unwrap().clone(),
            mode,
            status,
            status_if_new,
            evidence: None,
        }
    }

    fn put(c: Contact, w: &MemberWrite) -> Result<Planned<Contact>, MemberError> {
        c.put_member(
            w,
            None,
            &rules(),
            MailAllowance::Available,
            &META,
            Utc::now(),
        )
    }

    #[test]
    fn pending_on_a_new_address_asks_by_mail_and_makes_a_pending_member() {
        let now = Utc::now();
        let w = write(
            MemberWriteMode::Upsert,
            Some(MemberStatus::Subscribed),
            Some(MemberStatus::Pending),
        );
        let Ok(Planned::Write(plan)) = put(contact(now), &w) else {
            panic!("a write")
        };
        assert_eq!(plan.jobs.len(), 1);
        assert_eq!(
            plan.value.membership(&type_id("news")),
            Some(Membership::Pending)
        );
        assert_eq!(plan.value.pending()[0].signup.source, Source::SignupApi);
    }

    #[test]
    fn add_refuses_a_member_and_update_refuses_a_stranger() {
        let now = Utc::now();
        let mut member = contact(now).with_version(1);
        member.change_status(
            &type_id("news"),
            StatusChange::new(Status::Unsubscribed, Source::OneClick),
            &META,
            now,
        );
        assert_eq!(
            put(
                member.clone(),
                &write(MemberWriteMode::Add, Some(MemberStatus::Pending), None)
            )
            .unwrap_err(),
            MemberError::Exists
        );
        assert_eq!(
            put(
                contact(now),
                &write(MemberWriteMode::Update, Some(MemberStatus::Pending), None)
            )
            .unwrap_err(),
            MemberError::NotAMember
        );
        assert_eq!(
            put(contact(now), &write(MemberWriteMode::Upsert, None, None)).unwrap_err(),
            MemberError::StatusRequired {
                field: "status_if_new"
            }
        );
        // An existing member without a status stays as it is.
        assert!(matches!(
            put(
                member,
                &write(MemberWriteMode::Upsert, None, Some(MemberStatus::Pending))
            ),
            Ok(Planned::Nothing(_))
        ));
    }

    #[test]
    fn a_blocked_person_is_refused_not_silently_skipped() {
        let now = Utc::now();
        let mut blocked = contact(now).with_version(1);
        blocked.block_signups(Source::UnsubscribePage, &META, now);
        let refused = put(
            blocked,
            &write(MemberWriteMode::Upsert, None, Some(MemberStatus::Pending)),
        );
        assert_eq!(
            refused.unwrap_err(),
            MemberError::Refused(ManualChangeError::OptIn(
                super::super::OptInRefused::Blocked
            ))
        );
    }

    #[test]
    fn subscribed_with_evidence_opts_in_and_unreachable_reads_cleaned() {
        let now = Utc::now();
        let mut w = write(
            MemberWriteMode::Upsert,
            Some(MemberStatus::Subscribed),
            None,
        );
        w.evidence = Evidence::parse(Some("Mailchimp API: permissions")).unwrap();
        let Ok(Planned::Write(plan)) = put(contact(now), &w) else {
            panic!("a write")
        };
        assert_eq!(
            plan.value.membership(&type_id("news")),
            Some(Membership::Subscribed)
        );
        let mut bounced = plan.value;
        bounced.mark_unreachable(BounceType::HardBounce, None, &META, now);
        assert_eq!(
            bounced.membership(&type_id("news")),
            Some(Membership::Cleaned)
        );
    }
}
