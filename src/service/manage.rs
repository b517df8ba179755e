//! "Mail me a link to my preferences": the only thing a `manage` link can do, and what
//! the unsubscribe page and an aged preferences link offer. The mail goes to the address
//! itself, so only its owner gets the preferences link; the page says the same whatever
//! the address's state, and the mail counts against the per-address mail cap.

use super::{LinkError, Plan, Planned, Subscriptions};
use crate::domain::ContactId;
use crate::tokens::{Claims, Purpose};

impl Subscriptions {
    /// Verifies a manage token; changes nothing.
    pub fn check_manage_token(&self, token: &str) -> Result<Claims, LinkError> {
        self.verify_link(token, Purpose::Manage)
    }

    /// `POST /manage/{token}`: queues a preferences-link mail. Answers the same whether
    /// or not a mail was queued.
    pub async fn request_preferences_link(&self, token: &str) -> Result<Claims, LinkError> {
        let claims = self.check_manage_token(token)?;
        self.mail_preferences_link(&claims.contact_id).await?;
        Ok(claims)
    }

    /// The manage link of a contact, for the unsubscribe page's "mail me a link" form.
    pub fn manage_url_for(&self, contact: &ContactId, locale: &str) -> String {
        self.links().manage(contact, Some(locale), self.now())
    }

    /// Queues a "your preferences link" mail for a known contact, within the cap.
    pub(crate) async fn mail_preferences_link(&self, id: &ContactId) -> Result<(), LinkError> {
        self.spend_post(id).await?;
        self.change_contact(id, |before, now, may_mail| {
            let Some(contact) = before.filter(|_| may_mail) else {
                return Ok::<_, LinkError>(Planned::Nothing(()));
            };
            let job = contact.preferences_link_mail(now);
            let mut plan = Plan::keep(contact.clone(), Vec::new(), ());
            plan.jobs.push(job);
            Ok(Planned::Write(plan))
        })
        .await
    }
}
