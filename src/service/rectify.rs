//! Art. 16: rectification moves a contact and its whole history to a new address,
//! through the one commit path: the old contact is marked with where it goes, then
//! moved (see [`super::commit`]). A change racing the move is either carried over with
//! it or refused, never lost, and links mailed before still reach the person.

use super::commit::Reach;
use super::{RequestError, Subscriptions};
use crate::domain::{EmailAddress, MoveTarget, RequestMeta};

impl Subscriptions {
    pub async fn rectify(
        &self,
        old: &EmailAddress,
        new: &EmailAddress,
        meta: &RequestMeta,
    ) -> Result<(), RequestError> {
        if old == new {
            return Err(RequestError::SameAddress);
        }
        let old_id = self.contact_id(old);
        let new_id = self.contact_id(new);
        // Data at the new address is someone else's, unless an earlier request for this
        // same move wrote it and stopped: then this request finishes it.
        if let Some(there) = self.store.load_contact(&new_id).await? {
            if !there.was_moved_from(&old_id) {
                return Err(RequestError::TargetExists);
            }
        }
        let target = MoveTarget {
            id: new_id.clone(),
            email: new.clone(),
            meta: meta.clone(),
        };
        let marked = self
            .commit(&old_id, Reach::Address, |found| {
                let contact = found.contact.ok_or(RequestError::NotFound)?;
                Ok(contact.clone().start_move(target.clone()))
            })
            .await;
        match marked {
            Ok(_) => {}
            // Moved already: by an earlier request for this same move, it is done.
            Err(RequestError::Moved(moved)) => {
                let to = self
                    .store
                    .tombstone(&old_id)
                    .await?
                    .and_then(|t| t.moved_to);
                return if to.as_ref() == Some(&new_id) {
                    Ok(())
                } else {
                    Err(moved.into())
                };
            }
            Err(other) => return Err(other),
        }
        let Some(moving) = self.store.load_contact(&old_id).await? else {
            // Another request finished the move in between.
            return Ok(());
        };
        match self.finish_move(&moving).await? {
            Some(_) => {
                tracing::info!(from = %old.masked(), to = %new.masked(), "contact rectified");
                Ok(())
            }
            None => Err(RequestError::TargetExists),
        }
    }
}
