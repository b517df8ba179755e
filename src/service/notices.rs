//! The webhook notices a change sends (DESIGN.md, "Webhooks"): read from the events the
//! change records, rendered once, and queued as one outbox job per endpoint that wants
//! each, in the same atomic write as the change.

use chrono::{DateTime, Utc};

use super::Subscriptions;
use crate::domain::event::EventKind;
use crate::domain::{
    Contact, ContactChange, ContactId, ContactWrite, EmailAddress, Event, OutboxJob, Status,
    Tombstone, WebhookTask,
};
use crate::webhooks::event::{
    ContactBounced, ContactChanged, ContactErased, ContactRectified, SubscriptionChanged,
};
use crate::webhooks::{Endpoint, EventData, WebhookEvent};

impl Subscriptions {
    /// Adds the webhook jobs of `change` to it. `before` is the contact as read, and
    /// `erased` the tombstone an erasure leaves.
    pub(super) fn add_webhook_jobs(
        &self,
        change: &mut ContactChange,
        before: Option<&Contact>,
        erased: Option<&Tombstone>,
        now: DateTime<Utc>,
    ) {
        if self.config.webhook_endpoints.is_empty() {
            return;
        }
        let notices = match (&change.write, before, erased) {
            (ContactWrite::Put(after), _, _) => notices_of_events(&change.new_events, after),
            (ContactWrite::Delete, Some(before), Some(tombstone)) => {
                vec![EventData::ContactErased(ContactErased {
                    email: before.email.as_str().to_string(),
                    reason: tombstone.reason,
                    at: tombstone.erased_at,
                })]
            }
            // The old half of a rectification goes without a notice: the new contact's
            // `contact.rectified` tells of the move.
            (ContactWrite::Delete, _, _) => Vec::new(),
        };
        let jobs = self.webhook_jobs(&change.contact_id, notices, now);
        change.new_jobs.extend(jobs);
    }

    /// The `contact.rectified` notice of a move from `previous` to the contact `moved`
    /// (as written, with its version), recorded by `rectified`.
    pub(super) fn rectification_jobs(
        &self,
        moved: &Contact,
        previous: &EmailAddress,
        rectified: &Event,
    ) -> Vec<OutboxJob> {
        let notice = EventData::ContactRectified(ContactRectified {
            email: moved.email.as_str().to_string(),
            previous_email: previous.as_str().to_string(),
            at: rectified.at,
            version: moved.version,
        });
        self.webhook_jobs(&moved.id, vec![notice], rectified.at)
    }

    fn webhook_jobs(
        &self,
        owner: &ContactId,
        notices: Vec<EventData>,
        now: DateTime<Utc>,
    ) -> Vec<OutboxJob> {
        let mut jobs = Vec::new();
        for data in notices {
            let notice = WebhookEvent::new(data, now);
            let mut wanted_by = self
                .config
                .webhook_endpoints
                .iter()
                .filter(|endpoint| endpoint.filter.wants(&notice.data))
                .peekable();
            if wanted_by.peek().is_none() {
                continue;
            }
            // Rendered once for all its endpoints.
            let Some(body) = render(&notice) else {
                continue;
            };
            for endpoint in wanted_by {
                jobs.push(webhook_job(owner, endpoint, &notice, body.clone(), now));
            }
        }
        jobs
    }
}

/// The body as sent. Our own types always serialize; should one ever not, the change
/// still goes through rather than failing the person's request.
pub(super) fn render(notice: &WebhookEvent) -> Option<String> {
    match serde_json::to_string(notice) {
        Ok(body) => Some(body),
        Err(error) => {
            tracing::error!(%error, "a webhook notice did not serialize; not queued");
            None
        }
    }
}

pub(super) fn webhook_job(
    owner: &ContactId,
    endpoint: &Endpoint,
    notice: &WebhookEvent,
    body: String,
    now: DateTime<Utc>,
) -> OutboxJob {
    let task = WebhookTask {
        endpoint: endpoint.id.clone(),
        event_type: notice.data.event_type().as_str().to_string(),
        body,
    };
    OutboxJob::webhook(owner.clone(), task, now)
}

/// The notices of the events a change records, about the contact as written.
fn notices_of_events(events: &[Event], after: &Contact) -> Vec<EventData> {
    let email = after.email.as_str();
    let contact_changed = |event: &Event| ContactChanged {
        email: email.to_string(),
        at: event.at,
        version: after.version,
    };
    events
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::StatusChanged => {
                let subscription_type = event.subscription_type.as_ref()?;
                let status = event.to?;
                Some(EventData::subscription_changed(SubscriptionChanged {
                    email: email.to_string(),
                    subscription_type: subscription_type.as_str().to_string(),
                    status,
                    previous_status: event.from.unwrap_or(Status::NotSubscribed),
                    source: event.source,
                    lawful_basis: event.lawful_basis,
                    event_id: event.id,
                    at: event.at,
                    version: after.version,
                }))
            }
            EventKind::Restricted => Some(EventData::ContactRestricted(contact_changed(event))),
            EventKind::RestrictionLifted => {
                Some(EventData::ContactRestrictionLifted(contact_changed(event)))
            }
            // feedback2 (issue 12): bounces and complaints.
            EventKind::MarkedUnreachable => Some(EventData::ContactBounced(ContactBounced {
                email: email.to_string(),
                bounce_type: event.bounce_type?,
                at: event.at,
                version: after.version,
            })),
            EventKind::Complained => Some(EventData::ContactComplained(contact_changed(event))),
            // Sent by the rectification itself, which knows the previous address.
            EventKind::Rectified
            | EventKind::Exported
            | EventKind::SignupBlocked
            | EventKind::SignupBlockLifted
            | EventKind::UnreachableCleared => None,
        })
        .collect()
}
