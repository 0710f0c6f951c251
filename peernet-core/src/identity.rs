//! The node's X25519 identity, stored in `<data_dir>/identity.key` (spec section 7).

use std::fmt;
use std::path::Path;

use peernet_proto::{keyfile, Key};

use crate::error::{Error, Result};
use crate::fsutil;

/// File name of the identity inside the data directory.
pub const IDENTITY_FILE: &str = "identity.key";

/// A node's static keypair. The private half never leaves this struct except into
/// the handshake; `Debug` prints only the fingerprint.
#[derive(Clone)]
pub struct Identity {
    private: [u8; 32],
    public: Key,
}

impl Identity {
    /// Loads `<dir>/identity.key`, or creates it (mode 0600, atomically) if absent.
    /// A file that exists but fails any check is an error naming the file.
    pub fn load_or_create(dir: &Path) -> Result<Identity> {
        let path = dir.join(IDENTITY_FILE);
        match fsutil::read_bounded(&path, 4096)? {
            Some(bytes) => Self::decode(&path, &bytes),
            None => {
                let private = keyfile::generate_private()?;
                fsutil::write_atomic(&path, &keyfile::encode(&private), 0o600)?;
                tracing::info!(path = %path.display(), "created identity");
                Ok(Identity {
                    private,
                    public: keyfile::public_from_private(&private),
                })
            }
        }
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<Identity> {
        let (private, public) = keyfile::decode(bytes).map_err(|e| Error::CorruptFile {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        Ok(Identity { private, public })
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
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempdir();
        let a = Identity::load_or_create(&dir).unwrap();
        let b = Identity::load_or_create(&dir).unwrap();
        assert_eq!(a.public(), b.public());
        let meta = std::fs::metadata(dir.join(IDENTITY_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 71);
    }

    #[test]
    fn corrupt_file_is_an_error_and_kept() {
        let dir = tempdir();
        let path = dir.join(IDENTITY_FILE);
        std::fs::write(&path, b"not a key").unwrap();
        let err = Identity::load_or_create(&dir).unwrap_err();
        assert!(matches!(err, Error::CorruptFile { .. }), "{err}");
        assert!(err.to_string().contains("identity.key"));
        assert_eq!(std::fs::read(&path).unwrap(), b"not a key");
    }

    #[test]
    fn mismatched_public_key_is_rejected() {
        let dir = tempdir();
        Identity::load_or_create(&dir).unwrap();
        let path = dir.join(IDENTITY_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[10] ^= 1; // inside the public key
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            Identity::load_or_create(&dir),
            Err(Error::CorruptFile { .. })
        ));
    }
}
