//! The persistent allowlist of peer keys (`<data_dir>/trusted_peers`), written atomically
//! in the human-readable format of `peernet_proto::trustfile` (see docs/protocol.md).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use peernet_proto::trustfile::{self, TrustEntry};
use peernet_proto::Key;

use crate::datadir::DirLock;
use crate::error::{CloseReason, Error, Result};
use crate::fsutil::{self, Access};

/// File name of the trust store inside the data directory.
pub const TRUST_FILE: &str = "trusted_peers";

/// Largest trust file loaded (about 10,000 peers).
const MAX_TRUST_FILE: u64 = 4 << 20;

/// The trust store: in memory, mirrored to disk on every change, while it holds the
/// data directory's lock (so no other process writes the file meanwhile).
#[derive(Debug)]
pub(crate) struct TrustStore {
    path: PathBuf,
    entries: BTreeMap<Key, TrustEntry>,
    /// `None` once the node stopped: from then on nothing is written.
    lock: Option<DirLock>,
    /// The file lags behind memory (a revocation whose write failed): the next change,
    /// or the same untrust again, rewrites it.
    dirty: bool,
}

impl TrustStore {
    /// Loads the store of `dir` (empty if the file does not exist), which `lock` holds.
    pub(crate) fn load(dir: &Path, lock: DirLock) -> Result<TrustStore> {
        let path = dir.join(TRUST_FILE);
        let mut entries = BTreeMap::new();
        if let Some(bytes) = fsutil::read_bounded(&path, MAX_TRUST_FILE, Access::OwnerWrites)? {
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
        Ok(TrustStore {
            path,
            entries,
            lock: Some(lock),
            dirty: false,
        })
    }

    /// Releases the data directory (the node stopped); later changes fail with `Closed`.
    pub(crate) fn release(&mut self) {
        self.lock = None;
    }

    fn save(&self, entries: &BTreeMap<Key, TrustEntry>) -> Result<()> {
        if self.lock.is_none() {
            return Err(Error::Closed(CloseReason::LocalShutdown));
        }
        let list: Vec<TrustEntry> = entries.values().cloned().collect();
        fsutil::write_atomic(&self.path, trustfile::render(&list).as_bytes(), 0o600)
    }

    /// Applies `change` to a copy, persists it, and only then makes it current: on a
    /// failed write, memory and disk both keep the previous state.
    fn update(&mut self, change: impl FnOnce(&mut BTreeMap<Key, TrustEntry>)) -> Result<()> {
        let mut next = self.entries.clone();
        change(&mut next);
        if next == self.entries && !self.dirty {
            return Ok(());
        }
        self.save(&next)?;
        self.entries = next;
        self.dirty = false;
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
                manual: Vec::new(),
            });
            if let Some(l) = label {
                e.label = l.to_owned();
            }
        })
    }

    /// Removes `key` and returns whether it was trusted, with the outcome of writing the
    /// file. A revocation fails closed (see `revoke`).
    pub(crate) fn untrust(&mut self, key: &Key) -> (bool, Result<()>) {
        let was = self.entries.contains_key(key);
        if !was && !self.dirty {
            return (false, Ok(()));
        }
        let what = format!(
            "{} is untrusted now and its connections are closed",
            key.fingerprint()
        );
        let saved = self.revoke(
            |m| {
                m.remove(key);
            },
            &what,
        );
        (was, saved)
    }

    /// Grants or withdraws RPC rights; the peer must be trusted. Withdrawing is a
    /// revocation and fails closed like `untrust`; granting changes nothing unless the
    /// file is written.
    pub(crate) fn grant_rpc(&mut self, key: &Key, allowed: bool) -> Result<()> {
        if !self.entries.contains_key(key) {
            return Err(Error::UntrustedPeer(format!(
                "{} is not trusted; trust it before granting RPC",
                key.fingerprint()
            )));
        }
        let set = |m: &mut BTreeMap<Key, TrustEntry>| {
            if let Some(e) = m.get_mut(key) {
                e.rpc = allowed;
            }
        };
        if allowed || (!self.rpc_allowed(key) && !self.dirty) {
            return self.update(set);
        }
        let what = format!("{} may no longer call RPC", key.fingerprint());
        self.revoke(set, &what)
    }

    /// A revocation (untrust, RPC withdrawn) fails closed: memory changes first, even
    /// when the write then fails (a full disk must not keep a revoked right alive); the
    /// file is rewritten by the next change, or the same revocation again.
    fn revoke(
        &mut self,
        change: impl FnOnce(&mut BTreeMap<Key, TrustEntry>),
        what: &str,
    ) -> Result<()> {
        change(&mut self.entries);
        let saved = self.save(&self.entries);
        self.dirty = saved.is_err();
        saved.map_err(|e| match e {
            Error::Io { context, source } => Error::Io {
                context: format!(
                    "{what}, but saving {} failed ({context}); the file still has the old \
                     state, so a restart would undo this: fix that (free space, \
                     permissions) and do it again",
                    self.path.display()
                ),
                source,
            },
            other => other,
        })
    }

    /// Remembers the confirmed addresses of a trusted peer (newest first; at most
    /// `trustfile::MAX_ADDRESSES`). Nothing is written when they did not change or the
    /// peer is not trusted.
    pub(crate) fn remember_addresses(&mut self, key: &Key, addrs: &[SocketAddr]) -> Result<()> {
        let mut list: Vec<SocketAddr> = Vec::with_capacity(trustfile::MAX_ADDRESSES);
        for a in addrs {
            let a = trustfile::storable_form(*a);
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

    /// Attaches manual address `addr` (`host:port`, see `peernet_proto::peer_addr`) to
    /// the trusted `key`; returns its canonical form. Already attached: nothing written.
    pub(crate) fn add_manual(&mut self, key: &Key, addr: &str) -> Result<String> {
        use peernet_proto::peer_addr::{normalize, MAX_MANUAL_ADDRESSES};
        let a = normalize(addr)?;
        let Some(e) = self.entries.get(key) else {
            return Err(Error::UntrustedPeer(format!(
                "{} is not trusted; trust it before attaching addresses",
                key.fingerprint()
            )));
        };
        if e.manual.contains(&a) {
            return Ok(a);
        }
        if e.manual.len() >= MAX_MANUAL_ADDRESSES {
            return Err(Error::invalid(format!(
                "{} has {MAX_MANUAL_ADDRESSES} manual addresses already ({}); remove one first",
                key.fingerprint(),
                e.manual.join(", ")
            )));
        }
        let added = a.clone();
        self.update(|m| {
            if let Some(e) = m.get_mut(key) {
                e.manual.push(added);
            }
        })?;
        Ok(a)
    }

    /// Detaches manual address `addr` from `key`; returns whether it was attached.
    pub(crate) fn remove_manual(&mut self, key: &Key, addr: &str) -> Result<bool> {
        let a = peernet_proto::peer_addr::normalize(addr)?;
        if !self.entries.get(key).is_some_and(|e| e.manual.contains(&a)) {
            return Ok(false);
        }
        self.update(|m| {
            if let Some(e) = m.get_mut(key) {
                e.manual.retain(|x| *x != a);
            }
        })?;
        Ok(true)
    }

    /// The manual addresses of `key` (empty when untrusted).
    pub(crate) fn manual(&self, key: &Key) -> Vec<String> {
        self.entries
            .get(key)
            .map(|e| e.manual.clone())
            .unwrap_or_default()
    }

    pub(crate) fn list(&self) -> Vec<TrustEntry> {
        self.entries.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::tests::tempdir;

    fn load(dir: &Path) -> Result<TrustStore> {
        TrustStore::load(dir, DirLock::acquire(dir)?)
    }

    #[test]
    fn persisted_across_loads() {
        let dir = tempdir();
        let k = Key::from_bytes([7; 32]);
        let mut s = load(&dir).unwrap();
        s.trust(k, Some("Bob's laptop")).unwrap();
        s.grant_rpc(&k, true).unwrap();
        drop(s);
        let s2 = load(&dir).unwrap();
        let e = s2.get(&k).unwrap();
        assert_eq!(e.label, "Bob's laptop");
        assert!(e.rpc);
        assert!(e.added_at > 0);
    }

    #[test]
    fn untrust_removes_rpc_right() {
        let dir = tempdir();
        let k = Key::from_bytes([7; 32]);
        let mut s = load(&dir).unwrap();
        s.trust(k, None).unwrap();
        s.grant_rpc(&k, true).unwrap();
        assert!(s.untrust(&k).0);
        s.trust(k, None).unwrap();
        assert!(!s.rpc_allowed(&k));
    }

    #[test]
    fn grant_needs_trust() {
        let dir = tempdir();
        let mut s = load(&dir).unwrap();
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
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains(TRUST_FILE), "{err}");
        assert!(err.contains('2'), "{err}");
    }

    /// A non-empty directory where the trust file belongs: the rename fails.
    fn block_the_file(dir: &Path) {
        let p = dir.join(TRUST_FILE);
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("x"), b"").unwrap();
    }

    fn unblock_the_file(dir: &Path) {
        std::fs::remove_dir_all(dir.join(TRUST_FILE)).unwrap();
    }

    #[test]
    fn failed_write_keeps_memory_and_disk() {
        let dir = tempdir();
        let mut s = load(&dir).unwrap();
        s.trust(Key::from_bytes([1; 32]), None).unwrap();
        block_the_file(&dir);
        assert!(s.trust(Key::from_bytes([2; 32]), None).is_err());
        assert!(!s.is_trusted(&Key::from_bytes([2; 32])));
        assert!(s.is_trusted(&Key::from_bytes([1; 32])));
    }

    /// Issue 14 item 8 (store half; tests/datadir.rs has the node half): a failed
    /// write kept the revoked key trusted. Now memory forgets it, the error says so,
    /// and the same untrust again rewrites the file once writing works.
    #[test]
    fn failed_untrust_write_still_forgets_the_key() {
        let dir = tempdir();
        let k = Key::from_bytes([1; 32]);
        let mut s = load(&dir).unwrap();
        s.trust(k, None).unwrap();
        block_the_file(&dir);
        let (was, saved) = s.untrust(&k);
        assert!(was);
        let err = saved.unwrap_err().to_string();
        assert!(
            err.contains("untrusted now") && err.contains(TRUST_FILE),
            "{err}"
        );
        assert!(!s.is_trusted(&k));
        unblock_the_file(&dir);
        std::fs::write(dir.join(TRUST_FILE), trustfile::render(&s.list_with(k))).unwrap();
        let (was, saved) = s.untrust(&k);
        assert!(!was);
        saved.unwrap();
        drop(s);
        assert!(
            !load(&dir).unwrap().is_trusted(&k),
            "the retry did not rewrite the file"
        );
    }

    /// Withdrawing RPC is a revocation too: a failed write must not keep the right.
    #[test]
    fn failed_rpc_withdrawal_write_still_withdraws() {
        let dir = tempdir();
        let k = Key::from_bytes([1; 32]);
        let mut s = load(&dir).unwrap();
        s.trust(k, None).unwrap();
        s.grant_rpc(&k, true).unwrap();
        block_the_file(&dir);
        let err = s.grant_rpc(&k, false).unwrap_err().to_string();
        assert!(!s.rpc_allowed(&k), "RPC still granted after a failed write");
        assert!(
            err.contains("may no longer call RPC") && err.contains(TRUST_FILE),
            "{err}"
        );
        // Granting is not a revocation: a failed write changes nothing.
        assert!(s.grant_rpc(&k, true).is_err());
        assert!(!s.rpc_allowed(&k));
        unblock_the_file(&dir);
        s.grant_rpc(&k, false).unwrap();
        drop(s);
        assert!(!load(&dir).unwrap().rpc_allowed(&k));
    }

    #[test]
    fn stopped_store_writes_nothing() {
        let dir = tempdir();
        let mut s = load(&dir).unwrap();
        s.release();
        assert!(matches!(
            s.trust(Key::from_bytes([1; 32]), None),
            Err(Error::Closed(_))
        ));
        assert!(!dir.join(TRUST_FILE).exists());
        // The directory is free for the next owner.
        let _other = load(&dir).unwrap();
    }

    impl TrustStore {
        /// The file as it would be with `k` still trusted (the state a failed write
        /// leaves on disk).
        fn list_with(&self, k: Key) -> Vec<TrustEntry> {
            let mut l = self.list();
            l.push(TrustEntry {
                key: k,
                label: String::new(),
                added_at: 1,
                rpc: false,
                addresses: Vec::new(),
                manual: Vec::new(),
            });
            l
        }
    }

    /// Issue 18 item 2: manual addresses persist (format 3), are checked, bounded and
    /// removable; an untrusted key gets none.
    #[test]
    fn manual_addresses_persist_and_are_bounded() {
        let dir = tempdir();
        let k = Key::from_bytes([7; 32]);
        let mut s = load(&dir).unwrap();
        assert!(matches!(
            s.add_manual(&k, "a.example:1"),
            Err(Error::UntrustedPeer(_))
        ));
        s.trust(k, None).unwrap();
        assert_eq!(
            s.add_manual(&k, "Peer.Example:7100").unwrap(),
            "peer.example:7100"
        );
        s.add_manual(&k, "peer.example:7100").unwrap();
        s.add_manual(&k, "10.0.0.2:7100").unwrap();
        let e = s.add_manual(&k, "bad_name:1").unwrap_err().to_string();
        assert!(e.contains("host:port"), "{e}");
        drop(s);
        let text = std::fs::read_to_string(dir.join(TRUST_FILE)).unwrap();
        assert!(
            text.starts_with("# PeerNet trust store, format 3"),
            "{text}"
        );
        let mut s = load(&dir).unwrap();
        assert_eq!(s.manual(&k), vec!["peer.example:7100", "10.0.0.2:7100"]);
        s.add_manual(&k, "c.example:1").unwrap();
        s.add_manual(&k, "d.example:1").unwrap();
        let e = s.add_manual(&k, "e.example:1").unwrap_err().to_string();
        assert!(e.contains("remove one first"), "{e}");
        assert!(s.remove_manual(&k, "PEER.example:7100").unwrap());
        assert!(!s.remove_manual(&k, "peer.example:7100").unwrap());
        assert_eq!(s.manual(&k).len(), 3);
    }

    #[test]
    fn trust_refuses_low_order_keys() {
        let dir = tempdir();
        let mut s = load(&dir).unwrap();
        for p in peernet_proto::key::LOW_ORDER_POINTS {
            let e = s.trust(Key::from_bytes(p), None).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
            assert!(e.to_string().contains("low-order"), "{e}");
        }
        assert!(s.list().is_empty());
    }
}
