//! Issue 14 item 3: forged announcements must not keep a trusted peer unreachable.
//! A forger at 127.0.0.2 announces the trusted peer's key at 8 ports that accept TCP
//! and never answer; the real peer still gets reached within one bounded dial round.
//! Confirmed addresses are remembered in the trust file, so a restart without
//! discovery redials them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use peernet_core::{Node, UdpDiscoveryConfig};
use peernet_proto::announce::Announcement;
use peernet_proto::Key;
use tokio::net::{TcpListener, UdpSocket};

const FORGER_IP: [u8; 4] = [127, 0, 0, 2];
const DEAD_PORTS: usize = 8;
/// The dialer's handshake timeout here: a dial to a dead port ends only after it, so
/// a round that dials one address at a time needs this long per dead address.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

fn with_udp(mut c: peernet_core::NodeConfig, port: u16) -> peernet_core::NodeConfig {
    c.udp_discovery = Some(UdpDiscoveryConfig {
        port,
        interval: Duration::from_millis(200),
        broadcast: vec![SocketAddr::from(([127, 255, 255, 255], port))],
        ..UdpDiscoveryConfig::default()
    });
    c
}

/// Listeners at 127.0.0.2 that accept TCP and never answer; counts accepted sockets
/// per listener (holding them open until the test ends).
async fn dead_listeners() -> (Vec<u16>, Arc<Vec<AtomicUsize>>) {
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new((0..DEAD_PORTS).map(|_| AtomicUsize::new(0)).collect());
    let mut ports = Vec::new();
    for i in 0..DEAD_PORTS {
        let l = TcpListener::bind(SocketAddr::from((FORGER_IP, 0)))
            .await
            .unwrap();
        ports.push(l.local_addr().unwrap().port());
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                counts[i].fetch_add(1, Ordering::SeqCst);
                held.push(s);
            }
        });
    }
    (ports, counts)
}

/// One pass of forged announcements: `key` at every dead port, from 127.0.0.2.
async fn forge_pass(sock: &UdpSocket, key: Key, ports: &[u16], disc_port: u16) {
    for &p in ports {
        let a = Announcement { tcp_port: p, key }.encode();
        let _ = sock
            .send_to(&a, SocketAddr::from(([127, 255, 255, 255], disc_port)))
            .await;
    }
}

#[tokio::test]
async fn forged_announcements_at_dead_ports_do_not_keep_a_trusted_peer_unreachable() {
    let disc_port = common::udp_port(11, 1);
    // B announces itself (from 127.0.0.1); C listens to discovery but has no listener
    // (so B never dials C: every connection here is C's dial).
    let b = Node::start(with_udp(config("fb"), disc_port))
        .await
        .unwrap();
    let mut cc = with_udp(config("fc"), disc_port);
    cc.listen = None;
    cc.handshake_timeout = HANDSHAKE_TIMEOUT;
    let c = Node::start(cc).await.unwrap();
    echo(&b);
    b.trust(&c.key(), Some("c")).unwrap();

    let (ports, accepted) = dead_listeners().await;
    let forger = UdpSocket::bind(SocketAddr::from((FORGER_IP, 0)))
        .await
        .unwrap();
    forger.set_broadcast(true).unwrap();
    let is_forged = |a: &SocketAddr| a.ip() == std::net::IpAddr::from(FORGER_IP);

    // C hears both B and the forger (bounded: 50 passes of 8 datagrams at most).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut passes = 0;
    loop {
        forge_pass(&forger, b.key(), &ports, disc_port).await;
        passes += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let info = c.peers().into_iter().find(|p| p.key == b.key());
        let heard_forged = info
            .as_ref()
            .is_some_and(|p| p.addresses.iter().any(|k| is_forged(&k.addr)));
        let heard_real = info.as_ref().is_some_and(|p| {
            p.addresses
                .iter()
                .any(|k| k.addr.port() == b.port() && !is_forged(&k.addr))
        });
        if (heard_forged && heard_real) || passes >= 50 || Instant::now() > deadline {
            assert!(heard_forged, "C never heard the forged announcements");
            break;
        }
    }
    // The last word before the dial is the forger's: its addresses are the newest.
    forge_pass(&forger, b.key(), &ports, disc_port).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = c.peers().into_iter().find(|p| p.key == b.key()).unwrap();
    println!(
        "C's addresses of B before trusting it: {:?}",
        before
            .addresses
            .iter()
            .map(|k| (k.addr, k.confirmed))
            .collect::<Vec<_>>()
    );

    // Trusting B starts C's dial round, while the forger keeps at it (~16/s).
    let started = Instant::now();
    c.trust(&b.key(), Some("b")).unwrap();
    let keep_forging = {
        let key = b.key();
        let ports = ports.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                forge_pass(&forger, key, &ports, disc_port).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let r = c.wait_connected(&b.key(), Duration::from_secs(10)).await;
    let took = started.elapsed();
    let dials: Vec<usize> = accepted.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    println!(
        "forged: {DEAD_PORTS} dead ports announced from 127.0.0.2 ({passes} passes before the \
         dial); C reached B: {}; after {took:?}; dials accepted per dead port: {dials:?}",
        r.is_ok()
    );
    r.expect("the real peer was not reached within one round");
    // One bounded round: sooner than a single dead dial could time out, and no dead
    // port dialed twice (no second round).
    assert!(took < HANDSHAKE_TIMEOUT, "{took:?}");
    assert!(dials.iter().all(|&n| n <= 1), "{dials:?}");
    assert_eq!(c.call(&b.key(), "echo", b"hi", T).await.unwrap(), b"hi");
    // Only the address the handshake went through is confirmed (and remembered).
    let info = c.peers().into_iter().find(|p| p.key == b.key()).unwrap();
    assert_eq!(info.address, Some(addr(&b)));
    assert!(info
        .addresses
        .iter()
        .all(|k| k.confirmed == (k.addr == addr(&b))));
    let entry = c.trusted().into_iter().find(|e| e.key == b.key()).unwrap();
    assert_eq!(entry.addresses, vec![addr(&b)]);
    keep_forging.abort();
    c.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_restart_with_discovery_off_redials_the_remembered_address() {
    let b = node("rb").await;
    echo(&b);
    let mut cc = config("rc");
    cc.listen = None;
    let c = Node::start(cc.clone()).await.unwrap();
    b.trust(&c.key(), Some("c")).unwrap();
    c.trust(&b.key(), Some("b")).unwrap();
    c.connect(&b.key(), addr(&b), T).await.unwrap();
    // The confirmed address is in the trust file.
    let file = std::fs::read_to_string(cc.data_dir.join("trusted_peers")).unwrap();
    assert!(file.contains(&addr(&b).to_string()), "{file}");
    let c_key = c.key();
    c.shutdown().await;
    drop(c);
    eventually("B to see C go", || !b.is_connected(&c_key)).await;

    // Restarted, no discovery, no hint: it dials the remembered address by itself.
    assert!(cc.udp_discovery.is_none());
    let c = Node::start(cc).await.unwrap();
    let r = c.wait_connected(&b.key(), T).await;
    println!(
        "restart with discovery off: reconnected from the trust file: {}",
        r.is_ok()
    );
    r.expect("no reconnection from the remembered address");
    assert_eq!(c.call(&b.key(), "echo", b"back", T).await.unwrap(), b"back");
    c.shutdown().await;
    b.shutdown().await;
}
