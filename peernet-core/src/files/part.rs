//! The receiver's partial file `<dir>/.<name>.part` and its sidecar
//! `<dir>/.<name>.part.info`, which says which file (name, size, SHA-256) the partial
//! bytes belong to. A partial file is resumed only when its sidecar names exactly the
//! file announced; otherwise it is started again from nothing. Nothing is opened
//! through a symbolic link.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::{read_bounded, write_atomic, Access};

use super::io::hex;
use super::wire::Header;

/// Mode of received files (the umask applies to the partial file, hence to the file).
const FILE_MODE: u32 = 0o644;
/// Largest sidecar read.
const INFO_LIMIT: u64 = 1024;

/// The partial copy of one file being received.
pub(crate) struct Partial {
    dir: PathBuf,
    part: PathBuf,
    info: PathBuf,
    file: File,
    /// Bytes of the file the partial copy holds (written so far).
    pub(crate) len: u64,
}

/// Where a finished file went.
pub(crate) enum Placed {
    /// In place, at this path.
    Done(PathBuf),
    /// A file of that name appeared meanwhile (and is not to be replaced); the whole
    /// partial copy stays for the next attempt.
    Exists,
}

/// The sidecar's text for `h`.
fn info_text(h: &Header) -> String {
    format!(
        "peernet-file-part 1\nname {}\nsize {}\nsha256 {}\n",
        h.name,
        h.size,
        hex(&h.sha256)
    )
}

/// `<dir>/.<name><suffix>`.
fn hidden(dir: &Path, name: &str, suffix: &str) -> PathBuf {
    dir.join(format!(".{name}{suffix}"))
}

fn open_nofollow(path: &Path, create: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

fn storage(path: &Path, doing: &str, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return Error::io(
            format!("{doing} {}", path.display()),
            std::io::Error::new(
                ErrorKind::PermissionDenied,
                "it is a symbolic link, which the file receiver never follows: remove it",
            ),
        );
    }
    Error::io(format!("{doing} {}", path.display()), e)
}

impl Partial {
    /// Opens the partial copy of the file `h` announces in `dir`: resumed when its
    /// sidecar names this very file, else started from nothing.
    pub(crate) fn open(dir: &Path, h: &Header) -> Result<Partial> {
        let part = hidden(dir, &h.name, ".part");
        let info = hidden(dir, &h.name, ".part.info");
        let want = info_text(h);
        let resumed = match open_nofollow(&part, false) {
            Ok(f) => {
                let meta = f
                    .metadata()
                    .map_err(|e| storage(&part, "reading the status of", e))?;
                if !meta.is_file() {
                    return Err(storage(
                        &part,
                        "opening",
                        std::io::Error::new(ErrorKind::InvalidInput, "not a regular file"),
                    ));
                }
                // A sidecar that is missing, unreadable or names another file: the
                // partial bytes are of no use (started again, below).
                let same = matches!(
                    read_bounded(&info, INFO_LIMIT, Access::OwnerWrites),
                    Ok(Some(b)) if b.as_slice() == want.as_bytes()
                );
                (same && meta.len() <= h.size).then_some((f, meta.len()))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(storage(&part, "opening", e)),
        };
        let (mut file, len) = match resumed {
            Some(r) => r,
            None => {
                let f = open_nofollow(&part, true).map_err(|e| storage(&part, "creating", e))?;
                // Emptied and durable before the sidecar names the new file: a crash
                // in between leaves an empty partial file, never old bytes under a
                // new sidecar.
                f.set_len(0)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| storage(&part, "emptying", e))?;
                write_atomic(&info, want.as_bytes(), FILE_MODE)?;
                (f, 0)
            }
        };
        file.seek(SeekFrom::Start(len))
            .map_err(|e| storage(&part, "seeking in", e))?;
        Ok(Partial {
            dir: dir.to_owned(),
            part,
            info,
            file,
            len,
        })
    }

    /// The partial file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.part
    }

    /// Appends `data`.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .map_err(|e| storage(&self.part, "writing", e))?;
        self.len += data.len() as u64;
        Ok(())
    }

    /// Makes what was written durable.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| storage(&self.part, "syncing", e))
    }

    /// Removes the partial file and its sidecar (a bad hash: nothing is kept).
    pub(crate) fn discard(self) {
        drop(self.file);
        let _ = fs::remove_file(&self.part);
        let _ = fs::remove_file(&self.info);
        let _ = sync_dir(&self.dir);
    }

    /// Moves the (synced, checked) partial file to `<dir>/<name>`: atomically, and
    /// without replacing a file there unless `overwrite`.
    pub(crate) fn place(self, name: &str, overwrite: bool) -> Result<Placed> {
        let dest = self.dir.join(name);
        drop(self.file);
        let moved = if overwrite {
            fs::rename(&self.part, &dest)
        } else {
            // link(2) never replaces anything (not even a dangling symlink).
            match fs::hard_link(&self.part, &dest) {
                Ok(()) => fs::remove_file(&self.part),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(Placed::Exists),
                // A file system without hard links: a rename after a check (a file
                // created in between would be replaced; the check is the best it has).
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOTSUP)) => {
                    if fs::symlink_metadata(&dest).is_ok() {
                        return Ok(Placed::Exists);
                    }
                    fs::rename(&self.part, &dest)
                }
                Err(e) => Err(e),
            }
        };
        moved.map_err(|e| storage(&dest, "moving the received file to", e))?;
        let _ = fs::remove_file(&self.info);
        sync_dir(&self.dir)?;
        Ok(Placed::Done(dest))
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))
}
