//! Unit tests of the address table: ranking and the per-source caps (no sockets).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use peernet_proto::Key;

use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn known(addr: &str, confirmed: bool, age_s: u64) -> KnownAddress {
    KnownAddress {
        addr: sa(addr),
        source: AddressSource::Discovery,
        confirmed,
        last_seen: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 - age_s),
    }
}

/// Adds `new` the way `note_address` does.
fn add(addrs: &mut Vec<KnownAddress>, new: KnownAddress) {
    if make_room(addrs, &new) {
        addrs.push(new);
    }
}

fn has(addrs: &[KnownAddress], a: &str) -> bool {
    addrs.iter().any(|k| k.addr == sa(a))
}

#[test]
fn one_source_announcing_many_ports_keeps_only_its_own_two() {
    let mut v = vec![known("10.0.0.2:7002", false, 100)];
    // A forger at another IP names the key at 8 ports, newest last.
    for (i, port) in (9001..9009).enumerate() {
        add(
            &mut v,
            known(&format!("10.0.0.66:{port}"), false, 50 - i as u64),
        );
    }
    assert!(has(&v, "10.0.0.2:7002"), "the real hint was evicted: {v:?}");
    let forged: Vec<_> = v
        .iter()
        .filter(|k| k.addr.ip() == sa("10.0.0.66:1").ip())
        .collect();
    assert_eq!(forged.len(), MAX_UNCONFIRMED_PER_SOURCE);
    // Its newest two are the ones kept.
    assert!(has(&v, "10.0.0.66:9007") && has(&v, "10.0.0.66:9008"));
}

#[test]
fn a_confirmed_address_is_never_evicted_by_unconfirmed_ones() {
    let mut v = vec![known("10.0.0.2:7002", true, 1000)];
    // Many sources, each at its cap, fill the table and keep coming.
    for src in 0..40u8 {
        for port in 0..3u16 {
            add(
                &mut v,
                known(
                    &format!("10.1.0.{src}:{}", 9000 + port),
                    false,
                    500 - u64::from(src),
                ),
            );
        }
    }
    assert!(v.len() <= MAX_ADDRESSES);
    assert!(v
        .iter()
        .any(|k| k.confirmed && k.addr == sa("10.0.0.2:7002")));
    // A table full of confirmed addresses refuses an unconfirmed newcomer.
    let mut full: Vec<KnownAddress> = (0..MAX_ADDRESSES)
        .map(|i| known(&format!("10.0.0.{i}:7000"), true, 10 + i as u64))
        .collect();
    add(&mut full, known("10.9.9.9:7000", false, 0));
    assert!(!has(&full, "10.9.9.9:7000"));
    assert!(full.iter().all(|k| k.confirmed) && full.len() == MAX_ADDRESSES);
    // A confirmed newcomer replaces the oldest confirmed one.
    add(&mut full, known("10.9.9.9:7001", true, 0));
    assert!(
        has(&full, "10.9.9.9:7001") && !has(&full, &format!("10.0.0.{}:7000", MAX_ADDRESSES - 1))
    );
}

#[test]
fn in_a_full_table_the_busiest_source_gives_way() {
    // Four sources with two hints each: full.
    let mut v: Vec<KnownAddress> = Vec::new();
    for src in 0..4u8 {
        for port in 0..2u16 {
            add(
                &mut v,
                known(
                    &format!("10.2.0.{src}:{}", 7000 + port),
                    false,
                    100 - u64::from(src) * 2 - u64::from(port),
                ),
            );
        }
    }
    assert_eq!(v.len(), MAX_ADDRESSES);
    // A new source gets in; the oldest hint of a source with two goes, not a
    // single-hint source's.
    add(&mut v, known("10.3.0.1:7000", false, 0));
    assert!(has(&v, "10.3.0.1:7000"));
    assert_eq!(v.len(), MAX_ADDRESSES);
    assert!(!has(&v, "10.2.0.0:7000"), "{v:?}");
}

#[test]
fn candidates_rank_confirmed_first_then_newest() {
    let mut t = PeerTable::default();
    let k = Key([5; 32]);
    t.note_address(k, sa("10.0.0.9:1"), AddressSource::Discovery, false);
    t.note_address(k, sa("10.0.0.2:7002"), AddressSource::Manual, true);
    t.note_address(k, sa("10.0.0.8:1"), AddressSource::Discovery, false);
    let c = t.candidates(&k);
    assert_eq!(c[0], sa("10.0.0.2:7002"));
    assert_eq!(c.len(), 3);
    assert_eq!(t.confirmed(&k), vec![sa("10.0.0.2:7002")]);
    // Forged hints of many ports from one IP leave the confirmed one first.
    for port in 9000..9020 {
        t.note_address(
            k,
            SocketAddr::from(([10, 0, 0, 66], port)),
            AddressSource::Discovery,
            false,
        );
    }
    let c = t.candidates(&k);
    assert_eq!(c[0], sa("10.0.0.2:7002"));
    assert!(c.contains(&sa("10.0.0.9:1")) && c.contains(&sa("10.0.0.8:1")));
    assert_eq!(
        c.iter()
            .filter(|a| a.ip() == sa("10.0.0.66:1").ip())
            .count(),
        2
    );
}
