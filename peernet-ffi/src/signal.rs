//! The descriptor behind `peernet_event_fd`: a Linux eventfd, readable (level
//! triggered) while the node's event queue holds events.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use peernet_core::Error;

/// A non-blocking eventfd owned by the node's event queue.
pub(crate) struct Signal(OwnedFd);

impl Signal {
    /// A new descriptor, not readable.
    #[cfg(target_os = "linux")]
    pub(crate) fn new() -> Result<Signal, Error> {
        // SAFETY: eventfd takes no pointers; it returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::Io {
                context: "creating the event descriptor (eventfd)".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        Ok(Signal(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// A new descriptor (not available off Linux yet).
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn new() -> Result<Signal, Error> {
        Err(Error::Internal(
            "peernet_event_fd is only implemented on Linux; poll peernet_next_event".into(),
        ))
    }

    /// Makes the descriptor readable.
    pub(crate) fn raise(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of a live u64 to our own descriptor (non-blocking;
        // the counter cannot overflow: it is cleared whenever the queue empties).
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Makes the descriptor not readable.
    pub(crate) fn clear(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from our own non-blocking
        // descriptor (EAGAIN when already clear).
        let _ = unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    /// The descriptor number (owned by this value).
    pub(crate) fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}
