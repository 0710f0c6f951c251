//! Trust file: round trip, hand edits, and every corrupt case naming its line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peernet_proto::trustfile::{parse, render, validate_label, TrustEntry, MAX_LABEL_LEN};
use peernet_proto::{Key, ProtoError};

const A: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const B: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const HEADER: &str = "# PeerNet trust store, format 1\n";

fn entries() -> Vec<TrustEntry> {
    vec![
        TrustEntry {
            key: A.parse().unwrap(),
            label: "Bob's laptop".into(),
            added_at: 1_764_090_000,
            rpc: true,
        },
        TrustEntry {
            key: B.parse().unwrap(),
            label: String::new(),
            added_at: 0,
            rpc: false,
        },
        TrustEntry {
            key: Key([0; 32]),
            label: "  spaced  ünïcode ✓ # not a comment".into(),
            added_at: u64::MAX,
            rpc: false,
        },
        TrustEntry {
            key: Key([0xff; 32]),
            label: "x".repeat(MAX_LABEL_LEN),
            added_at: 1,
            rpc: true,
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
    assert!(text.contains(&format!("{A} 1764090000 rpc Bob's laptop\n")));
    assert!(text.contains(&format!("{B} 0 -\n")));
}

#[test]
fn hand_edited_file_parses() {
    let text = format!(
        "{}\r\n\n   # a comment\n\t\n{}   12 \t rpc   Alice\r\n  {A}\t7\t-\t\n",
        HEADER.trim_end(),
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
        ("# PeerNet trust store, format 2\n".into(), 1, "format"),
        (
            format!("{HEADER}{good}\n{A} 2 - dup\n"),
            3,
            "already listed on line 2",
        ),
        (format!("{HEADER}\n{}x 1 -\n", &A[..63]), 3, "hex key"),
        (format!("{HEADER}{}\n", &A[..62]), 2, "hex key"),
        (format!("{HEADER}{A}\n"), 2, "added-at"),
        (format!("{HEADER}{A} -1 rpc\n"), 2, "added-at"),
        (format!("{HEADER}{A} +1 rpc\n"), 2, "added-at"),
        (
            format!("{HEADER}{A} 99999999999999999999 rpc\n"),
            2,
            "too large",
        ),
        (format!("{HEADER}{A} 1\n"), 2, "rights"),
        (format!("{HEADER}{A} 1 admin\n"), 2, "rights"),
        (format!("{HEADER}{A} 1 rpc tab\there\n"), 2, "control"),
        (
            format!("{HEADER}{A} 1 rpc {}\n", "y".repeat(MAX_LABEL_LEN + 1)),
            2,
            "256",
        ),
        (
            format!("{HEADER}# c\n\n{good}\n{A}\u{a0}1 rpc\n"),
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
    }];
    let back = parse(&render(&evil)).unwrap();
    assert_eq!(back.len(), 1);
    assert!(!back[0].rpc);
    assert!(back[0].label.len() <= MAX_LABEL_LEN);
    validate_label(&back[0].label).unwrap();
}
