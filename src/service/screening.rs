//! The signup firewall as a public signup meets it, before anything is written: the proof
//! of work (spent once), the address's domain (refused, or held as `disposable_domain`),
//! and what the request itself tells: the hosted form back too fast (`too_fast`), too
//! many unconfirmed signups from the client's network (`ip_burst`). A refusal is an
//! error the doors answer; a hold gets the same answer as any signup.

use std::net::IpAddr;

use super::{SignupError, SignupRequest, Subscriptions};
use crate::client_network::limit_network;
use crate::domain::{QuarantineReason, SignupEvidence};
use crate::firewall::{Challenge, Verdict};
use crate::store::StoreError;

/// The window `signup.max_unconfirmed_per_ip` counts in.
const BURST_WINDOW_SECS: u64 = 3_600;
/// The name its count is kept under.
const BURST_LIMIT: &str = "signup-burst";

impl Subscriptions {
    /// Refuses the signup, or says why it is held (`None`: mail it).
    pub(super) async fn screen(
        &self,
        request: &SignupRequest,
    ) -> Result<Option<QuarantineReason>, SignupError> {
        let firewall = &self.config.firewall;
        let now = self.clock.now();
        if !request.keyed {
            firewall
                .verify_proof(self.store.as_ref(), request.proof.as_deref(), now)
                .await?;
        }
        let mut hold = match firewall.judge(&request.email, now).await {
            Verdict::Refuse(reason) => {
                metrics::counter!("optin_signups_refused_total", "reason" => refusal_name(reason))
                    .increment(1);
                return Err(SignupError::Undeliverable(reason));
            }
            Verdict::Quarantine(reason) => Some(reason),
            Verdict::Pass => None,
        };
        if request.keyed {
            return Ok(hold);
        }
        if firewall.filled_too_fast(request.form_rendered.as_deref(), now) {
            hold = hold.or(Some(QuarantineReason::TooFast));
        }
        // Counted for every signup of the network, held or not: each is unconfirmed.
        if let Some(network) = &request.client_network {
            if self.count_unconfirmed_from(network).await? {
                hold = hold.or(Some(QuarantineReason::IpBurst));
            }
        }
        Ok(hold)
    }

    /// Counts one unconfirmed signup of the client's network in the current hour, and
    /// answers whether there are more than `signup.max_unconfirmed_per_ip`. A
    /// confirmation gives its signup's count back (see [`Self::count_confirmed_from`]).
    async fn count_unconfirmed_from(&self, network: &str) -> Result<bool, StoreError> {
        let limit = self.config.settings.signup.max_unconfirmed_per_ip;
        let over = self
            .count_network_hit(BURST_LIMIT, network, BURST_WINDOW_SECS, u64::from(limit))
            .await?;
        Ok(over.is_some())
    }

    /// A confirmed signup is no longer unconfirmed: its count goes back to the network
    /// it came from, in the hour it was counted in. Needs the IP the signup recorded
    /// (`privacy.record_ip`); without it nothing is given back.
    pub(super) async fn count_confirmed_from(
        &self,
        signup: &SignupEvidence,
    ) -> Result<(), StoreError> {
        let Some(ip) = signup
            .ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok())
        else {
            return Ok(());
        };
        self.give_back_network_hit(
            BURST_LIMIT,
            &limit_network(ip),
            BURST_WINDOW_SECS,
            signup.at,
        )
        .await
    }

    /// A fresh proof-of-work challenge; `None` while `signup.proof_of_work` is off.
    pub fn signup_challenge(&self) -> Option<Result<Challenge, getrandom::Error>> {
        let proof_of_work = self.config.firewall.proof_of_work()?;
        Some(proof_of_work.challenge(self.now()))
    }
}

/// The metric label of a refusal: never the domain.
fn refusal_name(reason: crate::firewall::RefuseReason) -> &'static str {
    use crate::firewall::RefuseReason;
    match reason {
        RefuseReason::Undeliverable(why) => why.as_str(),
        RefuseReason::BlockedDomain => "blocked_domain",
        RefuseReason::DisposableDomain => "disposable_domain",
    }
}
