//! What the admin console needs beyond the admin API's operations: the limit on sign-in
//! attempts, and the per-client counting it shares with signups.

use super::Subscriptions;
use crate::store::StoreError;

/// Sign-in attempts one client network may make per window: enough for a person who
/// mistypes, far too few to guess a key.
pub const MAX_SIGN_INS_PER_WINDOW: u64 = 10;
pub const SIGN_IN_WINDOW_SECS: u64 = 15 * 60;

impl Subscriptions {
    /// Counts one console sign-in attempt from a client network (an IPv4 address or an
    /// IPv6 /64). Every attempt counts, good or bad: were only failures counted, a guess
    /// past the limit that happened to be right would still get in. Returns the seconds
    /// to wait when the limit is reached.
    pub async fn count_sign_in_from(&self, network: &str) -> Result<Option<u64>, StoreError> {
        self.count_network_hit(
            "console-sign-in",
            network,
            SIGN_IN_WINDOW_SECS,
            MAX_SIGN_INS_PER_WINDOW,
        )
        .await
    }

    /// Counts one hit of a client network against a per-window `limit` (shared by every
    /// instance on Redis), keyed by a pseudonym of the network, never the address itself.
    /// Returns the seconds until the window ends when the limit is passed.
    pub(super) async fn count_network_hit(
        &self,
        limit_name: &str,
        network: &str,
        window_secs: u64,
        limit: u64,
    ) -> Result<Option<u64>, StoreError> {
        let window = window_secs.max(1);
        let key = self.network_key(limit_name, network);
        let now = self.clock.now();
        let hits = self.store.count_hit(&key, window, now).await?;
        if hits > limit {
            return Ok(Some(window - (now.timestamp().max(0) as u64 % window)));
        }
        Ok(None)
    }

    /// Gives back a hit counted by [`Self::count_network_hit`] at `at`.
    pub(super) async fn give_back_network_hit(
        &self,
        limit_name: &str,
        network: &str,
        window_secs: u64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let key = self.network_key(limit_name, network);
        let window = crate::store::HitWindow {
            secs: window_secs.max(1),
            at,
        };
        self.store.give_back_hit(&key, window).await
    }

    /// A limit's key for a client network: a pseudonym, never the address itself.
    fn network_key(&self, limit_name: &str, network: &str) -> String {
        format!(
            "{limit_name}:{}",
            self.config.index.pseudonym("ip", network)
        )
    }
}
