//! Pairing decoders: tickets, codes, open messages and PairHello round-trip, refuse
//! every single-character typo naming its group, and never panic on garbage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};

use peernet_proto::pairing::{
    Invitation, JoinerSession, Open, PairError, PairHello, ShortCode, Ticket,
};
use peernet_proto::Key;
use proptest::prelude::*;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
    ]
}

fn ticket() -> impl Strategy<Value = Ticket> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 16]>(),
        any::<u64>(),
        proptest::collection::vec(addr(), 0..=4),
    )
        .prop_map(|(k, secret, expires_at, addrs)| Ticket {
            key: Key(k),
            secret,
            expires_at,
            addrs,
        })
}

/// The 1-based group of byte `pos` of a ticket text (after the prefix).
fn group_of(text: &str, pos: usize) -> usize {
    text[..pos].matches('-').count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn tickets_round_trip_in_any_case(t in ticket()) {
        let text = t.encode();
        prop_assert!(text.len() <= peernet_proto::pairing::ticket::MAX_TEXT_LEN);
        prop_assert_eq!(&Ticket::parse(&text).unwrap(), &t);
        prop_assert_eq!(&Ticket::parse(&text.to_lowercase()).unwrap(), &t);
        // A wrapped terminal line: whitespace is ignored.
        let wrapped = format!("  {}\n {} ", &text[..20], &text[20..]);
        prop_assert_eq!(&Ticket::parse(&wrapped).unwrap(), &t);
        prop_assert_eq!(Ticket::from_bytes(&t.to_bytes()).unwrap(), t);
    }

    #[test]
    fn every_single_character_typo_names_its_group(t in ticket(), pick in any::<usize>(), sub in 0usize..32) {
        let text = t.encode();
        let prefix = "peernet1-".len();
        // Positions of data and check characters (not dashes).
        let positions: Vec<usize> = text
            .bytes()
            .enumerate()
            .skip(prefix)
            .filter(|&(_, b)| b != b'-')
            .map(|(i, _)| i)
            .collect();
        let pos = positions[pick % positions.len()];
        let old = text.as_bytes()[pos];
        let new = ALPHABET[sub];
        prop_assume!(new != old);
        let mut bad = text.clone().into_bytes();
        bad[pos] = new;
        let bad = String::from_utf8(bad).unwrap();
        let group = group_of(&text, pos);
        prop_assert_eq!(Ticket::parse(&bad), Err(PairError::TicketTypo { group }));
        // A character outside the alphabet is named too.
        let mut odd = text.clone().into_bytes();
        odd[pos] = b'1';
        let odd = String::from_utf8(odd).unwrap();
        prop_assert_eq!(Ticket::parse(&odd), Err(PairError::TicketCharacter { group, ch: '1' }));
    }

    #[test]
    fn ticket_text_garbage_never_panics(s in "\\PC{0,400}") {
        let _ = Ticket::parse(&s);
        let _ = ShortCode::parse(&s);
        let _ = Ticket::parse(&format!("peernet1-{s}"));
    }

    #[test]
    fn binary_decoders_round_trip_what_they_accept(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(t) = Ticket::from_bytes(&b) {
            prop_assert_eq!(t.to_bytes(), b.clone());
        }
        if let Ok(o) = Open::decode(&b) {
            prop_assert_eq!(o.encode(), b.clone());
        }
        if let Ok(h) = PairHello::decode(&b) {
            prop_assert_eq!(h.encode(), b);
        }
    }

    #[test]
    fn sessions_survive_garbage(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 1..5), code_first in any::<bool>()) {
        let hello = PairHello::new("x", 1).unwrap();
        let code = ShortCode::new(7, [1, 2]).unwrap();
        let mut inv = Invitation::new(&[1; 32], [2; 16], Some(code), 100, hello.clone());
        let mut first = frames[0].clone();
        if code_first {
            // A well-formed open, then garbage.
            first = JoinerSession::with_code(&code, &[3; 32], hello.clone()).unwrap().1;
        }
        if let Ok((mut s, _)) = inv.accept(&first, 0) {
            for f in &frames[1..] {
                let _ = s.receive(f);
            }
        }
        let (mut j, _) = JoinerSession::with_code(&code, &[3; 32], hello).unwrap();
        for f in &frames {
            let _ = j.receive(f);
        }
    }
}

#[test]
fn prefix_version_length_and_truncation_errors_are_clear() {
    let t = Ticket {
        key: Key([7; 32]),
        secret: [8; 16],
        expires_at: 1,
        addrs: vec!["127.0.0.1:4000".parse().unwrap()],
    };
    let text = t.encode();
    assert!(matches!(
        Ticket::parse("hello"),
        Err(PairError::TicketFormat(_))
    ));
    let v2 = text.replacen("peernet1-", "peernet2-", 1);
    assert_eq!(
        Ticket::parse(&v2),
        Err(PairError::TicketFormat(
            "unknown ticket version (this build reads peernet1)"
        ))
    );
    // A whole group dropped: the length no longer matches.
    let cut = text.rfind('-').unwrap();
    assert!(matches!(
        Ticket::parse(&text[..cut]),
        Err(PairError::TicketFormat(_))
    ));
    assert!(matches!(
        Ticket::parse(&"A".repeat(10_000)),
        Err(PairError::TicketFormat(_))
    ));
    // Messages name the group and say what to do.
    let msg = PairError::TicketTypo { group: 3 }.to_string();
    assert!(msg.contains("group 3") && msg.contains("compare"), "{msg}");
    // Five addresses: only four are written.
    let five = Ticket {
        addrs: vec!["127.0.0.1:1".parse().unwrap(); 5],
        ..t.clone()
    };
    assert_eq!(Ticket::parse(&five.encode()).unwrap().addrs.len(), 4);
}
