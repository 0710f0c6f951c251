//! The data directory as a trust boundary (issue 14, items 4, 8, 10): one process at a
//! time (an flock held for the node's life; the second gets `Busy` with the holder's
//! pid), exactly one identity from racing starts, untrust that fails closed when the
//! trust file cannot be written, and directories or key files others could change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;
use peernet_core::{
    Error, EventKind, Identity, Node, NodeConfig, IDENTITY_FILE, LOCK_FILE, TRUST_FILE,
};

const CHILD_ENV: &str = "PEERNET_LOCK_CHILD";

/// Child half of the test below: holds a node on the directory `PEERNET_LOCK_CHILD`
/// until its stdin closes.
fn lock_child(dir: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut cfg = NodeConfig::new(dir);
    cfg.listen = None;
    let n = rt.block_on(Node::start(cfg)).unwrap();
    println!("child-ready {}", std::process::id());
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    rt.block_on(n.shutdown());
}

/// Issue 14 item 4: a second process on the data directory of a running node used to
/// start (and its `trust remove` was undone by the running node's next write). Now it
/// gets `Busy` naming the holder's pid, in another process and in this one, and the
/// directory is free once the holder exits.
#[test]
fn second_node_on_a_dir_is_busy_with_the_holders_pid() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        lock_child(&dir.to_string_lossy());
        return;
    }
    let dir = tempdir("busy");
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "second_node_on_a_dir_is_busy_with_the_holders_pid",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let ready = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the child never reported its node started");
        if l.contains("child-ready") {
            break l;
        }
    };
    println!("{ready}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut cfg = NodeConfig::new(&dir);
    cfg.listen = None;
    let second = rt.block_on(Node::start(cfg.clone()));
    println!("second start while pid {} holds it: {second:?}", child.id());
    match second {
        Err(Error::Busy { ref path, pid }) => {
            assert_eq!(path, &dir);
            assert_eq!(pid, Some(child.id()));
        }
        ref other => panic!("expected Busy, got {other:?}"),
    }
    let msg = second.unwrap_err().to_string();
    assert!(
        msg.contains(&child.id().to_string()) && msg.contains(&*dir.to_string_lossy()),
        "{msg}"
    );
    // Once the holder is gone, the directory is free again.
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let n = rt.block_on(Node::start(cfg.clone())).unwrap();
    // And a second node in this same process is refused too.
    match rt.block_on(Node::start(cfg)) {
        Err(Error::Busy { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
        other => panic!("expected Busy, got {other:?}"),
    }
    rt.block_on(n.shutdown());
    assert_eq!(
        std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap(),
        "",
        "the pid outlived the lock"
    );
}

/// A lock that names no holder is waited for, briefly. A node restarted right after
/// `shutdown` got `Busy { pid: None }` (1 of 10 loaded stress runs): `shutdown` had
/// closed its lock descriptor, but a child process that another thread was spawning
/// still held the same open file between its fork and its exec. Here the holder's pid
/// is wiped by hand while it holds the lock (the state such a window shows), and the
/// holder releases only after the second start began.
#[test]
fn a_lock_that_names_no_holder_is_waited_for() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempdir("unnamed");
    let mut cfg = NodeConfig::new(&dir);
    cfg.listen = None;
    let holder = Arc::new(rt.block_on(Node::start(cfg.clone())).unwrap());
    std::fs::write(dir.join(LOCK_FILE), b"").unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let h = Arc::clone(&holder);
    let handle = rt.handle().clone();
    let releaser = std::thread::spawn(move || {
        // Released once the second start is under way (it signals just before).
        rx.recv_timeout(Duration::from_secs(30)).unwrap();
        // Well inside the second start's wait (which, before, failed at once).
        std::thread::sleep(Duration::from_millis(300));
        handle.block_on(h.shutdown());
    });
    tx.send(()).unwrap();
    let second = rt.block_on(Node::start(cfg));
    releaser.join().unwrap();
    println!("second start while the lock named no holder: {second:?}");
    assert!(second.is_ok(), "{second:?}");
}

/// Issue 14 item 4: 20 starts racing on an empty directory made 20 nodes and several
/// identities, all but one lost. Now exactly one starts, the others get `Busy`, and
/// the one identity on disk is the winner's.
#[test]
fn racing_starts_on_an_empty_dir_make_exactly_one_identity() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempdir("race");
    let barrier = Arc::new(Barrier::new(20));
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let (handle, barrier) = (rt.handle().clone(), barrier.clone());
            let mut cfg = NodeConfig::new(&dir);
            cfg.listen = None;
            std::thread::spawn(move || {
                barrier.wait();
                handle.block_on(Node::start(cfg))
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let started: Vec<&Node> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Busy { .. })))
        .count();
    let keys: std::collections::BTreeSet<_> = started.iter().map(|n| n.key()).collect();
    println!(
        "20 racing starts: {} started, {busy} Busy, {} distinct identities",
        started.len(),
        keys.len()
    );
    assert_eq!(started.len(), 1, "{results:?}");
    assert_eq!(busy, 19, "{results:?}");
    let winner = started[0].key();
    drop(results);
    assert_eq!(Identity::load_or_create(&dir).unwrap().public(), winner);
}

/// Issue 14 item 8: `untrust` failed open: when the trust file could not be written
/// the key stayed trusted and connected. Now the revocation takes effect in memory and
/// on the live connection first, and the write error is reported after. (The write is
/// made to fail by a non-empty directory where the file belongs: rename(2) refuses
/// it, even for root.)
#[tokio::test]
async fn untrust_with_an_unwritable_trust_file_still_revokes() {
    let (a, b) = pair().await;
    let file = b.config().data_dir.join(TRUST_FILE);
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    std::fs::write(file.join("blocker"), b"").unwrap();
    let mut events = a.events();
    let r = b.untrust(&a.key());
    println!("untrust with the trust file unwritable: {r:?}");
    assert!(!b.is_trusted(&a.key()), "the revoked key is still trusted");
    wait_event(&mut events, EventKind::Disconnected, Some(b.key())).await;
    eventually("the revoked peer's connection to close", || {
        !b.is_connected(&a.key()) && !b.has_dialer(&a.key())
    })
    .await;
    let err = r.expect_err("untrust reported success without saving");
    let msg = err.to_string();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(
        msg.contains("untrusted now") && msg.contains(TRUST_FILE),
        "{msg}"
    );
    // Once writing works, untrusting again brings the file in line.
    std::fs::remove_dir_all(&file).unwrap();
    assert!(!b.untrust(&a.key()).unwrap());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&a.key().to_hex()), "{text}");
}

/// Issue 14 item 10: a group/world-writable data directory and a key file others can
/// read were accepted. Now the start fails, naming the path, the mode and the chmod.
#[tokio::test]
async fn loose_modes_are_refused_with_the_fix() {
    let mut cfg = config("modes");
    cfg.listen = None;
    let dir = cfg.data_dir.clone();
    Node::start(cfg.clone()).await.unwrap().shutdown().await;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = Node::start(cfg.clone()).await.unwrap_err().to_string();
    println!("0777 data dir: {err}");
    assert!(
        err.contains("0777") && err.contains(&format!("chmod 700 {}", dir.display())),
        "{err}"
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = dir.join(IDENTITY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Node::start(cfg.clone()).await.unwrap_err().to_string();
    println!("0644 key file: {err}");
    assert!(
        err.contains("0644") && err.contains(&format!("chmod 600 {}", key.display())),
        "{err}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    Node::start(cfg).await.unwrap().shutdown().await;
}

/// Issue 14 item 10: the temp file had a predictable name (`.identity.key.tmp<pid>`)
/// and was opened through symlinks: a link planted there by another user received the
/// new private key, with the link target's mode (0666). Now the bait stays untouched.
#[tokio::test]
async fn symlink_at_the_old_temp_name_receives_no_key() {
    let mut cfg = config("tmplink");
    cfg.listen = None;
    let dir = cfg.data_dir.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let bait = tempdir("bait");
    std::fs::create_dir_all(&bait).unwrap();
    let target = bait.join("stolen");
    std::fs::write(&target, b"").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666)).unwrap();
    let pid = std::process::id();
    for name in [IDENTITY_FILE, TRUST_FILE] {
        std::os::unix::fs::symlink(&target, dir.join(format!(".{name}.tmp{pid}"))).unwrap();
    }
    let n = Node::start(cfg).await.unwrap();
    n.trust(&peernet_core::Key::from_bytes([9; 32]), None)
        .unwrap();
    n.shutdown().await;
    let leaked = std::fs::metadata(&target).unwrap().len();
    println!("bytes written through the planted temp-name symlink: {leaked}");
    assert_eq!(
        leaked, 0,
        "the planted symlink received a file (the private key)"
    );
    let key = std::fs::symlink_metadata(dir.join(IDENTITY_FILE)).unwrap();
    assert!(key.file_type().is_file());
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}

/// Issue 14 item 10: a symlink at the key path was followed: a node started on a
/// directory where another user planted `identity.key -> their file` used their key.
/// Now the start is refused, naming the link.
#[tokio::test]
async fn symlink_at_the_key_path_is_refused() {
    let mut planted = config("planted");
    planted.listen = None;
    let planted_dir = planted.data_dir.clone();
    let their_key = Node::start(planted).await.unwrap();
    let their = their_key.key();
    their_key.shutdown().await;
    drop(their_key);
    let mut cfg = config("keylink");
    cfg.listen = None;
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    let link = cfg.data_dir.join(IDENTITY_FILE);
    std::os::unix::fs::symlink(planted_dir.join(IDENTITY_FILE), &link).unwrap();
    match Node::start(cfg).await {
        Ok(n) => panic!(
            "followed the symlink; planted key used: {}",
            n.key() == their
        ),
        Err(e) => {
            println!("symlink at the key path: {e}");
            assert!(e.to_string().contains("symbolic link"), "{e}");
            assert!(e.to_string().contains(&*link.to_string_lossy()), "{e}");
        }
    }
}
