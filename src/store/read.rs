//! Read-only connections for the web front: a small pool of SQLite connections opened read-only
//! (WAL lets them read while a pass writes), so a page never waits for the pass's connection.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use rusqlite::{Connection, OpenFlags};

use super::Store;

/// Idle connections kept for reuse; more are opened when more requests read at once.
const KEEP_IDLE: usize = 8;

/// Read-only [`Store`]s on one database file, reused between requests.
pub struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Store>>,
}

impl std::fmt::Debug for ReadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadPool({})", self.path.display())
    }
}

impl Store {
    /// Opens an existing, migrated database read-only. Writes through it fail.
    pub fn open_read_only(path: &Path) -> anyhow::Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .with_context(|| format!("opening database {} to read", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(Store { conn })
    }
}

impl Store {
    /// Makes every transaction of this connection take the write lock when it begins. A
    /// connection that writes beside the pass's (the web front's) then waits its turn under the
    /// busy timeout, instead of failing at once with "database is locked" when a transaction
    /// that read first tries to write after the other connection committed.
    pub fn begin_transactions_immediately(&mut self) {
        self.conn
            .set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    }
}

impl ReadPool {
    /// A pool on `path`; checks at once that the database can be opened.
    pub fn new(path: &Path) -> anyhow::Result<ReadPool> {
        let first = Store::open_read_only(path)?;
        Ok(ReadPool {
            path: path.to_owned(),
            idle: Mutex::new(vec![first]),
        })
    }

    /// Runs `f` on a read-only connection (blocking: call it off the async executor).
    pub fn read<T>(&self, f: impl FnOnce(&Store) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let taken = self.idle.lock().ok().and_then(|mut v| v.pop());
        let store = match taken {
            Some(s) => s,
            None => Store::open_read_only(&self.path)?,
        };
        let out = f(&store);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < KEEP_IDLE {
                idle.push(store);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_connection_reads_while_a_writer_holds_a_transaction_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut writer = Store::open(&path).unwrap();
        writer.secret("links", b"k").unwrap();
        let pool = ReadPool::new(&path).unwrap();
        let tx = writer.conn.transaction().unwrap();
        tx.execute("INSERT INTO secrets (name, value) VALUES ('x', x'00')", [])
            .unwrap();
        let n = pool
            .read(|s| {
                Ok(s.conn
                    .query_row("SELECT count(*) FROM secrets", [], |r| r.get::<_, i64>(0))?)
            })
            .unwrap();
        assert_eq!(
            n, 1,
            "the reader sees the last commit, not the open transaction"
        );
        tx.commit().unwrap();
        let err = pool.read(|s| {
            s.conn
                .execute("DELETE FROM secrets", [])
                .map_err(anyhow::Error::from)
        });
        assert!(err.is_err());
    }
}
