//! File transfer over a stream: [`Node::send_file`] and [`Node::expose_files`].
//!
//! Built only on the public stream API ([`Node::open_stream`], [`Node::expose_stream`])
//! on the stream handler [`FILE_STREAM`]. The protocol (docs/protocol.md, "File
//! transfer") in short: the sender announces the file's base name, size and SHA-256;
//! the receiver answers with the bytes it already has of that very file (a partial
//! `<dir>/.<name>.part`, with a sidecar `<dir>/.<name>.part.info` naming the size and
//! hash it belongs to); the sender sends only the rest; the receiver fsyncs, checks the
//! SHA-256 of the whole file, moves it into place atomically and answers "done" or
//! "bad hash". A transfer cut short keeps only the `.part` file (to resume from); a
//! bad hash keeps nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use peernet_proto::Key;

use crate::error::Result;
use crate::node::Node;

mod io;
mod part;
mod recv;
mod send;
mod wire;

pub use wire::{check_file_name, MAX_FILE_NAME};

/// The stream handler name file transfers use.
pub const FILE_STREAM: &str = "peernet.file";

/// Default of [`ReceiveOptions::max_size`]: 4 GiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 4 << 30;

/// Default of [`SendOptions::timeout`] and [`ReceiveOptions::timeout`].
pub const DEFAULT_FILE_TIMEOUT: Duration = Duration::from_secs(30);

/// A progress callback: (bytes of the file done, its size). Called from a runtime
/// task: it must be quick and must not block.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Options of [`Node::send_file`].
#[derive(Clone)]
pub struct SendOptions {
    /// The name the file gets on the receiver (default: the path's file name). Checked
    /// by [`check_file_name`] before anything is sent.
    pub name: Option<String>,
    /// Called as the data is written: bytes done (including what the receiver already
    /// had), size. Also once at the start with the offset the receiver resumes from.
    pub progress: Option<Progress>,
    /// How long to wait for each answer of the receiver and for room to write (the
    /// last answer, after the receiver hashed the file, gets one more second per 64 MiB
    /// of the file). Default [`DEFAULT_FILE_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for SendOptions {
    fn default() -> SendOptions {
        SendOptions {
            name: None,
            progress: None,
            timeout: DEFAULT_FILE_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for SendOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendOptions")
            .field("name", &self.name)
            .field("progress", &self.progress.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What [`Node::send_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    /// The name the receiver stored the file under.
    pub name: String,
    /// The file's size in bytes.
    pub size: u64,
    /// Bytes the receiver already had (a resumed transfer), not sent again.
    pub resumed_from: u64,
    /// Bytes of file data sent by this call (over every attempt).
    pub sent: u64,
    /// Whether the receiver's partial copy turned out damaged (bad hash), so the file
    /// was sent again from the start.
    pub restarted: bool,
    /// SHA-256 of the file, as the receiver checked it.
    pub sha256: [u8; 32],
}

/// A receive-progress callback: (sender, file name, bytes done, size). Called on the
/// stream's task: quick, no blocking.
pub type ReceiveProgress = Arc<dyn Fn(&Key, &str, u64, u64) + Send + Sync>;

/// Which peers may send files: true lets the transfer in.
pub type Authorize = Arc<dyn Fn(&Key) -> bool + Send + Sync>;

/// Called once a file is in place, on the stream's task: quick, no blocking.
pub type OnReceived = Arc<dyn Fn(&ReceivedFile) + Send + Sync>;

/// A file that arrived whole (see [`ReceiveOptions::on_received`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFile {
    /// Who sent it.
    pub peer: Key,
    /// Its name.
    pub name: String,
    /// Where it is now.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes that were already there from an earlier, interrupted transfer.
    pub resumed_from: u64,
}

/// Options of [`Node::expose_files`].
#[derive(Clone)]
pub struct ReceiveOptions {
    /// Largest file taken, in bytes; a larger one is refused before any data (the
    /// sender's error names both sizes). Default [`DEFAULT_MAX_FILE_SIZE`].
    pub max_size: u64,
    /// Whether a file may replace an existing one of the same name (default false:
    /// refused, the sender gets `AlreadyExists`).
    pub overwrite: bool,
    /// How long to wait for each piece of the sender's header and data (default
    /// [`DEFAULT_FILE_TIMEOUT`]); a sender silent longer is cut off, its partial file
    /// kept for a resume.
    pub timeout: Duration,
    /// Which trusted peers may send files (default: every trusted peer; untrusted ones
    /// never reach it).
    pub authorize: Option<Authorize>,
    /// Called as data is written to the partial file.
    pub progress: Option<ReceiveProgress>,
    /// Called once a file is in place.
    pub on_received: Option<OnReceived>,
}

impl Default for ReceiveOptions {
    fn default() -> ReceiveOptions {
        ReceiveOptions {
            max_size: DEFAULT_MAX_FILE_SIZE,
            overwrite: false,
            timeout: DEFAULT_FILE_TIMEOUT,
            authorize: None,
            progress: None,
            on_received: None,
        }
    }
}

impl std::fmt::Debug for ReceiveOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiveOptions")
            .field("max_size", &self.max_size)
            .field("overwrite", &self.overwrite)
            .field("timeout", &self.timeout)
            .field("authorize", &self.authorize.is_some())
            .field("progress", &self.progress.is_some())
            .field("on_received", &self.on_received.is_some())
            .finish()
    }
}

impl Node {
    /// Sends the file at `path` to `key`, whose node receives files
    /// ([`Node::expose_files`]), and returns once the receiver has checked its SHA-256
    /// and put it in place. If an earlier transfer of the same file (same name, size
    /// and hash) was cut short, only the rest is sent.
    ///
    /// Errors: `InvalidArgument` for a bad name (before any traffic; see
    /// [`check_file_name`]) or a path that is not a regular file; `Io` reading it;
    /// `NoSuchHandler("peernet.file")` when the peer receives no files;
    /// `AlreadyExists` when the receiver has a file of that name and does not
    /// overwrite; `HandlerFailed` with the receiver's reason for any other refusal (too
    /// large, names the limit; a damaged transfer; its disk); `Closed` or `StreamReset`
    /// when the connection or stream ended first (run it again to resume); `Timeout`
    /// when the receiver went silent for [`SendOptions::timeout`].
    pub async fn send_file(
        &self,
        key: &Key,
        path: impl AsRef<Path>,
        options: SendOptions,
    ) -> Result<SendReport> {
        send::send_file(self, key, path.as_ref(), options).await
    }

    /// Receives files into `dir` (which must exist) from trusted peers, on the stream
    /// handler [`FILE_STREAM`]: a file arrives as `<dir>/.<name>.part` and is moved to
    /// `<dir>/<name>` only once whole and its SHA-256 checked. `AlreadyExists` if files
    /// are exposed already ([`Node::revoke_files`] first).
    pub fn expose_files(&self, dir: impl Into<PathBuf>, options: ReceiveOptions) -> Result<()> {
        let handler = recv::handler(dir.into(), options)?;
        self.expose_stream(FILE_STREAM, handler)
    }

    /// Stops receiving files (transfers in progress go on to their end).
    pub fn revoke_files(&self) -> Result<()> {
        self.revoke_stream(FILE_STREAM)
    }
}
