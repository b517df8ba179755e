//! The purge after erasures: the store's file written anew, holding only what is live.
//!
//! redb never overwrites a page it frees until it reuses it. Its own compaction moves
//! live pages down only while a lower free page of their size exists and then cuts the
//! file's end, so it promises nothing about the free pages it leaves between live ones.
//! A copy does: every table is copied into a new file next to the old one, which then
//! takes the old one's name in one rename. The old file's blocks go back to the file
//! system, which is as far as a program can reach (see the GDPR guide).

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::tables::{for_every_table, TableVisitor};
use super::unavailable;
use crate::store::StoreError;

/// Entries copied per write transaction: bounds the memory a copy holds uncommitted.
const ENTRIES_PER_COMMIT: usize = 50_000;

/// Copies the live contents of `db` (at `path`) into a new private file, renames it
/// over `path` and answers it, opened. Nothing else may use `db` meanwhile (the caller
/// holds it whole). On an error the new file is removed and the old one stays in use.
pub(super) fn rewrite(
    db: &Database,
    path: &Path,
    cache_bytes: Option<usize>,
) -> Result<Database, StoreError> {
    let fresh_path = fresh_path(path);
    let _ = std::fs::remove_file(&fresh_path); // left by a copy that was cut short
    let result = copy_into(db, &fresh_path, cache_bytes).and_then(|fresh| {
        std::fs::rename(&fresh_path, path).map_err(unavailable)?;
        sync_folder(path)?;
        Ok(fresh)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&fresh_path);
    }
    result
}

/// `optin.redb` → `optin.redb.fresh`, in the same folder so that the rename is atomic.
fn fresh_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".fresh");
    path.with_file_name(name)
}

fn copy_into(
    db: &Database,
    fresh_path: &Path,
    cache_bytes: Option<usize>,
) -> Result<Database, StoreError> {
    crate::private_files::restrict_file(fresh_path).map_err(unavailable)?;
    let fresh = super::builder(cache_bytes)
        .create(fresh_path)
        .map_err(unavailable)?;
    let source = db.begin_read().map_err(unavailable)?;
    let mut copy = TableCopy {
        source: &source,
        target: &fresh,
    };
    for_every_table(&mut copy)?;
    // The last commit makes every earlier one durable.
    let mut seal = fresh.begin_write().map_err(unavailable)?;
    seal.set_durability(Durability::Immediate)
        .map_err(unavailable)?;
    seal.commit().map_err(unavailable)?;
    Ok(fresh)
}

struct TableCopy<'a> {
    source: &'a redb::ReadTransaction,
    target: &'a Database,
}

impl TableVisitor for TableCopy<'_> {
    type Error = StoreError;

    fn visit<K: redb::Key + 'static, V: redb::Value + 'static>(
        &mut self,
        table: TableDefinition<'static, K, V>,
    ) -> Result<(), StoreError> {
        let source = match self.source.open_table(table) {
            Ok(source) => source,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(error) => return Err(unavailable(error)),
        };
        let mut entries = source.iter().map_err(unavailable)?.peekable();
        // The table is created even when empty, as the store's start would.
        loop {
            let mut txn = self.target.begin_write().map_err(unavailable)?;
            txn.set_durability(Durability::None).map_err(unavailable)?;
            {
                let mut target = txn.open_table(table).map_err(unavailable)?;
                for entry in entries.by_ref().take(ENTRIES_PER_COMMIT) {
                    let (key, value) = entry.map_err(unavailable)?;
                    target
                        .insert(key.value(), value.value())
                        .map_err(unavailable)?;
                }
            }
            txn.commit().map_err(unavailable)?;
            if entries.peek().is_none() {
                return Ok(());
            }
        }
    }
}

/// Makes the rename durable: a crash right after it must not bring the old file back.
fn sync_folder(path: &Path) -> Result<(), StoreError> {
    let folder = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(folder)
        .and_then(|folder| folder.sync_all())
        .map_err(unavailable)
}
