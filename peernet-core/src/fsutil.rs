//! Data-directory file I/O that another user of the machine cannot redirect.
//!
//! Writes go to a temp file with an unpredictable name, created exclusively and never
//! through a symlink (`O_CREAT|O_EXCL|O_NOFOLLOW`), `fchmod`ed, fsynced, then renamed
//! over the target (or linked to it, for a file that must be created once) and the
//! directory fsynced: a reader sees the old file or the new one, never a partial one.
//! Reads open with `O_NOFOLLOW` and refuse a file that is not ours or that others may
//! change (or, for the private key, read).

use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions, Permissions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::sys;

/// Who besides the owner may access a file PeerNet reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// A secret (the private key): nobody else may read or write it.
    Private,
    /// Others may read it but not change it (the trust store).
    OwnerWrites,
}

/// An error for a file or directory whose owner or mode PeerNet refuses.
pub(crate) fn insecure(path: &Path, detail: String) -> Error {
    Error::io(
        format!("refusing {}", path.display()),
        std::io::Error::new(ErrorKind::PermissionDenied, detail),
    )
}

/// Checks that `meta` (of `path`) belongs to this user and that its mode allows no
/// more than `access`; the error names the path, its mode and the command that fixes it.
pub(crate) fn check_owner_and_mode(path: &Path, meta: &Metadata, access: Access) -> Result<()> {
    let me = sys::euid();
    if meta.uid() != me {
        return Err(insecure(
            path,
            format!(
                "it is owned by uid {}, not by this user (uid {me}); another user could \
                 change it: run `chown {me} {}` if it is yours, or remove it",
                meta.uid(),
                path.display()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    let (forbidden, what, fix) = match access {
        Access::Private => (0o077, "read or change this node's private key", 0o600),
        Access::OwnerWrites => (0o022, "change it", 0o600),
    };
    if mode & forbidden != 0 {
        return Err(insecure(
            path,
            format!(
                "it has mode {mode:04o}: other users may {what}; run `chmod {fix:o} {}`{}",
                path.display(),
                if access == Access::Private {
                    " (if others may have read it, consider the key exposed: move the \
                     file away and restart to create a new identity)"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(())
}

/// `path` names a symlink where a regular file belongs.
fn symlink_error(path: &Path, doing: &str) -> Error {
    insecure(
        path,
        format!(
            "{doing}: it is a symbolic link, and PeerNet never follows links in its data \
             directory (one could send the private key elsewhere): check where it points, \
             then `rm {}`",
            path.display()
        ),
    )
}

/// Creates a temp file next to `path` (random name, exclusive, no symlink), sets its
/// mode with fchmod (the umask does not apply), writes and fsyncs `bytes`. Returns its
/// path; removes it on failure.
fn write_temp(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} has no file name", path.display())))?;
    let rand = sys::random_u64().map_err(|e| {
        Error::io(
            format!("random name for a temp file of {}", path.display()),
            e,
        )
    })?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}.{rand:016x}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let ctx = |what: &str| format!("{what} {}", tmp.display());
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| Error::io(ctx("creating"), e))?;
    let result = (|| {
        f.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| Error::io(ctx("setting the mode of"), e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io(ctx("writing"), e))?;
        f.sync_all().map_err(|e| Error::io(ctx("syncing"), e))
    })();
    drop(f);
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn parent(path: &Path) -> Result<&Path> {
    path.parent()
        .ok_or_else(|| Error::invalid(format!("{} has no parent directory", path.display())))
}

/// Makes the directory entries of `dir` durable (a rename or link is durable only then).
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))
}

/// Writes `bytes` to `path` atomically with the given Unix mode (e.g. 0o600). A symlink
/// at `path` is replaced, never followed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = parent(path)?;
    let tmp = write_temp(path, bytes, mode)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(format!("renaming into {}", path.display()), e));
    }
    sync_dir(dir)
}

/// Creates `path` with `bytes` (complete, fsynced, mode `mode`) only if nothing is
/// there: `Ok(false)` when `path` already exists (another process created it first;
/// read that one). Never replaces or follows what is there.
pub(crate) fn create_exclusive(path: &Path, bytes: &[u8], mode: u32) -> Result<bool> {
    let dir = parent(path)?;
    let tmp = write_temp(path, bytes, mode)?;
    // link(2) fails with EEXIST if anything, even a dangling symlink, is at `path`.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => sync_dir(dir).map(|()| true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io(format!("creating {}", path.display()), e)),
    }
}

/// Reads a whole file, at most `limit` bytes (a bigger file is corrupt, not loaded),
/// without following a symlink, after checking its owner and mode against `access`.
/// `None` if it does not exist. The buffer is wiped when dropped (it may hold a key)
/// and is allocated once, so no copy is left behind by a reallocation.
pub(crate) fn read_bounded(
    path: &Path,
    limit: u64,
    access: Access,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let f = match OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO planted here must not hang the start (no effect on files).
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(symlink_error(path, "opening"))
        }
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let meta = f
        .metadata()
        .map_err(|e| Error::io(format!("reading the status of {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(Error::CorruptFile {
            path: path.to_owned(),
            detail: "not a regular file".into(),
        });
    }
    check_owner_and_mode(path, &meta, access)?;
    let cap = meta.len().min(limit) + 1;
    let mut buf = Zeroizing::new(Vec::with_capacity(usize::try_from(cap).unwrap_or(0)));
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if buf.len() as u64 > limit {
        return Err(Error::CorruptFile {
            path: path.to_owned(),
            detail: format!("larger than {limit} bytes"),
        });
    }
    Ok(Some(buf))
}

/// Creates the data directory (mode 0700) if it does not exist.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating data directory {}", dir.display()), e))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode_of(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let dir = tempdir();
        let p = dir.join("f");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(mode_of(&p), 0o600);
        // No temp file is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn failed_write_leaves_no_temp_file() {
        let dir = tempdir();
        // A non-empty directory where the file belongs makes the rename fail.
        let p = dir.join("f");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("x"), b"").unwrap();
        assert!(write_atomic(&p, b"new", 0o600).is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert!(p.join("x").exists());
    }

    /// Issue 14 item 10: an attacker's symlink at the old predictable temp name
    /// (`.<name>.tmp<pid>`) received the file's bytes (the private key) and kept its own
    /// mode (0666). Now the temp name is random, created exclusively, never followed.
    #[test]
    fn symlink_at_predictable_temp_name_receives_nothing() {
        let dir = tempdir();
        let outside = tempdir();
        let bait = outside.join("bait");
        fs::write(&bait, b"attacker").unwrap();
        fs::set_permissions(&bait, Permissions::from_mode(0o666)).unwrap();
        let p = dir.join("identity.key");
        symlink(
            &bait,
            dir.join(format!(".identity.key.tmp{}", std::process::id())),
        )
        .unwrap();
        write_atomic(&p, b"secret", 0o600).unwrap();
        assert_eq!(
            fs::read(&bait).unwrap(),
            b"attacker",
            "the symlink was followed"
        );
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&p).unwrap(), b"secret");
        assert_eq!(mode_of(&p), 0o600);
        assert!(create_exclusive(&dir.join("k2"), b"s", 0o600).unwrap());
        assert_eq!(fs::read(&bait).unwrap(), b"attacker");
    }

    #[test]
    fn mode_is_set_whatever_the_umask_or_a_stale_file() {
        let dir = tempdir();
        let p = dir.join("f");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, Permissions::from_mode(0o666)).unwrap();
        write_atomic(&p, b"new", 0o600).unwrap();
        assert_eq!(mode_of(&p), 0o600);
    }

    #[test]
    fn create_exclusive_never_replaces() {
        let dir = tempdir();
        let p = dir.join("k");
        assert!(create_exclusive(&p, b"first", 0o600).unwrap());
        assert!(!create_exclusive(&p, b"second", 0o600).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"first");
        assert_eq!(mode_of(&p), 0o600);
        // A dangling symlink counts as "there": nothing is written through it.
        let q = dir.join("q");
        symlink(dir.join("nowhere"), &q).unwrap();
        assert!(!create_exclusive(&q, b"x", 0o600).unwrap());
        assert!(!dir.join("nowhere").exists());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
    }

    #[test]
    fn read_refuses_symlinks_and_loose_modes() {
        let dir = tempdir();
        let real = dir.join("real");
        fs::write(&real, b"data").unwrap();
        fs::set_permissions(&real, Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("link");
        symlink(&real, &link).unwrap();
        let err = read_bounded(&link, 10, Access::OwnerWrites)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("symbolic link") && err.contains("link"),
            "{err}"
        );
        fs::set_permissions(&real, Permissions::from_mode(0o644)).unwrap();
        assert!(read_bounded(&real, 10, Access::OwnerWrites).is_ok());
        let err = read_bounded(&real, 10, Access::Private)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("0644") && err.contains(&format!("chmod 600 {}", real.display())),
            "{err}"
        );
        fs::set_permissions(&real, Permissions::from_mode(0o620)).unwrap();
        let err = read_bounded(&real, 10, Access::OwnerWrites)
            .unwrap_err()
            .to_string();
        assert!(err.contains("0620"), "{err}");
    }

    #[test]
    fn read_bounded_rejects_big_files() {
        let dir = tempdir();
        let p = dir.join("f");
        fs::write(&p, vec![0u8; 11]).unwrap();
        assert!(matches!(
            read_bounded(&p, 10, Access::OwnerWrites),
            Err(Error::CorruptFile { .. })
        ));
        let got = read_bounded(&p, 11, Access::OwnerWrites).unwrap().unwrap();
        assert_eq!(got.len(), 11);
        assert!(read_bounded(&dir.join("missing"), 10, Access::OwnerWrites)
            .unwrap()
            .is_none());
    }

    /// A scratch directory removed when dropped.
    pub(crate) struct TempDir(std::path::PathBuf);

    impl std::ops::Deref for TempDir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl AsRef<Path> for TempDir {
        fn as_ref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    pub(crate) fn tempdir() -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "peernet-fsutil-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}
