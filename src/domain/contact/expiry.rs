//! Confirmations not confirmed in time are purged, together with every piece of personal
//! data that was held only for them (data minimisation).

use uuid::Uuid;

use super::Contact;
use crate::domain::funnel::FunnelStage;
use crate::domain::plan::{Plan, Planned};

/// What the purge of one expired confirmation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purged {
    Pending,
    /// The contact held nothing else, so it went entirely.
    Contact,
    /// No such confirmation (already confirmed, withdrawn or purged).
    NotFound,
}

impl Contact {
    pub fn purge_pending(mut self, pending: Uuid) -> Planned<Purged> {
        let Some(step) = self
            .pending_confirmation(pending)
            .map(|p| p.funnel_step(FunnelStage::Expired))
        else {
            return Planned::Nothing(Purged::NotFound);
        };
        self.pending.retain(|p| p.id != pending);
        if self.holds_nothing_but_the_address() {
            return Planned::Write(Plan::delete(Purged::Contact).with_funnel(step));
        }
        Planned::Write(Plan::keep(self, Vec::new(), Purged::Pending).with_funnel(step))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::signed_up;

    use super::*;

    #[test]
    fn the_last_signup_of_an_address_that_holds_nothing_else_takes_the_address_with_it() {
        let now = chrono::Utc::now();
        let (pending, id) = signed_up("en", now);
        let purged = pending.clone().purge_pending(id);
        assert!(
            matches!(purged, Planned::Write(ref p) if p.after.is_none() && p.value == Purged::Contact)
        );
        let steps = purged.plan().unwrap().funnel();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].stage, FunnelStage::Expired);
        assert!(matches!(
            pending.purge_pending(Uuid::now_v7()),
            Planned::Nothing(Purged::NotFound)
        ));
    }
}
