//! The node's X25519 identity, stored in `<data_dir>/identity.key` (spec section 7).

use std::fmt;
use std::path::Path;

use peernet_proto::{keyfile, Key};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::fsutil::{self, Access};

/// File name of the identity inside the data directory.
pub const IDENTITY_FILE: &str = "identity.key";

/// Largest identity file read (the format is 71 bytes).
const MAX_KEYFILE: u64 = 4096;

/// A node's static keypair. The private half never leaves this struct except into
/// the handshake, and is wiped from memory when the struct is dropped (every clone
/// too); `Debug` prints only the fingerprint.
#[derive(Clone)]
pub struct Identity {
    private: Zeroizing<[u8; 32]>,
    public: Key,
}

// Every field that holds secret bytes is `Zeroizing`, so dropping wipes them.
impl ZeroizeOnDrop for Identity {}

impl Identity {
    /// Loads `<dir>/identity.key`, or creates it (mode 0600, complete or not at all) if
    /// absent. The file is created exclusively: of several processes racing on an empty
    /// directory one creates it and the others load that one (the node's data
    /// directory lock normally keeps them apart anyway). A file that exists but fails
    /// any check (a symlink, not ours, readable or writable by others, corrupt) is an
    /// error naming the file and the fix.
    pub fn load_or_create(dir: &Path) -> Result<Identity> {
        let path = dir.join(IDENTITY_FILE);
        if let Some(bytes) = fsutil::read_bounded(&path, MAX_KEYFILE, Access::Private)? {
            return Self::decode(&path, &bytes);
        }
        let private = Zeroizing::new(keyfile::generate_private()?);
        let file = Zeroizing::new(keyfile::encode(&private));
        if fsutil::create_exclusive(&path, &file[..], 0o600)? {
            tracing::info!(path = %path.display(), "created identity");
            let public = keyfile::public_from_private(&private);
            return Ok(Identity { private, public });
        }
        // Another process created it between our read and our link: use that one.
        match fsutil::read_bounded(&path, MAX_KEYFILE, Access::Private)? {
            Some(bytes) => Self::decode(&path, &bytes),
            None => Err(Error::io(
                format!("loading {}", path.display()),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "created by another process, then removed; is something deleting it?",
                ),
            )),
        }
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<Identity> {
        let (private, public) = keyfile::decode(bytes).map_err(|e| Error::CorruptFile {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        Ok(Identity {
            private: Zeroizing::new(private),
            public,
        })
    }

    /// The public key that identifies this node.
    pub fn public(&self) -> Key {
        self.public
    }

    pub(crate) fn private(&self) -> &[u8; 32] {
        &self.private
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.public.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::tests::tempdir;
    use std::fs::Permissions;
    use std::os::unix::fs::PermissionsExt;
    use zeroize::Zeroize;

    fn write_0600(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn created_once_then_loaded() {
        let dir = tempdir();
        let a = Identity::load_or_create(&dir).unwrap();
        let b = Identity::load_or_create(&dir).unwrap();
        assert_eq!(a.public(), b.public());
        let meta = std::fs::metadata(dir.join(IDENTITY_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 71);
        // Only the key file: the temp file was removed.
        assert_eq!(std::fs::read_dir(&*dir).unwrap().count(), 1);
    }

    /// Issue 14 item 4: threads racing on an empty directory created one identity each
    /// (the same temp name, then rename over each other). Exclusive creation makes
    /// every one of them end up with the same key.
    #[test]
    fn racing_creators_agree_on_one_identity() {
        let dir = tempdir();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(20));
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let (dir, barrier) = (dir.to_path_buf(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Identity::load_or_create(&dir).map(|i| i.public())
                })
            })
            .collect();
        let keys: Vec<Key> = threads
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect();
        let on_disk = Identity::load_or_create(&dir).unwrap().public();
        let differing = keys.iter().filter(|k| **k != on_disk).count();
        assert_eq!(
            differing, 0,
            "{differing} of 20 racers hold a lost identity"
        );
    }

    /// Issue 14 item 11c: the private key is wiped on drop (Zeroizing field, and the
    /// `ZeroizeOnDrop` marker checked at compile time) and never printed.
    #[test]
    fn private_key_is_wiped_and_never_printed() {
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<Identity>();
        let dir = tempdir();
        let mut id = Identity::load_or_create(&dir).unwrap();
        let hex: String = id.private().iter().map(|b| format!("{b:02x}")).collect();
        let shown = format!("{id:?} {:?}", id.clone());
        assert!(!shown.contains(&hex[..16]), "{shown}");
        assert_ne!(*id.private(), [0u8; 32]);
        id.private.zeroize();
        assert_eq!(*id.private(), [0u8; 32]);
    }

    #[test]
    fn corrupt_file_is_an_error_and_kept() {
        let dir = tempdir();
        let path = dir.join(IDENTITY_FILE);
        write_0600(&path, b"not a key");
        let err = Identity::load_or_create(&dir).unwrap_err();
        assert!(matches!(err, Error::CorruptFile { .. }), "{err}");
        assert!(err.to_string().contains("identity.key"));
        assert_eq!(std::fs::read(&path).unwrap(), b"not a key");
    }

    /// Issue 14 item 10: a key file others can read (0644) was used as is.
    #[test]
    fn key_file_readable_by_others_is_refused() {
        let dir = tempdir();
        Identity::load_or_create(&dir).unwrap();
        let path = dir.join(IDENTITY_FILE);
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        let err = Identity::load_or_create(&dir).unwrap_err().to_string();
        assert!(
            err.contains("0644") && err.contains(&format!("chmod 600 {}", path.display())),
            "{err}"
        );
    }

    /// Issue 14 item 10: a symlink at the key path was followed (a planted link made
    /// the node use a key its planter knows).
    #[test]
    fn symlink_at_key_path_is_refused() {
        let dir = tempdir();
        let elsewhere = tempdir();
        let planted = Identity::load_or_create(&elsewhere).unwrap();
        let path = dir.join(IDENTITY_FILE);
        std::os::unix::fs::symlink(elsewhere.join(IDENTITY_FILE), &path).unwrap();
        match Identity::load_or_create(&dir) {
            Ok(id) => panic!(
                "followed the symlink (planted key used: {})",
                id.public() == planted.public()
            ),
            Err(e) => assert!(e.to_string().contains("symbolic link"), "{e}"),
        }
    }

    #[test]
    fn mismatched_public_key_is_rejected() {
        let dir = tempdir();
        Identity::load_or_create(&dir).unwrap();
        let path = dir.join(IDENTITY_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[10] ^= 1; // inside the public key
        write_0600(&path, &bytes);
        assert!(matches!(
            Identity::load_or_create(&dir),
            Err(Error::CorruptFile { .. })
        ));
    }
}
