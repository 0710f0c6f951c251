//! Trust file: round trip, hand edits, and every corrupt case naming its line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peernet_proto::trustfile::{parse, render, validate_label, TrustEntry, MAX_LABEL_LEN};
use peernet_proto::{Key, ProtoError};

const A: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const B: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const HEADER: &str = "# PeerNet trust store, format 2\n";
const HEADER_V1: &str = "# PeerNet trust store, format 1\n";

fn entries() -> Vec<TrustEntry> {
    vec![
        TrustEntry {
            key: A.parse().unwrap(),
            label: "Bob's laptop".into(),
            added_at: 1_764_090_000,
            rpc: true,
            addresses: vec![
                "192.168.1.20:7000".parse().unwrap(),
                "[fe80::1]:7000".parse().unwrap(),
            ],
            manual: Vec::new(),
        },
        TrustEntry {
            key: B.parse().unwrap(),
            label: String::new(),
            added_at: 0,
            rpc: false,
            addresses: Vec::new(),
            manual: Vec::new(),
        },
        TrustEntry {
            key: Key([0x11; 32]),
            label: "  spaced  ünïcode ✓ # not a comment".into(),
            added_at: u64::MAX,
            rpc: false,
            addresses: Vec::new(),
            manual: Vec::new(),
        },
        TrustEntry {
            key: Key([0xff; 32]),
            label: "x".repeat(MAX_LABEL_LEN),
            added_at: 1,
            rpc: true,
            addresses: vec!["10.0.0.1:1".parse().unwrap()],
            manual: Vec::new(),
        },
    ]
}

#[test]
fn round_trip() {
    let e = entries();
    let text = render(&e);
    assert!(text.starts_with(HEADER));
    assert_eq!(parse(&text).unwrap(), e);
    assert_eq!(parse(&render(&[])).unwrap(), vec![]);
    assert!(text.contains(&format!(
        "{A} 1764090000 rpc 192.168.1.20:7000,[fe80::1]:7000 Bob's laptop\n"
    )));
    assert!(text.contains(&format!("{B} 0 - -\n")));
}

/// The golden vector of format 2 (docs/protocol.md, "Trust file"): byte-exact.
#[test]
fn format_2_golden_vector() {
    let golden = format!(
        "# PeerNet trust store, format 2\n\
         # One peer per line: <key hex> <added-at unix seconds> <rights> <addresses> <label>\n\
         # rights: \"-\" (none) or \"rpc\". addresses: \"-\" (none) or up to 4 confirmed ip:port,\n\
         # comma-separated, newest first. Label: rest of the line (may be empty).\n\
         {A} 1764090000 rpc 192.168.1.20:7000,[fe80::1]:7000 Bob's laptop\n\
         {B} 0 - -\n"
    );
    let e = entries();
    assert_eq!(render(&e[..2]), golden);
    assert_eq!(parse(&golden).unwrap(), e[..2].to_vec());
}

/// A format-1 file (no addresses field) still loads, with no addresses; it is
/// written back as format 2 with the same entries.
#[test]
fn format_1_files_still_load() {
    let text = format!("{HEADER_V1}{A} 1764090000 rpc Bob's laptop\n{B} 0 -\n");
    let e = parse(&text).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(
        (e[0].added_at, e[0].rpc, e[0].label.as_str()),
        (1_764_090_000, true, "Bob's laptop")
    );
    assert!(e[0].addresses.is_empty() && e[1].addresses.is_empty());
    // In format 1 an address-looking word is part of the label.
    let e = parse(&format!("{HEADER_V1}{A} 1 - 10.0.0.1:7000 x\n")).unwrap();
    assert_eq!(e[0].label, "10.0.0.1:7000 x");
    let again = render(&e);
    assert!(again.starts_with(HEADER));
    assert_eq!(parse(&again).unwrap(), e);
}

/// Format 3 (issue 18): manual addresses round-trip; a file with none is still written
/// as format 2 (readable by releases that know only 2), and a format-2 file loads with
/// no manual addresses.
#[test]
fn format_3_keeps_manual_addresses_and_format_2_stays_readable() {
    let mut e = entries();
    e[1].manual = vec!["peer.example.net:7100".into(), "[2001:db8::1]:7100".into()];
    let text = render(&e);
    assert!(
        text.starts_with("# PeerNet trust store, format 3\n"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "{B} 0 - - peer.example.net:7100,[2001:db8::1]:7100\n"
    )));
    assert!(text.contains(&format!(
        "{A} 1764090000 rpc 192.168.1.20:7000,[fe80::1]:7000 - Bob's laptop\n"
    )));
    assert_eq!(parse(&text).unwrap(), e);
    // Without manual addresses: format 2, and it parses to the same entries.
    let plain = entries();
    assert!(render(&plain).starts_with(HEADER));
    let v2 = format!("{HEADER}{A} 1 rpc 10.0.0.1:7 x.example:1 label\n");
    let back = parse(&v2).unwrap();
    assert!(back[0].manual.is_empty());
    assert_eq!(back[0].label, "x.example:1 label");
    // Hand-written names are kept in canonical form; bad ones name their line.
    let v3 = format!("# PeerNet trust store, format 3\n{A} 1 - - Peer.Example:9 lbl\n");
    assert_eq!(
        parse(&v3).unwrap()[0].manual,
        vec!["peer.example:9".to_string()]
    );
    for (field, needle) in [
        ("", "missing manual"),
        ("bad_name:1", "host:port"),
        ("a.example:0", "port"),
        ("a.example:1,a.example:1", "twice"),
        ("a:1,b:1,c:1,d:1,e:1", "more than 4"),
    ] {
        let (line, reason) = line_of(&format!(
            "# PeerNet trust store, format 3\n\n{A} 1 rpc - {field}\n"
        ));
        assert_eq!(line, 3, "{field:?}: {reason}");
        assert!(
            reason.contains(needle),
            "{field:?}: {reason:?} lacks {needle:?}"
        );
    }
}

/// Issue 18: a remembered IPv6 link-local address keeps its scope id (else it cannot be
/// dialed after a restart); other addresses never carry one.
#[test]
fn link_local_addresses_keep_their_scope_id() {
    use std::net::{SocketAddr, SocketAddrV6};
    let ll = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 7000, 5, 3));
    let global = SocketAddr::V6(SocketAddrV6::new(
        "2001:db8::1".parse().unwrap(),
        7000,
        5,
        3,
    ));
    let mut e = entries();
    e[1].addresses = vec![ll, global];
    let text = render(&e);
    assert!(
        text.contains(&format!("{B} 0 - [fe80::1%3]:7000,[2001:db8::1]:7000\n")),
        "{text}"
    );
    let back = parse(&text).unwrap();
    let SocketAddr::V6(a) = back[1].addresses[0] else {
        panic!()
    };
    assert_eq!((a.scope_id(), a.flowinfo()), (3, 0));
    let SocketAddr::V6(g) = back[1].addresses[1] else {
        panic!()
    };
    assert_eq!(g.scope_id(), 0);
    // A hand-written scope on a global address is dropped, not kept.
    let t = format!("{HEADER}{A} 1 - [2001:db8::1%4]:1 x\n");
    let SocketAddr::V6(g) = parse(&t).unwrap()[0].addresses[0] else {
        panic!()
    };
    assert_eq!(g.scope_id(), 0);
}

#[test]
fn bad_addresses_name_their_line() {
    for (field, needle) in [
        ("", "missing addresses"),
        ("nope", "not an ip:port"),
        ("10.0.0.1", "not an ip:port"),
        ("10.0.0.1:0", "cannot be dialed"),
        ("0.0.0.0:7000", "cannot be dialed"),
        ("224.0.0.1:7000", "cannot be dialed"),
        ("10.0.0.1:7000,10.0.0.1:7000", "twice"),
        (
            "1.1.1.1:1,1.1.1.2:1,1.1.1.3:1,1.1.1.4:1,1.1.1.5:1",
            "more than 4",
        ),
        ("10.0.0.1:7000,", "not an ip:port"),
    ] {
        let (line, reason) = line_of(&format!("{HEADER}{A} 1 rpc {field}\n"));
        assert_eq!(line, 2, "{field:?}: {reason}");
        assert!(
            reason.contains(needle),
            "{field:?}: {reason:?} lacks {needle:?}"
        );
    }
    // Render drops what could not be read back.
    let odd = vec![TrustEntry {
        key: A.parse().unwrap(),
        label: String::new(),
        added_at: 1,
        rpc: false,
        addresses: vec![
            "0.0.0.0:1".parse().unwrap(),
            "10.0.0.1:5".parse().unwrap(),
            "10.0.0.1:5".parse().unwrap(),
            "10.0.0.1:0".parse().unwrap(),
        ],
        manual: Vec::new(),
    }];
    let back = parse(&render(&odd)).unwrap();
    assert_eq!(back[0].addresses, vec!["10.0.0.1:5".parse().unwrap()]);
}

#[test]
fn hand_edited_file_parses() {
    let text = format!(
        "{}\r\n\n   # a comment\n\t\n{}   12 \t rpc   Alice\r\n  {A}\t7\t-\t\n",
        HEADER_V1.trim_end(),
        B.to_uppercase()
    );
    let e = parse(&text).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].key.to_hex(), B);
    assert_eq!(
        (e[0].added_at, e[0].rpc, e[0].label.as_str()),
        (12, true, "  Alice")
    );
    assert_eq!(
        (e[1].added_at, e[1].rpc, e[1].label.as_str()),
        (7, false, "")
    );
}

fn line_of(text: &str) -> (usize, String) {
    match parse(text) {
        Err(ProtoError::TrustFile { line, reason }) => (line, reason),
        other => panic!("expected an error for {text:?}, got {other:?}"),
    }
}

#[test]
fn corrupt_cases_name_their_line() {
    let good = format!("{A} 1 rpc ok");
    let cases: Vec<(String, usize, &str)> = vec![
        (String::new(), 1, "header"),
        ("\n".into(), 1, "header"),
        (format!("{A} 1 rpc no header\n"), 1, "header"),
        ("# PeerNet trust store, format 4\n".into(), 1, "format"),
        ("# PeerNet trust store, format 0\n".into(), 1, "format"),
        ("# PeerNet trust store, format 02\n".into(), 1, "format"),
        (
            format!("{HEADER_V1}{good}\n{A} 2 - dup\n"),
            3,
            "already listed on line 2",
        ),
        (format!("{HEADER_V1}\n{}x 1 -\n", &A[..63]), 3, "hex key"),
        (format!("{HEADER_V1}{}\n", &A[..62]), 2, "hex key"),
        (format!("{HEADER_V1}{A}\n"), 2, "added-at"),
        (format!("{HEADER_V1}{A} -1 rpc\n"), 2, "added-at"),
        (format!("{HEADER_V1}{A} +1 rpc\n"), 2, "added-at"),
        (
            format!("{HEADER_V1}{A} 99999999999999999999 rpc\n"),
            2,
            "too large",
        ),
        (format!("{HEADER_V1}{A} 1\n"), 2, "rights"),
        (format!("{HEADER_V1}{A} 1 admin\n"), 2, "rights"),
        (format!("{HEADER_V1}{A} 1 rpc tab\there\n"), 2, "control"),
        (
            format!("{HEADER_V1}{A} 1 rpc {}\n", "y".repeat(MAX_LABEL_LEN + 1)),
            2,
            "256",
        ),
        (
            format!("{HEADER_V1}# c\n\n{good}\n{A}\u{a0}1 rpc\n"),
            5,
            "hex key",
        ),
    ];
    for (text, line, needle) in cases {
        let (got, reason) = line_of(&text);
        assert_eq!(got, line, "{text:?}: {reason}");
        assert!(
            reason.contains(needle),
            "{text:?}: {reason:?} lacks {needle:?}"
        );
    }
}

#[test]
fn labels() {
    validate_label("").unwrap();
    validate_label(&"é".repeat(128)).unwrap();
    for bad in ["a\nb", "\u{7f}", "\r", &"a".repeat(257)] {
        assert!(
            matches!(validate_label(bad), Err(ProtoError::BadLabel(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn render_never_breaks_line_structure() {
    let evil = vec![TrustEntry {
        key: A.parse().unwrap(),
        label: format!("x\n{B} 1 rpc injected{}", "é".repeat(200)),
        added_at: 5,
        rpc: false,
        addresses: Vec::new(),
        manual: Vec::new(),
    }];
    let back = parse(&render(&evil)).unwrap();
    assert_eq!(back.len(), 1);
    assert!(!back[0].rpc);
    assert!(back[0].label.len() <= MAX_LABEL_LEN);
    validate_label(&back[0].label).unwrap();
}
