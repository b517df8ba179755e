//! "Mail me a link to my preferences": the only thing a `manage` link can do, and what
//! the unsubscribe page and an aged preferences link offer. The mail goes to the address
//! itself, so only its owner gets the preferences link; the page says the same whatever
//! the address's state, and the mail counts against the per-address mail cap.

use super::commit::Reach;
use super::{LinkError, Subscriptions};
use crate::domain::{ContactId, Planned};
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
        self.mail_preferences_link(&claims.contact_id, Purpose::Manage)
            .await?;
        Ok(claims)
    }

    /// Queues a "your preferences link" mail for a known contact, within the cap; the
    /// POST is counted against the budget of the link it came through.
    pub(crate) async fn mail_preferences_link(
        &self,
        id: &ContactId,
        through: Purpose,
    ) -> Result<(), LinkError> {
        self.spend_post(id, through).await?;
        self.commit(id, Reach::Link, |found| {
            Ok::<_, LinkError>(match found.contact {
                Some(contact) => contact.clone().send_preferences_link(found.mail, found.now),
                None => Planned::Nothing(()),
            })
        })
        .await
    }
}
