//! The data directory: checked (owned by this user, writable by nobody else) and locked
//! for the node's life, so that one process at a time owns its identity and trust store.
//!
//! Without the lock, `peernet trust remove` run while a node used the same directory
//! was undone by the node's next write (it rewrote the trust file from memory, the
//! revoked key included), and two processes starting on an empty directory each
//! created an identity, one of them lost. The lock is an `flock` on
//! `<data_dir>/node.lock`, which also holds the holder's pid for the error message.
//! `flock` locks belong to the open file, so two nodes of one process exclude each other
//! too, and the kernel drops the lock when the process dies (no stale lock to clean).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil::insecure;
use crate::sys;

pub use crate::error::LOCK_FILE;

/// Refuses a data directory another user could write into: one not owned by this user,
/// or group- or world-writable (they could replace the identity or the trust store).
pub(crate) fn check_dir(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        Error::io(
            format!("reading the status of data directory {}", dir.display()),
            e,
        )
    })?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!(
            "data directory {} is not a directory",
            dir.display()
        )));
    }
    let me = sys::euid();
    if meta.uid() != me {
        return Err(insecure(
            dir,
            format!(
                "data directory owned by uid {}, not by this user (uid {me}): its owner could \
                 replace the identity or the trust store; use a directory of your own",
                meta.uid()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(insecure(
            dir,
            format!(
                "data directory has mode {mode:04o}: other users may replace its files (the \
                 identity, the trust store); run `chmod 700 {}`",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// The exclusive lock on a data directory; released when dropped (or when the process
/// ends, however it ends).
///
/// The locked descriptor is read-only: a file open for writing would keep the
/// filesystem from being remounted read-only under a running node. The pid is written
/// through a second, short-lived descriptor.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// Holds the flock (never read: closing it is the unlock).
    _file: File,
    path: std::path::PathBuf,
}

fn open_lock_file(path: &Path, write: bool) -> Result<File> {
    // O_CREAT by hand: std refuses `create` without write access, which flock does
    // not need.
    OpenOptions::new()
        .read(!write)
        .write(write)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CREAT)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => insecure(
                path,
                format!("it is a symbolic link; remove it: `rm {}`", path.display()),
            ),
            _ => Error::io(format!("opening lock file {}", path.display()), e),
        })
}

/// Replaces the lock file's contents (the pid, or nothing on release).
fn write_pid(path: &Path, text: &str) -> Result<()> {
    let mut f = open_lock_file(path, true)?;
    f.set_len(0)
        .and_then(|()| f.seek(SeekFrom::Start(0)))
        .and_then(|_| f.write_all(text.as_bytes()))
        .map_err(|e| Error::io(format!("writing the pid into {}", path.display()), e))
}

impl DirLock {
    /// Locks `dir` or fails at once with [`Error::Busy`] naming the holder's pid.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = open_lock_file(&path, false)?;
        let locked = sys::try_lock_exclusive(&file)
            .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        if !locked {
            return Err(Error::Busy {
                path: dir.to_owned(),
                pid: read_pid(&mut file),
            });
        }
        write_pid(&path, &format!("{}\n", std::process::id()))?;
        Ok(DirLock { _file: file, path })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Still locked here: nobody else reads a stale pid. Closing `_file` unlocks.
        let _ = write_pid(&self.path, "");
    }
}

/// The pid a holder wrote into the lock file (it may not have written it yet).
fn read_pid(file: &mut File) -> Option<u32> {
    let mut buf = [0u8; 24];
    let n = file.read(&mut buf).ok()?;
    std::str::from_utf8(buf.get(..n)?).ok()?.trim().parse().ok()
}

/// The directory a node opens: checked, locked, then its files loaded by the caller.
pub(crate) fn open(dir: &Path) -> Result<DirLock> {
    crate::fsutil::ensure_dir(dir)?;
    check_dir(dir)?;
    DirLock::acquire(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::tests::tempdir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn second_lock_is_busy_with_the_pid_until_the_first_drops() {
        let dir = tempdir();
        let a = open(&dir).unwrap();
        match open(&dir) {
            Err(Error::Busy { path, pid }) => {
                assert_eq!(path, dir.to_path_buf());
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("{other:?}"),
        }
        drop(a);
        let _b = open(&dir).unwrap();
    }

    #[test]
    fn loose_data_dir_is_refused_with_the_fix() {
        let dir = tempdir();
        std::fs::set_permissions(&*dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = open(&dir).unwrap_err().to_string();
        assert!(
            err.contains("0777") && err.contains(&format!("chmod 700 {}", dir.display())),
            "{err}"
        );
        std::fs::set_permissions(&*dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        open(&dir).unwrap();
    }
}
