//! Manual addresses on trust entries (issue 18 item 2), on loopback with discovery off:
//! a host name attached with `add_address` is resolved at dial time and dialed, kept in
//! the trust file (format 3), and dialed again after a restart on its own (the
//! remembered confirmed address removed from the file by hand, so only the manual one
//! can do it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use common::*;
use peernet_core::{Error, Key, Node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_host_name_is_resolved_dialed_and_kept_across_a_restart() {
    let b = node("mb").await;
    echo(&b);
    let mut ac = config("ma");
    ac.listen = None;
    let a = Node::start(ac.clone()).await.unwrap();
    b.trust(&a.key(), None).unwrap();
    let port = addr(&b).port();
    let manual = format!("localhost:{port}");

    // Refusals name the fix: the key must be trusted, the address must be host:port.
    match a.add_address(&b.key(), &manual) {
        Err(Error::UntrustedPeer(m)) => assert!(m.contains("trust it"), "{m}"),
        other => panic!("expected UntrustedPeer, got {other:?}"),
    }
    a.trust(&b.key(), None).unwrap();
    assert!(!a.is_connected(&b.key()));
    match a.add_address(&b.key(), "no port") {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("host:port"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }

    // Attaching it dials it (no connect, no discovery).
    assert_eq!(
        a.add_address(&b.key(), &format!("LocalHost:{port}"))
            .unwrap(),
        manual
    );
    a.wait_connected(&b.key(), T)
        .await
        .expect("not connected through the manual host name");
    assert_eq!(a.call(&b.key(), "echo", b"hi", T).await.unwrap(), b"hi");
    let entry = a.trusted().into_iter().find(|e| e.key == b.key()).unwrap();
    assert_eq!(entry.manual, vec![manual.clone()]);
    let b_key: Key = b.key();
    a.shutdown().await;
    drop(a);
    eventually("B to see A go", || !b.is_connected(&entry.key)).await;

    // On disk: format 3 with the manual address. Remove the confirmed address by hand,
    // so after the restart only the manual one can reach B.
    let path = ac.data_dir.join("trusted_peers");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# PeerNet trust store, format 3"),
        "{text}"
    );
    let confirmed = format!("127.0.0.1:{port}");
    assert!(text.contains(&format!(" {confirmed} {manual}")), "{text}");
    std::fs::write(&path, text.replace(&format!(" {confirmed} "), " - ")).unwrap();

    let a = Node::start(ac).await.unwrap();
    let entry = a.trusted().into_iter().find(|e| e.key == b_key).unwrap();
    assert!(entry.addresses.is_empty(), "{entry:?}");
    a.wait_connected(&b_key, T)
        .await
        .expect("no reconnection from the manual address after a restart");
    assert_eq!(a.call(&b_key, "echo", b"again", T).await.unwrap(), b"again");
    println!("manual host name {manual}: dialed, kept, dialed again after a restart");

    // Detached, it is gone from the entry (the confirmed address learnt stays).
    assert!(a.remove_address(&b_key, &manual).unwrap());
    assert!(!a.remove_address(&b_key, &manual).unwrap());
    let entry = a.trusted().into_iter().find(|e| e.key == b_key).unwrap();
    assert!(entry.manual.is_empty());
    a.shutdown().await;
    b.shutdown().await;
}
