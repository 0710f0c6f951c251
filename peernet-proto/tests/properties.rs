//! Property tests: every envelope, Hello, announcement, RPC body, keyfile and trust
//! file survives an encode/decode round trip, and the channel rejects any tampering.

use peernet_proto::announce::Announcement;
use peernet_proto::channel::{RecvCipher, SendCipher, TAG_LEN};
use peernet_proto::envelope::{Envelope, GoodbyeReason, Outcome};
use peernet_proto::hello::Hello;
use peernet_proto::rpc::RpcRequest;
use peernet_proto::trustfile::{self, TrustEntry};
use peernet_proto::{keyfile, Key};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    // 1..=255 bytes of UTF-8 (chars up to 4 bytes: cut to the limit on a boundary).
    "\\PC{1,80}".prop_map(|s| {
        let mut end = s.len().min(255);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_owned()
    })
}

#[derive(Debug, Clone)]
enum Owned {
    Call(u64, String, Vec<u8>),
    Reply(u64, u8, Vec<u8>, String),
    Send(String, Vec<u8>),
    Ping(u64),
    Pong(u64),
    Goodbye(u32),
}

fn owned() -> impl Strategy<Value = Owned> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        (any::<u64>(), name(), bytes.clone()).prop_map(|(i, n, b)| Owned::Call(i, n, b)),
        (any::<u64>(), 0u8..5, bytes.clone(), "\\PC{0,40}")
            .prop_map(|(i, o, b, m)| Owned::Reply(i, o, b, m)),
        (name(), bytes).prop_map(|(n, b)| Owned::Send(n, b)),
        any::<u64>().prop_map(Owned::Ping),
        any::<u64>().prop_map(Owned::Pong),
        (0u32..4).prop_map(Owned::Goodbye),
    ]
}

fn view(o: &Owned) -> Envelope<'_> {
    match o {
        Owned::Call(id, n, b) => Envelope::Call {
            id: *id,
            name: n,
            body: b,
        },
        Owned::Reply(id, k, b, m) => Envelope::Reply {
            id: *id,
            outcome: match k {
                0 => Outcome::Ok(b),
                1 => Outcome::NoSuchHandler,
                2 => Outcome::Forbidden,
                3 => Outcome::HandlerFailed(m),
                _ => Outcome::Overloaded,
            },
        },
        Owned::Send(n, b) => Envelope::Send { name: n, body: b },
        Owned::Ping(n) => Envelope::Ping { nonce: *n },
        Owned::Pong(n) => Envelope::Pong { nonce: *n },
        Owned::Goodbye(r) => Envelope::Goodbye {
            reason: GoodbyeReason::from_u32(*r),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn envelopes_round_trip(o in owned()) {
        let env = view(&o);
        let mut bytes = Vec::new();
        env.encode_into(&mut bytes);
        prop_assert_eq!(bytes.len(), env.encoded_len());
        prop_assert_eq!(Envelope::decode(&bytes).unwrap(), env);
        // Any strict prefix is rejected (no partial decode).
        if !bytes.is_empty() {
            let cut = bytes.len() / 2;
            prop_assert!(Envelope::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn hello_round_trips(v in 1u16.., limit in 65_536u32.., port in any::<u16>(), f in any::<u64>()) {
        let h = Hello { protocol_version: v, max_frame_len: limit, listen_port: port, features: f };
        prop_assert_eq!(Hello::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn announcement_round_trips(port in any::<u16>(), key in any::<[u8; 32]>()) {
        let a = Announcement { tcp_port: port, key: Key::from_bytes(key) };
        prop_assert_eq!(Announcement::decode(&a.encode()).unwrap(), a);
    }

    #[test]
    fn rpc_body_round_trips(m in "\\PC{0,30}", f in "\\PC{0,30}", args in proptest::collection::vec(any::<u8>(), 0..100)) {
        let r = RpcRequest { module: &m, function: &f, args: &args };
        let bytes = r.encode();
        prop_assert_eq!(RpcRequest::decode(&bytes).unwrap(), r);
    }

    #[test]
    fn keyfile_round_trips(private in any::<[u8; 32]>()) {
        let (p, public) = keyfile::decode(&keyfile::encode(&private)).unwrap();
        prop_assert_eq!(p, private);
        prop_assert_eq!(public, keyfile::public_from_private(&private));
    }

    #[test]
    fn trust_files_round_trip(entries in proptest::collection::btree_map(
        any::<[u8; 32]>(), (any::<u64>(), any::<bool>(), "[a-zA-Z0-9 '._-]{0,40}",
            proptest::collection::vec((any::<[u8; 4]>(), 1u16..), 0..4)), 0..8)) {
        let list: Vec<TrustEntry> = entries.into_iter()
            .filter(|(k, _)| !Key::from_bytes(*k).is_low_order())
            .map(|(k, (t, rpc, label, addrs))| {
            let mut addresses: Vec<std::net::SocketAddr> = Vec::new();
            for (ip, port) in addrs {
                let a = std::net::SocketAddr::from((ip, port));
                if trustfile::is_storable_address(&a) && !addresses.contains(&a) {
                    addresses.push(a);
                }
            }
            TrustEntry { key: Key::from_bytes(k), label, added_at: t, rpc, addresses, manual: Vec::new() }
        }).collect();
        prop_assert_eq!(trustfile::parse(&trustfile::render(&list)).unwrap(), list);
    }

    #[test]
    fn channel_rejects_any_tamper(
        key in any::<[u8; 32]>(),
        msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..6),
        which in any::<prop::sample::Index>(),
        flip_at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut send = SendCipher::new(key);
        let mut sealed: Vec<Vec<u8>> = msgs.iter().map(|m| {
            let mut b = m.clone();
            send.seal_in_place(&mut b, 0).unwrap();
            prop_assert_eq!(b.len(), m.len() + TAG_LEN);
            Ok(b)
        }).collect::<Result<_, TestCaseError>>()?;
        // Untampered: every frame opens, in order, to its message.
        let mut recv = RecvCipher::new(key);
        for (s, m) in sealed.iter().zip(&msgs) {
            let mut s = s.clone();
            prop_assert_eq!(&*recv.open_in_place(&mut s).unwrap(), &m[..]);
        }
        // One bit flipped anywhere in one frame: that frame fails, earlier ones open.
        let i = which.index(sealed.len());
        let pos = flip_at.index(sealed[i].len());
        sealed[i][pos] ^= 1 << bit;
        let mut recv = RecvCipher::new(key);
        for (j, s) in sealed.iter_mut().enumerate().take(i + 1) {
            let r = recv.open_in_place(s);
            prop_assert_eq!(r.is_ok(), j != i);
        }
    }

    #[test]
    fn channel_rejects_reorder(key in any::<[u8; 32]>(), a in proptest::collection::vec(any::<u8>(), 0..64), b in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut send = SendCipher::new(key);
        let (mut fa, mut fb) = (a, b);
        send.seal_in_place(&mut fa, 0).unwrap();
        send.seal_in_place(&mut fb, 0).unwrap();
        let mut recv = RecvCipher::new(key);
        prop_assert!(recv.open_in_place(&mut fb.clone()).is_err());
        prop_assert!(recv.open_in_place(&mut fa.clone()).is_ok());
        // Replay of the first frame: its nonce is spent.
        prop_assert!(recv.open_in_place(&mut fa).is_err());
        prop_assert!(recv.open_in_place(&mut fb).is_ok());
    }
}
