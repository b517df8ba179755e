//! Every table of the embedded store, listed once: opening them at start, telling
//! whether the store is empty (before a restore) and copying the file whole (the purge
//! after erasures) all go through [`for_every_table`], so a new table cannot be missed
//! by one of them.

use redb::TableDefinition;

use super::backup::RESTORE_MARK;
use super::member_index::MEMBER_INDEX;
use super::spent::{SPENT, SPENT_BY_EXPIRY};
use super::{
    CONTACTS, COUNTERS, ENDPOINTS, EVENTS, EXPIRY, EXPIRY_BY_PENDING, FUNNEL, INACTIVE,
    INACTIVE_BY_CONTACT, JOBS, JOBS_BY_CONTACT, MAIL_ALLOWANCE, QUEUE, TIMERS, TIMERS_BY_CONTACT,
    TOMBSTONES,
};

/// Work done on each table in turn, whatever its key and value types.
pub(super) trait TableVisitor {
    type Error;

    fn visit<K: redb::Key + 'static, V: redb::Value + 'static>(
        &mut self,
        table: TableDefinition<'static, K, V>,
    ) -> Result<(), Self::Error>;
}

/// Calls `visitor` with every table, stopping at the first error.
pub(super) fn for_every_table<T: TableVisitor>(visitor: &mut T) -> Result<(), T::Error> {
    visitor.visit(CONTACTS)?;
    visitor.visit(EVENTS)?;
    visitor.visit(TOMBSTONES)?;
    visitor.visit(JOBS)?;
    visitor.visit(JOBS_BY_CONTACT)?;
    visitor.visit(QUEUE)?;
    visitor.visit(EXPIRY)?;
    visitor.visit(EXPIRY_BY_PENDING)?;
    visitor.visit(COUNTERS)?;
    visitor.visit(FUNNEL)?;
    visitor.visit(INACTIVE)?;
    visitor.visit(INACTIVE_BY_CONTACT)?;
    visitor.visit(TIMERS)?;
    visitor.visit(TIMERS_BY_CONTACT)?;
    visitor.visit(MAIL_ALLOWANCE)?;
    visitor.visit(ENDPOINTS)?;
    visitor.visit(MEMBER_INDEX)?;
    visitor.visit(RESTORE_MARK)?;
    visitor.visit(SPENT)?;
    visitor.visit(SPENT_BY_EXPIRY)?;
    Ok(())
}
