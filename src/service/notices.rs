//! The webhook notices a change sends: read from the events the change records (and the
//! one thing events cannot tell, a rectification's previous address), rendered once,
//! and queued as one outbox job per endpoint that wants each, in the same atomic write
//! as the change.

use chrono::{DateTime, Utc};

use super::Subscriptions;
use crate::domain::event::EventKind;
use crate::domain::{
    Announcement, Contact, ContactId, ContactWrite, Event, OutboxJob, QuarantineId, Status,
    Tombstone, WebhookTask,
};
use crate::webhooks::event::{
    ContactBounced, ContactChanged, ContactErased, ContactRectified, SignupQuarantined,
    SubscriptionChanged,
};
use crate::webhooks::{Endpoint, EventData, WebhookEvent};

impl Subscriptions {
    /// The notices of one write: `events` are the ones it records (not history carried
    /// over), `write` the contact as written, `tombstone` what an erasure leaves.
    pub(super) fn webhook_notices(
        &self,
        before: Option<&Contact>,
        write: &ContactWrite,
        events: &[Event],
        tombstone: Option<&Tombstone>,
        announcement: Option<Announcement>,
    ) -> Vec<EventData> {
        if self.config.webhook_endpoints.is_empty() {
            return Vec::new();
        }
        match (write, before, tombstone) {
            (ContactWrite::Put(after), _, _) => {
                let mut notices = notices_of_events(events, after);
                match announcement {
                    Some(Announcement::Rectified { previous }) => {
                        let at = events.first().map_or(after.created_at(), |e| e.at);
                        notices.insert(
                            0,
                            EventData::ContactRectified(ContactRectified {
                                email: after.email().as_str().to_string(),
                                previous_email: previous.as_str().to_string(),
                                at,
                                version: after.version(),
                            }),
                        );
                    }
                    Some(Announcement::Quarantined(held)) => {
                        notices.push(EventData::SignupQuarantined(SignupQuarantined {
                            id: QuarantineId {
                                contact: after.id().clone(),
                                held: held.id,
                            }
                            .to_string(),
                            email: after.email().as_str().to_string(),
                            types: held.types.iter().map(ToString::to_string).collect(),
                            reason: held.reason,
                            at: held.signup.at,
                        }));
                    }
                    None => {}
                }
                notices
            }
            (ContactWrite::Delete, Some(before), Some(tombstone)) if tombstone.is_erasure() => {
                vec![EventData::ContactErased(ContactErased {
                    email: before.email().as_str().to_string(),
                    reason: tombstone.reason,
                    at: tombstone.erased_at,
                })]
            }
            // The old half of a rectification goes without a notice: the moved contact's
            // `contact.rectified` tells of it.
            (ContactWrite::Delete, _, _) => Vec::new(),
        }
    }

    /// One job per endpoint that wants each notice.
    pub(super) fn webhook_jobs(
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
    let email = after.email().as_str();
    let version = after.version();
    let contact_changed = |event: &Event| ContactChanged {
        email: email.to_string(),
        at: event.at,
        version,
    };
    events
        .iter()
        .filter_map(|event| match event.kind {
            // A lapse is a status change like any other to the receivers.
            EventKind::StatusChanged | EventKind::ConsentLapsed => {
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
                    version,
                    confirm_method: event.confirm_method,
                    seconds_since_sent: event.seconds_since_sent,
                }))
            }
            EventKind::Restricted => Some(EventData::ContactRestricted(contact_changed(event))),
            EventKind::RestrictionLifted => {
                Some(EventData::ContactRestrictionLifted(contact_changed(event)))
            }
            EventKind::MarkedUnreachable => Some(EventData::ContactBounced(ContactBounced {
                email: email.to_string(),
                bounce_type: event.bounce_type?,
                at: event.at,
                version,
            })),
            EventKind::Complained => Some(EventData::ContactComplained(contact_changed(event))),
            // Told by the announcement of the move, which knows the previous address.
            EventKind::Rectified
            | EventKind::Exported
            | EventKind::SignupBlocked
            | EventKind::SignupBlockLifted
            | EventKind::UnreachableCleared
            // The status stays `opted_in`: nothing a receiver's copy must change.
            | EventKind::ConsentRenewed => None,
        })
        .collect()
}
