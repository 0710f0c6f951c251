//! Unit tests of UDP discovery: the state machine with explicit time, and the service
//! over the in-memory transport (no sockets).

use crate::metrics::DiscoveryDrop;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use peernet_proto::announce::{Announcement, ANNOUNCE_LEN};
use peernet_proto::Key;
use tokio::sync::{mpsc, watch};

use super::service::{self, Env};
use super::transport::fake::FakeNet;
use super::udp::{Incoming, UdpState, BURST, MAX_PEERS, MAX_SOURCES, SOURCE_BURST};
use super::{Discovery, DiscoveryEvent};

const IV: Duration = Duration::from_secs(5);

fn key(n: u8) -> Key {
    Key([n; 32])
}

fn ann(k: Key, port: u16) -> [u8; ANNOUNCE_LEN] {
    Announcement {
        tcp_port: port,
        key: k,
    }
    .encode()
}

fn src(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn announces_at_start_then_every_interval_and_after_network_change() {
    let t0 = Instant::now();
    let mut s = UdpState::new(key(1), 7000, IV, t0);
    assert!(s.poll(t0).announce);
    assert!(!s.poll(t0 + Duration::from_secs(1)).announce);
    assert_eq!(s.next_deadline(), t0 + IV);
    assert!(s.poll(t0 + IV).announce);
    s.network_changed(t0 + IV + Duration::from_secs(1));
    assert!(s.poll(t0 + IV + Duration::from_secs(1)).announce);
    // The announcement is the byte-exact 39-byte layout of spec 8.
    let a = s.announcement().unwrap();
    assert_eq!(&a[..7], &[b'P', b'N', b'E', b'T', 1, 0x1b, 0x58]);
    assert_eq!(&a[7..], &[1u8; 32]);
    // Without a listener there is nothing to announce.
    let mut quiet = UdpState::new(key(1), 0, IV, t0);
    assert!(!quiet.poll(t0).announce);
    assert!(quiet.announcement().is_none());
}

#[test]
fn reports_a_peer_once_and_again_when_its_address_changes() {
    let t0 = Instant::now();
    let mut s = UdpState::new(key(1), 7000, IV, t0);
    let from = src("10.0.0.2:4040");
    let d = DiscoveryEvent::Discovered {
        key: key(2),
        addr: src("10.0.0.2:7002"),
    };
    assert_eq!(
        s.on_datagram(from, &ann(key(2), 7002), t0),
        Incoming::Event(d)
    );
    // Again at the same address: no new Discovered, only "alive".
    assert_eq!(
        s.on_datagram(from, &ann(key(2), 7002), t0),
        Incoming::Event(DiscoveryEvent::Alive { key: key(2) })
    );
    let moved = DiscoveryEvent::Discovered {
        key: key(2),
        addr: src("10.0.0.2:7003"),
    };
    assert_eq!(
        s.on_datagram(from, &ann(key(2), 7003), t0),
        Incoming::Event(moved)
    );
}

#[test]
fn drops_malformed_datagrams() {
    let t0 = Instant::now();
    let mut s = UdpState::new(key(1), 7000, IV, t0);
    let from = src("10.0.0.2:4040");
    let good = ann(key(2), 7002);
    let mut bad_magic = good;
    bad_magic[0] = b'X';
    let mut bad_version = good;
    bad_version[4] = 2;
    let mut long = good.to_vec();
    long.push(0);
    for d in [
        &good[..38],
        &long[..],
        &bad_magic[..],
        &bad_version[..],
        &[][..],
    ] {
        assert_eq!(
            s.on_datagram(from, d, t0),
            Incoming::Dropped(DiscoveryDrop::Malformed)
        );
    }
    // Port 0 cannot be dialed.
    assert_eq!(
        s.on_datagram(from, &ann(key(2), 0), t0),
        Incoming::Dropped(DiscoveryDrop::Malformed)
    );
    assert_eq!(s.heard(), 0);
}

#[test]
fn suppresses_its_own_echo_and_warns_about_its_key_elsewhere() {
    let t0 = Instant::now();
    let mut s = UdpState::new(key(1), 7000, IV, t0);
    s.set_local_ips(HashSet::from(["10.0.0.1".parse::<IpAddr>().unwrap()]));
    // Our echo, over loopback and over our LAN address.
    assert_eq!(
        s.on_datagram(src("127.0.0.1:4040"), &ann(key(1), 7000), t0),
        Incoming::Nothing
    );
    assert_eq!(
        s.on_datagram(src("10.0.0.1:4040"), &ann(key(1), 7000), t0),
        Incoming::Nothing
    );
    // Our key from another host: one warning, then quiet for a while.
    let other = src("10.0.0.9:4040");
    assert_eq!(
        s.on_datagram(other, &ann(key(1), 7000), t0),
        Incoming::OwnKeyElsewhere(src("10.0.0.9:7000"))
    );
    assert_eq!(
        s.on_datagram(other, &ann(key(1), 7000), t0),
        Incoming::Nothing
    );
    // Our key from our own host but another port: another process copied our identity.
    assert_eq!(
        s.on_datagram(src("127.0.0.1:4040"), &ann(key(1), 7001), t0),
        Incoming::OwnKeyElsewhere(src("127.0.0.1:7001"))
    );
    assert_eq!(s.heard(), 0);
}

#[test]
fn a_peer_silent_for_three_intervals_is_lost() {
    let t0 = Instant::now();
    let mut s = UdpState::new(key(1), 7000, IV, t0);
    let from = src("10.0.0.2:4040");
    assert!(matches!(
        s.on_datagram(from, &ann(key(2), 7002), t0),
        Incoming::Event(_)
    ));
    // Heard again at 2 intervals: lost only 3 intervals after that.
    let t1 = t0 + IV * 2;
    assert_eq!(
        s.on_datagram(from, &ann(key(2), 7002), t1),
        Incoming::Event(DiscoveryEvent::Alive { key: key(2) })
    );
    assert!(s
        .poll(t1 + IV * 3 - Duration::from_millis(1))
        .lost
        .is_empty());
    assert_eq!(s.next_deadline(), (t1 + IV * 3).min(s.next_deadline()));
    assert_eq!(s.poll(t1 + IV * 3).lost, vec![key(2)]);
    assert!(s.poll(t1 + IV * 4).lost.is_empty());
    // Heard again after being lost: discovered again.
    assert!(matches!(
        s.on_datagram(from, &ann(key(2), 7002), t1 + IV * 5),
        Incoming::Event(_)
    ));
}

fn numbered(i: usize, fill: u8) -> Key {
    let mut k = [fill; 32];
    k[..8].copy_from_slice(&(i as u64 + 10).to_le_bytes());
    Key(k)
}

fn source_n(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 4040))
}

#[test]
fn incoming_processing_is_rate_limited_and_the_table_bounded() {
    let t0 = Instant::now();
    let mut s = UdpState::new(key(1), 7000, IV, t0);
    // One source: its own bucket runs dry first.
    let mut events = 0;
    for i in 0..(SOURCE_BURST as usize + 50) {
        let a = ann(numbered(i, 0), 7002);
        if matches!(
            s.on_datagram(src("10.0.0.2:4040"), &a, t0),
            Incoming::Event(_)
        ) {
            events += 1;
        }
    }
    assert_eq!(
        events, SOURCE_BURST as usize,
        "one source beyond its bucket"
    );
    // Many sources: the shared bucket bounds the total.
    let mut s = UdpState::new(key(1), 7000, IV, t0);
    let mut events = 0;
    for i in 0..(BURST as usize + 100) {
        let a = ann(numbered(i, 0), 7002);
        if matches!(s.on_datagram(source_n(i), &a, t0), Incoming::Event(_)) {
            events += 1;
        }
    }
    assert_eq!(
        events, BURST as usize,
        "a burst beyond the bucket is dropped unread"
    );
    assert!(s.sources() <= MAX_SOURCES);
    // Later the buckets have refilled; the tables still never exceed their bounds.
    let mut t = t0;
    for i in 0..(MAX_PEERS * 2) {
        t += Duration::from_millis(10);
        s.on_datagram(source_n(i), &ann(numbered(i, 0xff), 7002), t);
    }
    assert!(s.heard() <= MAX_PEERS);
    assert!(s.sources() <= MAX_SOURCES);
}

#[test]
fn one_source_flooding_junk_does_not_silence_another() {
    let t0 = Instant::now();
    let mut s = UdpState::new(key(1), 7000, IV, t0);
    let flooder = src("10.0.0.66:4040");
    let mut junk = ann(key(9), 7009);
    junk[0] = b'X';
    // 10,000 junk datagrams (and valid ones of made-up keys) at one instant, as fast
    // as a socket delivers them.
    for i in 0..10_000 {
        if i % 2 == 0 {
            assert!(matches!(
                s.on_datagram(flooder, &junk, t0),
                Incoming::Dropped(_)
            ));
        } else {
            s.on_datagram(flooder, &ann(numbered(i, 0x33), 7009), t0);
        }
    }
    // Another source's valid announcement, at that same instant, is accepted.
    assert_eq!(
        s.on_datagram(src("10.0.0.2:4040"), &ann(key(2), 7002), t0),
        Incoming::Event(DiscoveryEvent::Discovered {
            key: key(2),
            addr: src("10.0.0.2:7002")
        })
    );
    // And so are many others (the flooder spent only its own bucket).
    for i in 0..50 {
        assert!(matches!(
            s.on_datagram(source_n(i), &ann(numbered(i, 0x44), 7002), t0),
            Incoming::Event(_)
        ));
    }
}

fn start(
    net: &FakeNet,
    ip: &str,
    k: Key,
    port: u16,
    iv: Duration,
    stop: watch::Receiver<bool>,
) -> (
    service::UdpDiscovery,
    mpsc::UnboundedReceiver<DiscoveryEvent>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sock = net.socket(SocketAddr::new(ip.parse().unwrap(), 4040));
    let own: IpAddr = ip.parse().unwrap();
    let env = Env {
        targets: Box::new(|| vec![src("10.0.0.255:4040")]),
        unicast: Box::new(Vec::new),
        local_ips: Box::new(move || HashSet::from([own])),
        sink: Box::new(move |e| {
            let _ = tx.send(e);
        }),
        counters: Default::default(),
    };
    (service::spawn(sock, k, port, iv, env, stop), rx)
}

/// The next Discovered or Lost event (skipping `Alive`: the peers' periodic
/// announcements at the same address).
async fn next(rx: &mut mpsc::UnboundedReceiver<DiscoveryEvent>) -> DiscoveryEvent {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("no discovery event in time")
            .expect("service ended");
        if !matches!(e, DiscoveryEvent::Alive { .. }) {
            return e;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn services_on_a_fake_network_discover_and_lose_each_other() {
    let net = FakeNet::default();
    let (stop_tx, stop) = watch::channel(false);
    let (_a, mut ra) = start(&net, "10.0.0.1", key(1), 7001, IV, stop.clone());
    let (_b, mut rb) = start(&net, "10.0.0.2", key(2), 7002, IV, stop.clone());
    assert_eq!(
        next(&mut ra).await,
        DiscoveryEvent::Discovered {
            key: key(2),
            addr: src("10.0.0.2:7002")
        }
    );
    assert_eq!(
        next(&mut rb).await,
        DiscoveryEvent::Discovered {
            key: key(1),
            addr: src("10.0.0.1:7001")
        }
    );
    // Every datagram on the wire is a 39-byte announcement to the configured target.
    {
        let sent = net.sent.lock().unwrap();
        assert!(sent.len() >= 2);
        assert!(sent
            .iter()
            .all(|(_, to, d)| d.len() == ANNOUNCE_LEN && *to == src("10.0.0.255:4040")));
    }
    // A third node that speaks once and goes silent is lost after 3 intervals.
    net.inject(
        src("10.0.0.3:4040"),
        src("10.0.0.255:4040"),
        &ann(key(3), 7003),
    );
    assert!(
        matches!(next(&mut ra).await, DiscoveryEvent::Discovered { key: k, .. } if k == key(3))
    );
    let t = tokio::time::Instant::now();
    assert_eq!(next(&mut ra).await, DiscoveryEvent::Lost { key: key(3) });
    assert!(t.elapsed() >= IV * 3 - Duration::from_millis(1));
    // a and b keep hearing each other: no Lost for them meanwhile, only Alive.
    while let Ok(e) = ra.try_recv() {
        assert_eq!(e, DiscoveryEvent::Alive { key: key(2) });
    }
    stop_tx.send_replace(true);
}

#[tokio::test(start_paused = true)]
async fn network_change_triggers_an_announcement_at_once() {
    let net = FakeNet::default();
    let (stop_tx, stop) = watch::channel(false);
    let (a, _ra) = start(
        &net,
        "10.0.0.1",
        key(1),
        7001,
        Duration::from_secs(30),
        stop.clone(),
    );
    let count = || net.sent.lock().unwrap().len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count() < 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    a.network_changed();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no re-announcement");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop_tx.send_replace(true);
}

/// Issue 18 item 3: the unicast round comes with an announcement at most once per
/// interval, however often the network changes.
#[test]
fn unicast_reannounce_is_at_most_once_per_interval() {
    let t0 = Instant::now();
    let mut s = UdpState::new(key(1), 7000, IV, t0);
    let first = s.poll(t0);
    assert!(first.announce && first.unicast);
    let mut unicast_rounds = 1;
    let mut t = t0;
    // A network change every 200 ms for 3 intervals: many announcements, few unicasts.
    for _ in 0..(3 * 5 * 5) {
        t += Duration::from_millis(200);
        s.network_changed(t);
        let d = s.poll(t);
        if d.unicast {
            assert!(d.announce);
            unicast_rounds += 1;
        }
    }
    assert_eq!(unicast_rounds, 4, "one at start, then one per interval");
}

/// Issue 18 item 3: announcements go to the unicast targets (bounded), and nothing is
/// ever sent in answer to a datagram: sources that announce to us get nothing back.
#[tokio::test(start_paused = true)]
async fn unicast_targets_are_bounded_and_no_datagram_is_answered() {
    let net = FakeNet::default();
    let (stop_tx, stop) = watch::channel(false);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sock = net.socket(src("10.0.0.1:4040"));
    let many: Vec<SocketAddr> = (0..40u8)
        .map(|i| SocketAddr::from(([10, 9, 0, i], 4040)))
        .collect();
    let env = Env {
        targets: Box::new(|| vec![src("10.0.0.255:4040")]),
        unicast: Box::new(move || many.clone()),
        local_ips: Box::new(|| HashSet::from(["10.0.0.1".parse().unwrap()])),
        sink: Box::new(move |e| {
            let _ = tx.send(e);
        }),
        counters: Default::default(),
    };
    let _svc = service::spawn(sock, key(1), 7001, IV, env, stop);
    // 50 strangers announce (from addresses that are not unicast targets).
    for i in 0..50u8 {
        net.inject(
            SocketAddr::from(([10, 0, 1, i], 4040)),
            src("10.0.0.255:4040"),
            &ann(numbered(usize::from(i), 0x55), 7002),
        );
    }
    for _ in 0..50 {
        next(&mut rx).await;
    }
    tokio::time::sleep(IV * 2 + Duration::from_millis(10)).await;
    let sent = net.sent.lock().unwrap();
    let ours: Vec<&SocketAddr> = sent
        .iter()
        .filter(|(from, _, _)| *from == src("10.0.0.1:4040"))
        .map(|(_, to, _)| to)
        .collect();
    let unicast = ours
        .iter()
        .filter(|to| to.ip().to_string().starts_with("10.9."))
        .count();
    let rounds = ours
        .iter()
        .filter(|to| **to == &src("10.0.0.255:4040"))
        .count();
    assert_eq!(rounds, 3, "start and two intervals");
    assert_eq!(unicast, 3 * service::MAX_UNICAST, "{ours:?}");
    assert!(
        ours.iter()
            .all(|to| !to.ip().to_string().starts_with("10.0.1.")),
        "a datagram was answered: {ours:?}"
    );
    drop(sent);
    stop_tx.send_replace(true);
}
