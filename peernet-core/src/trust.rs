//! The persistent allowlist of peer keys (`<data_dir>/trusted_peers`), written atomically
//! in the human-readable format of `peernet_proto::trustfile` (see docs/protocol.md).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use peernet_proto::trustfile::{self, TrustEntry};
use peernet_proto::Key;

use crate::error::{Error, Result};
use crate::fsutil;

/// File name of the trust store inside the data directory.
pub const TRUST_FILE: &str = "trusted_peers";

/// Largest trust file loaded (about 10,000 peers).
const MAX_TRUST_FILE: u64 = 4 << 20;

/// The trust store: in memory, mirrored to disk on every change.
#[derive(Debug)]
pub(crate) struct TrustStore {
    path: PathBuf,
    entries: BTreeMap<Key, TrustEntry>,
}

impl TrustStore {
    /// Loads the store of `dir` (empty if the file does not exist).
    pub(crate) fn load(dir: &Path) -> Result<TrustStore> {
        let path = dir.join(TRUST_FILE);
        let mut entries = BTreeMap::new();
        if let Some(bytes) = fsutil::read_bounded(&path, MAX_TRUST_FILE)? {
            let corrupt = |detail: String| Error::CorruptFile {
                path: path.clone(),
                detail,
            };
            let text =
                std::str::from_utf8(&bytes).map_err(|e| corrupt(format!("not UTF-8 ({e})")))?;
            for e in trustfile::parse(text).map_err(|e| corrupt(e.to_string()))? {
                entries.insert(e.key, e);
            }
        }
        Ok(TrustStore { path, entries })
    }

    fn save(&self, entries: &BTreeMap<Key, TrustEntry>) -> Result<()> {
        let list: Vec<TrustEntry> = entries.values().cloned().collect();
        fsutil::write_atomic(&self.path, trustfile::render(&list).as_bytes(), 0o600)
    }

    /// Applies `change` to a copy, persists it, and only then makes it current: on a
    /// failed write, memory and disk both keep the previous state.
    fn update(&mut self, change: impl FnOnce(&mut BTreeMap<Key, TrustEntry>)) -> Result<()> {
        let mut next = self.entries.clone();
        change(&mut next);
        if next == self.entries {
            return Ok(());
        }
        self.save(&next)?;
        self.entries = next;
        Ok(())
    }

    pub(crate) fn get(&self, key: &Key) -> Option<&TrustEntry> {
        self.entries.get(key)
    }

    pub(crate) fn is_trusted(&self, key: &Key) -> bool {
        self.entries.contains_key(key)
    }

    pub(crate) fn rpc_allowed(&self, key: &Key) -> bool {
        self.entries.get(key).is_some_and(|e| e.rpc)
    }

    /// Trusts `key` (or updates its label if `label` is given and it is trusted already).
    pub(crate) fn trust(&mut self, key: Key, label: Option<&str>) -> Result<()> {
        trustfile::validate_key(&key)?;
        if let Some(l) = label {
            trustfile::validate_label(l)?;
        }
        let added_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.update(|m| {
            let e = m.entry(key).or_insert_with(|| TrustEntry {
                key,
                label: String::new(),
                added_at,
                rpc: false,
                addresses: Vec::new(),
            });
            if let Some(l) = label {
                e.label = l.to_owned();
            }
        })
    }

    /// Removes `key`; returns whether it was trusted.
    pub(crate) fn untrust(&mut self, key: &Key) -> Result<bool> {
        let was = self.entries.contains_key(key);
        self.update(|m| {
            m.remove(key);
        })?;
        Ok(was)
    }

    /// Grants or withdraws RPC rights; the peer must be trusted.
    pub(crate) fn grant_rpc(&mut self, key: &Key, allowed: bool) -> Result<()> {
        if !self.entries.contains_key(key) {
            return Err(Error::UntrustedPeer(format!(
                "{} is not trusted; trust it before granting RPC",
                key.fingerprint()
            )));
        }
        self.update(|m| {
            if let Some(e) = m.get_mut(key) {
                e.rpc = allowed;
            }
        })
    }

    /// Remembers the confirmed addresses of a trusted peer (newest first; at most
    /// `trustfile::MAX_ADDRESSES`). Nothing is written when they did not change or the
    /// peer is not trusted.
    pub(crate) fn remember_addresses(&mut self, key: &Key, addrs: &[SocketAddr]) -> Result<()> {
        let mut list: Vec<SocketAddr> = Vec::with_capacity(trustfile::MAX_ADDRESSES);
        for a in addrs {
            let a = SocketAddr::new(a.ip(), a.port());
            if trustfile::is_storable_address(&a) && !list.contains(&a) {
                list.push(a);
            }
        }
        list.truncate(trustfile::MAX_ADDRESSES);
        match self.entries.get(key) {
            Some(e) if e.addresses != list => {}
            _ => return Ok(()),
        }
        self.update(|m| {
            if let Some(e) = m.get_mut(key) {
                e.addresses = list;
            }
        })
    }

    pub(crate) fn list(&self) -> Vec<TrustEntry> {
        self.entries.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::tests::tempdir;

    #[test]
    fn persisted_across_loads() {
        let dir = tempdir();
        let k = Key::from_bytes([7; 32]);
        let mut s = TrustStore::load(&dir).unwrap();
        s.trust(k, Some("Bob's laptop")).unwrap();
        s.grant_rpc(&k, true).unwrap();
        let s2 = TrustStore::load(&dir).unwrap();
        let e = s2.get(&k).unwrap();
        assert_eq!(e.label, "Bob's laptop");
        assert!(e.rpc);
        assert!(e.added_at > 0);
    }

    #[test]
    fn untrust_removes_rpc_right() {
        let dir = tempdir();
        let k = Key::from_bytes([7; 32]);
        let mut s = TrustStore::load(&dir).unwrap();
        s.trust(k, None).unwrap();
        s.grant_rpc(&k, true).unwrap();
        assert!(s.untrust(&k).unwrap());
        s.trust(k, None).unwrap();
        assert!(!s.rpc_allowed(&k));
    }

    #[test]
    fn grant_needs_trust() {
        let dir = tempdir();
        let mut s = TrustStore::load(&dir).unwrap();
        assert!(matches!(
            s.grant_rpc(&Key::from_bytes([1; 32]), true),
            Err(Error::UntrustedPeer(_))
        ));
    }

    #[test]
    fn corrupt_file_names_file_and_line() {
        let dir = tempdir();
        std::fs::write(
            dir.join(TRUST_FILE),
            "# PeerNet trust store, format 1\nnot-a-key 1 - x\n",
        )
        .unwrap();
        let err = TrustStore::load(&dir).unwrap_err().to_string();
        assert!(err.contains(TRUST_FILE), "{err}");
        assert!(err.contains('2'), "{err}");
    }

    #[test]
    fn failed_write_keeps_memory_and_disk() {
        let dir = tempdir();
        let mut s = TrustStore::load(&dir).unwrap();
        s.trust(Key::from_bytes([1; 32]), None).unwrap();
        let before = std::fs::read(dir.join(TRUST_FILE)).unwrap();
        // Block the temp file path so the next write fails.
        std::fs::create_dir(dir.join(format!(".{TRUST_FILE}.tmp{}", std::process::id()))).unwrap();
        assert!(s.trust(Key::from_bytes([2; 32]), None).is_err());
        assert!(!s.is_trusted(&Key::from_bytes([2; 32])));
        assert_eq!(std::fs::read(dir.join(TRUST_FILE)).unwrap(), before);
    }

    #[test]
    fn trust_refuses_low_order_keys() {
        let dir = tempdir();
        let mut s = TrustStore::load(&dir).unwrap();
        for p in peernet_proto::key::LOW_ORDER_POINTS {
            let e = s.trust(Key::from_bytes(p), None).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
            assert!(e.to_string().contains("low-order"), "{e}");
        }
        assert!(s.list().is_empty());
    }
}
