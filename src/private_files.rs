//! Files and folders that hold addresses, tokens or the signing key (the database and its
//! -wal/-shm, backups, the lock, the .eml outbox): created 0600 and 0700 whatever the umask.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

use anyhow::Context as _;

/// Creates `dir` and any missing parents with mode 0700. Existing folders are left as they are.
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the folder {}", dir.display()))
}

/// Options that create a file with mode 0600.
pub fn file_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(0o600);
    o
}

/// Creates `path` empty with mode 0600 if it does not exist yet (SQLite then gives its -wal
/// and -shm files the same mode).
pub fn touch(path: &Path) -> anyhow::Result<()> {
    match file_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(anyhow::Error::from(e).context(format!("creating {}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn private_files_and_folders_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        create_dir(&sub).unwrap();
        touch(&sub.join("f")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&sub.join("f")), 0o600);
    }
}
