//! The database's pass lock: an OS file lock beside the database's real file, held by the one
//! process that may poll and deliver the outbox (`run`, `poll`, or briefly a command that
//! queued mail when no service is running). The OS releases it however the process ends.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Another pqwatch holds the database's pass lock (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("another pqwatch ({holder}) is already polling {db} (it holds {lock}); wait for it to finish, or stop it (`systemctl stop pqwatch` if it is the service)")]
pub struct AlreadyRunning {
    pub db: String,
    pub lock: String,
    /// "pid 1234: pqwatch poll --once", from the PID the holder wrote into the lock file.
    pub holder: String,
}

/// Who holds a lock file: the PID written in it and, where /proc shows it, its command line.
fn lock_holder(path: &Path) -> String {
    let pid = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let Some(pid) = pid else {
        return "process unknown".into();
    };
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmd) if !cmd.is_empty() => {
            let words: Vec<String> = cmd
                .split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            format!("pid {pid}: {}", words.join(" "))
        }
        _ => format!("pid {pid}"),
    }
}

/// Held while the value lives.
#[derive(Debug)]
pub struct PassLock {
    _file: File,
    pub path: PathBuf,
}

/// The lock file of a database: `DB.lock` beside the real file, so every path to one database
/// (a symlink, `..`, a relative path) names one lock.
pub fn lock_path(db: &Path) -> anyhow::Result<PathBuf> {
    let real = match std::fs::canonicalize(db) {
        Ok(p) => p,
        // Not created yet: its folder's real path and its own name.
        Err(_) => {
            let dir = db.parent().filter(|d| !d.as_os_str().is_empty());
            let dir = match dir {
                Some(d) => std::fs::canonicalize(d)
                    .with_context(|| format!("finding the folder of {}", db.display()))?,
                None => std::env::current_dir().context("finding the current folder")?,
            };
            dir.join(db.file_name().unwrap_or_default())
        }
    };
    Ok(real.with_extension("lock"))
}

impl PassLock {
    /// Takes the lock, or says who holds it ([`AlreadyRunning`]); creates the database's folder
    /// (0700) if need be.
    pub fn acquire(db: &Path) -> anyhow::Result<PassLock> {
        match PassLock::try_acquire(db)? {
            Some(l) => Ok(l),
            None => {
                let lock = lock_path(db)?;
                Err(AlreadyRunning {
                    db: db.display().to_string(),
                    holder: lock_holder(&lock),
                    lock: lock.display().to_string(),
                }
                .into())
            }
        }
    }

    /// Takes the lock if no one holds it.
    pub fn try_acquire(db: &Path) -> anyhow::Result<Option<PassLock>> {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private_files::create_dir(dir)?;
        }
        let path = lock_path(db)?;
        let file = crate::private_files::file_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                // The holder's PID, so that a refused command can name it.
                let mut f = &file;
                let _ = f.set_len(0);
                let _ = std::io::Write::write_all(
                    &mut f,
                    format!("{}\n", std::process::id()).as_bytes(),
                );
                Ok(Some(PassLock { _file: file, path }))
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(anyhow::Error::from(e).context(format!("locking {}", path.display())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_to_the_database_names_the_same_lock_and_cannot_take_it_twice() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("data/db.sqlite");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, b"").unwrap();
        let link = dir.path().join("link.sqlite");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(lock_path(&link).unwrap(), lock_path(&real).unwrap());
        let held = PassLock::acquire(&real).unwrap();
        assert!(PassLock::try_acquire(&link).unwrap().is_none());
        drop(held);
        assert!(PassLock::try_acquire(&link).unwrap().is_some());
    }
}
