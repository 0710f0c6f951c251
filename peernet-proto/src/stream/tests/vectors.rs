//! The golden vectors of docs/protocol.md ("Streams"): encoded byte for byte, decoded
//! back, and present verbatim in the document; the document's rejected vectors are
//! read from it and each must fail to decode.

use super::*;

const PROTOCOL_MD: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md"));

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The document's "Streams" section, up to the next top-level heading.
fn section() -> &'static str {
    let start = PROTOCOL_MD
        .find("\n## Streams\n")
        .expect("a Streams section");
    let rest = &PROTOCOL_MD[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    &rest[..end]
}

#[test]
fn stream_vectors_match_the_document() {
    let vectors = [
        (
            "StreamOpen{id=1,name=\"file\"}",
            StreamMessage::Open {
                id: 1,
                name: "file",
            },
            "100000000100000000000000040000000000000066696c65",
        ),
        (
            "StreamData{id=1,offset=0,bytes=b\"hi\"}",
            StreamMessage::Data {
                id: 1,
                offset: 0,
                bytes: b"hi",
            },
            "110000000100000000000000000000000000000002000000000000006869",
        ),
        (
            "StreamData{id=2,offset=0x01020304,bytes=b\"\"}",
            StreamMessage::Data {
                id: 2,
                offset: 0x0102_0304,
                bytes: b"",
            },
            "11000000020000000000000004030201000000000000000000000000",
        ),
        (
            "StreamCredit{id=1,limit=262144}",
            StreamMessage::Credit {
                id: 1,
                limit: 262_144,
            },
            "1200000001000000000000000000040000000000",
        ),
        (
            "StreamFin{id=1}",
            StreamMessage::Fin { id: 1 },
            "130000000100000000000000",
        ),
        (
            "StreamReset{id=1,code=1,reason=\"no\"}",
            StreamMessage::Reset {
                id: 1,
                code: RESET_REFUSED,
                reason: "no",
            },
            "1400000001000000000000000100000002000000000000006e6f",
        ),
        (
            "StreamReset{id=4,code=2,reason=\"\"}",
            StreamMessage::Reset {
                id: 4,
                code: RESET_TOO_MANY_STREAMS,
                reason: "",
            },
            "140000000400000000000000020000000000000000000000",
        ),
    ];
    let doc = section();
    for (label, msg, expected) in vectors {
        let mut out = Vec::new();
        msg.encode_into(&mut out);
        assert_eq!(hex(&out), expected, "encode {label}");
        assert_eq!(msg.encoded_len(), out.len());
        assert_eq!(StreamMessage::decode(&unhex(expected)).unwrap(), msg);
        // A node without streams finds an unknown tag (and answers Goodbye 3); one
        // with streams picks this decoder by the tag.
        assert!(crate::envelope::Envelope::decode(&out).is_err(), "{label}");
        assert!(stream_tag(&out).is_some());
        let row = format!("| `{label}` | `{expected}` |");
        assert!(doc.contains(&row), "docs/protocol.md lacks the row {row}");
    }
    // And the document has no vector row this test does not check.
    let rows = doc.lines().filter(|l| l.starts_with("| `Stream")).count();
    assert_eq!(rows, vectors.len());
}

#[test]
fn the_documents_rejected_vectors_are_rejected() {
    let doc = section();
    let table = &doc[doc.find("must be rejected").expect("a rejected table")..];
    let mut n = 0;
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('`').collect();
        let (why, bytes) = (cells[1], unhex(cells[3]));
        assert!(
            StreamMessage::decode(&bytes).is_err(),
            "{why}: {} decodes",
            cells[3]
        );
        n += 1;
    }
    assert_eq!(n, 4);
}

#[test]
fn the_feature_bit_is_bit_0_and_needs_both_hellos() {
    use crate::hello::Hello;
    assert_eq!(FEATURE_STREAMS, 1);
    let plain = Hello::new(65_536, 0);
    let streams = Hello {
        features: FEATURE_STREAMS | 1 << 63,
        ..plain
    };
    assert!(negotiated(&streams, &streams));
    assert!(!negotiated(&streams, &plain));
    assert!(!negotiated(&plain, &streams));
    // The Hello with the bit is the same 16 bytes, bit 0 of the features field.
    assert_eq!(hex(&streams.encode()), "01000000010000000100000000000080");
    assert_eq!(Hello::decode(&streams.encode()).unwrap(), streams);
}
