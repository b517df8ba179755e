//! `GET /v1/stats/confirmations` and the console's funnel: the confirmation funnel's
//! counters over a window of signup days (see [`crate::domain::funnel`]).

use chrono::NaiveDate;

use super::Subscriptions;
use crate::domain::FunnelReport;
use crate::store::StoreError;

impl Subscriptions {
    /// The funnel of the signups made from `since` to `until`, both days included (UTC).
    pub async fn confirmation_funnel(
        &self,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<FunnelReport, StoreError> {
        let counters = self.store.funnel_counters().await?;
        Ok(FunnelReport::from_counters(&counters, since, until))
    }
}
