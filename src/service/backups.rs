//! Backups of the running service: the dump behind `GET /v1/backup` and the tombstone
//! list behind `GET /v1/tombstones`, streamed from one view of the store (on the
//! embedded store, the only way to back it up while it serves).

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::Receiver;

use super::Subscriptions;
use crate::backup::{BackupError, DumpStream};
use crate::domain::MAIL_ALLOWANCE_WINDOW_SECS;

/// A dump as it streams, and whether it is encrypted (to `backup.age_recipients`).
pub struct Dump {
    pub chunks: DumpStream,
    pub encrypted: bool,
}

impl Subscriptions {
    pub async fn dump(&self) -> Result<Dump, BackupError> {
        let window = chrono::Duration::seconds(
            i64::try_from(MAIL_ALLOWANCE_WINDOW_SECS).unwrap_or(i64::MAX),
        );
        Ok(Dump {
            chunks: self.backups.dump(window).await?,
            encrypted: self.backups.encrypted(),
        })
    }

    /// Every tombstone (of erasures at or after `since`, when given), as JSON chunks.
    pub async fn tombstones(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Receiver<Result<Vec<u8>, BackupError>>, BackupError> {
        self.backups.tombstones(since).await
    }
}
