//! The receipts of a plan's consent. The domain holds no keys, so the service signs:
//! [`Plan::with_receipts`] asks it for a receipt of each event that records consent
//! ([`Event::records_consent`]), in the plan's order, just before the plan is written.
//! A receipt names its event and that event's `prev_hash`, and the event records the
//! receipt's SHA-256; so from the first such event on, the events are linked again, and
//! the contact's chain head with them.
//!
//! After an opt-in by the person's own act (a confirm, the preference center, a
//! renewal) the person is mailed the receipt; imports and manual changes get one but
//! no mail.

use super::Contact;
use crate::domain::event::{Event, Source};
use crate::domain::outbox_job::{MailKind, OutboxJob};
use crate::domain::plan::Plan;
use crate::domain::receipt::StoredReceipt;

/// Whether receipts of the person's own opt-ins are mailed (`consent.receipt_mail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptMail {
    Send,
    DoNotSend,
}

/// Consent the person gave by their own act, on a page reached from a mail we sent them.
fn is_own_act(source: Source) -> bool {
    matches!(
        source,
        Source::ConfirmLink | Source::PreferenceCenter | Source::RenewalLink
    )
}

impl<T> Plan<T> {
    /// The plan with a receipt on each event that records consent, as `sign` gives it
    /// (`None`: no receipt for that event), the chain linked again, and the receipt mails.
    #[must_use]
    pub fn with_receipts(
        mut self,
        mail: ReceiptMail,
        mut sign: impl FnMut(&Event) -> Option<StoredReceipt>,
    ) -> Self {
        let Some(first) = self.events.iter().position(Event::records_consent) else {
            return self;
        };
        let head_before = self.events.last().map(Event::hash);
        let mut prev_hash = self.events[first].prev_hash.clone();
        let mut receipted = Vec::new();
        for event in &mut self.events[first..] {
            event.prev_hash = prev_hash;
            if event.records_consent() {
                if let Some(receipt) = sign(event) {
                    event.receipt_sha256 = Some(receipt.sha256());
                    receipted.push((event.id, receipt.compact()));
                    event.receipt = Some(receipt);
                }
            }
            prev_hash = event.hash();
        }
        let Some(after) = self.after.as_mut() else {
            return self;
        };
        if Some(&after.head.hash) == head_before.as_ref() {
            after.head.hash = prev_hash;
        }
        if mail == ReceiptMail::Send {
            let jobs = receipt_mails(after, &self.events, receipted);
            self.jobs.extend(jobs);
        }
        self
    }
}

fn receipt_mails(
    contact: &Contact,
    events: &[Event],
    receipted: Vec<(uuid::Uuid, String)>,
) -> Vec<OutboxJob> {
    receipted
        .into_iter()
        .filter_map(|(event_id, receipt)| {
            let event = events.iter().find(|e| e.id == event_id)?;
            if !is_own_act(event.source) {
                return None;
            }
            let mail = MailKind::Receipt {
                subscription_type: event.subscription_type.clone()?,
                event_id,
                receipt,
            };
            Some(OutboxJob::mail(
                contact.id.clone(),
                contact.email.clone(),
                &contact.locale,
                mail,
                event.at,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use chrono::Utc;

    use super::super::tests::{contact, signed_up, type_id, META};
    use super::super::{PreferenceChoice, StatusChange};
    use super::*;
    use crate::domain::event::verify_chain;
    use crate::domain::{LawfulBasis, Planned, Status};

    /// A stand-in signature over what the event says, so each receipt differs.
    fn sign(event: &Event) -> Option<StoredReceipt> {
        let payload = format!(
            r#"{{"event_id":"{}","prev_hash":"{}"}}"#,
            event.id, event.prev_hash
        );
        StoredReceipt::from_compact(&format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        ))
    }

    fn both_ticked(now: chrono::DateTime<Utc>) -> Plan<Contact> {
        let choice = PreferenceChoice {
            opted_in: ["news", "offers"].map(String::from).into(),
            notice_versions: [("news", "v2"), ("offers", "v2")]
                .map(|(t, v)| (t.to_string(), v.to_string()))
                .into(),
            shown: ["news", "offers"].map(String::from).into(),
            ..PreferenceChoice::default()
        };
        let planned = contact(now)
            .with_version(1)
            .set_preferences(&choice, &super::super::tests::rules(), "en", &META, now)
            .unwrap();
        let Planned::Write(plan) = planned else {
            panic!("a write")
        };
        plan
    }

    #[test]
    fn each_opt_in_gets_its_receipt_named_in_a_chain_that_still_verifies() {
        let now = Utc::now();
        let plan = both_ticked(now).with_receipts(ReceiptMail::Send, sign);
        assert_eq!(plan.events.len(), 2);
        let mut prev = crate::domain::event::GENESIS_HASH.to_string();
        for event in &plan.events {
            assert_eq!(event.prev_hash, prev, "linked again");
            let receipt = event.receipt.as_ref().expect("a receipt");
            assert_eq!(
                event.receipt_sha256.as_deref(),
                Some(receipt.sha256().as_str())
            );
            assert!(
                receipt.payload_json().contains(&event.prev_hash),
                "the receipt names the final prev_hash"
            );
            prev = event.hash();
        }
        let after = plan.after.as_ref().unwrap();
        assert!(verify_chain(&plan.events, after.head()).chain_valid);

        // The person ticked the boxes: each receipt is mailed to them.
        let mails: Vec<&MailKind> = plan
            .jobs
            .iter()
            .map(|j| &j.as_mail().unwrap().mail)
            .collect();
        assert_eq!(mails.len(), 2);
        assert!(
            matches!(mails[0], MailKind::Receipt { subscription_type, receipt, .. }
            if *subscription_type == type_id("news") && *receipt == plan.events[0].receipt.as_ref().unwrap().compact())
        );
    }

    #[test]
    fn a_changed_receipt_breaks_the_chain_where_it_is_kept() {
        let now = Utc::now();
        let plan = both_ticked(now).with_receipts(ReceiptMail::Send, sign);
        let head = plan.after.as_ref().unwrap().head().clone();
        let mut events = plan.events.clone();
        events[0].receipt = events[1].receipt.clone();
        let check = verify_chain(&events, &head);
        assert!(!check.chain_valid);
        assert_eq!(check.first_broken_event, Some(events[0].id));
        let mut events = plan.events;
        events[1].receipt = None;
        assert_eq!(
            verify_chain(&events, &head).first_broken_event,
            Some(events[1].id)
        );
    }

    #[test]
    fn imports_get_a_receipt_but_no_mail_and_other_changes_get_neither() {
        let now = Utc::now();
        let mut c = contact(now).with_version(1);
        let mut import =
            StatusChange::new(Status::OptedIn, Source::Import).with_basis(LawfulBasis::Consent);
        import.consent_notice = Some(super::super::tests::notice("news"));
        let mut events: Vec<Event> = c
            .change_status(&type_id("news"), import, &META, now)
            .into_iter()
            .collect();
        events.extend(c.change_status(
            &type_id("offers"),
            StatusChange::new(Status::OptedIn, Source::Import).with_basis(LawfulBasis::Contract),
            &META,
            now,
        ));
        let plan = Plan::keep(c, events, ()).with_receipts(ReceiptMail::Send, sign);
        assert!(plan.events[0].receipt.is_some());
        assert!(plan.events[1].receipt.is_none(), "not on consent");
        assert!(plan.jobs.is_empty());

        let (pending, id) = signed_up("nl", now);
        let Some(Planned::Write(confirmed)) =
            pending.confirm(id, crate::domain::ConfirmMethod::Button, &META, now)
        else {
            panic!("a confirmation")
        };
        let kept = confirmed.with_receipts(ReceiptMail::DoNotSend, sign);
        assert!(kept.events[0].receipt.is_some());
        assert!(kept.jobs.is_empty(), "consent.receipt_mail = false");
    }

    #[test]
    fn without_a_signature_the_plan_is_as_it_was() {
        let now = Utc::now();
        let plan = both_ticked(now);
        let events = plan.events.clone();
        let plan = plan.with_receipts(ReceiptMail::Send, |_| None);
        assert_eq!(plan.events, events);
        assert!(plan.jobs.is_empty());
    }
}
