//! Pairing end to end in memory: by ticket and by code, and the attacks it must
//! refuse (wrong secret, a man in the middle with its own keys, a replayed
//! transcript, expired and used invites, burned codes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peernet_proto::pairing::{
    Invitation, InviterSession, JoinerSession, Mode, Output, PairError, PairHello, Paired,
    ShortCode, Ticket,
};
use peernet_proto::Key;

const I_PRIV: [u8; 32] = [0x11; 32];
const J_PRIV: [u8; 32] = [0x22; 32];
const M_PRIV: [u8; 32] = [0x33; 32];
const NOW: u64 = 1_700_000_000;
const SECRET: [u8; 16] = [0x5a; 16];

fn public(p: &[u8; 32]) -> Key {
    Key(x25519_dalek::x25519(
        *p,
        x25519_dalek::X25519_BASEPOINT_BYTES,
    ))
}

fn code() -> ShortCode {
    ShortCode::parse("7-copper-violin").unwrap()
}

fn invitation() -> Invitation {
    Invitation::new(
        &I_PRIV,
        SECRET,
        Some(code()),
        NOW + 600,
        PairHello::new("inviter", 7100).unwrap(),
    )
}

fn ticket(inv: &Invitation) -> Ticket {
    inv.ticket(&["127.0.0.1:40000".parse().unwrap()])
}

fn j_hello() -> PairHello {
    PairHello::new("joiner", 7200).unwrap()
}

/// Everything the joiner sent, in order (for the replay test).
struct Run {
    joiner: Result<Paired, PairError>,
    inviter: Result<Paired, PairError>,
    joiner_frames: Vec<Vec<u8>>,
}

/// Runs one attempt to the end: first frame to `inv.accept`, then ping-pong.
fn run(inv: &mut Invitation, mut j: JoinerSession, first: Vec<u8>) -> Run {
    let mut joiner_frames = vec![first.clone()];
    let (mut i, mut out): (InviterSession, Output) = match inv.accept(&first, NOW) {
        Ok(x) => x,
        Err(e) => {
            return Run {
                joiner: Err(PairError::Misuse("inviter refused the open")),
                inviter: Err(e),
                joiner_frames,
            }
        }
    };
    let mut inviter_result = None;
    for _ in 0..10 {
        // Inviter → joiner.
        let mut jout = Output::default();
        for f in out.send.drain(..) {
            match j.receive(&f) {
                Ok(o) => {
                    jout.send.extend(o.send);
                    if let Some(p) = o.paired {
                        let ir = inviter_result
                            .take()
                            .unwrap_or(Err(PairError::Misuse("none")));
                        return Run {
                            joiner: Ok(p),
                            inviter: ir,
                            joiner_frames,
                        };
                    }
                }
                Err(e) => {
                    return Run {
                        joiner: Err(e),
                        inviter: inviter_result.unwrap_or(Err(PairError::Misuse("unfinished"))),
                        joiner_frames,
                    }
                }
            }
        }
        // Joiner → inviter.
        for f in jout.send {
            joiner_frames.push(f.clone());
            match i.receive(&f) {
                Ok(o) => {
                    out.send.extend(o.send);
                    if let Some(p) = o.paired {
                        inv.mark_used();
                        inviter_result = Some(Ok(p));
                    }
                }
                Err(e) => {
                    return Run {
                        joiner: Err(PairError::Misuse("inviter failed first")),
                        inviter: Err(e),
                        joiner_frames,
                    }
                }
            }
        }
    }
    panic!("pairing did not finish in 10 rounds");
}

fn check_success(r: &Run, mode: Mode) {
    let j = r.joiner.as_ref().unwrap();
    let i = r.inviter.as_ref().unwrap();
    assert_eq!(
        j.remote_key,
        public(&I_PRIV),
        "joiner trusts the inviter's key"
    );
    assert_eq!(
        i.remote_key,
        public(&J_PRIV),
        "inviter trusts the joiner's key"
    );
    assert_eq!(j.remote_hello.name, "inviter");
    assert_eq!(i.remote_hello.name, "joiner");
    assert_eq!(i.remote_hello.listen_port, 7200);
    assert_eq!(j.handshake_hash, i.handshake_hash);
    assert_eq!(j.sas(), i.sas(), "both screens show the same words");
    assert_eq!(j.mode, mode);
}

#[test]
fn pairs_by_ticket_through_its_text_form() {
    let mut inv = invitation();
    let text = ticket(&inv).encode();
    let t = Ticket::parse(&text.to_lowercase()).unwrap();
    let (j, first) = JoinerSession::with_ticket(&t, &J_PRIV, j_hello(), NOW).unwrap();
    let r = run(&mut inv, j, first);
    check_success(&r, Mode::Ticket);
    assert!(inv.is_used());
    assert!(inv.code().is_none(), "success burns the code too");
}

#[test]
fn pairs_by_code() {
    let mut inv = invitation();
    let (j, first) = JoinerSession::with_code(&code(), &J_PRIV, j_hello()).unwrap();
    let r = run(&mut inv, j, first);
    check_success(&r, Mode::Code);
}

#[test]
fn wrong_code_fails_on_both_sides_and_burns_the_code() {
    let mut inv = invitation();
    let wrong = ShortCode::parse("7-copper-viola").unwrap_or(ShortCode::new(7, [1, 2]).unwrap());
    let (j, first) = JoinerSession::with_code(&wrong, &J_PRIV, j_hello()).unwrap();
    let r = run(&mut inv, j, first);
    assert_eq!(r.joiner.unwrap_err(), PairError::WrongSecret);
    assert!(inv.code().is_none(), "the wrong attempt burned the code");
    // The right code now: refused, the code is dead.
    let (_, first) = JoinerSession::with_code(&code(), &J_PRIV, j_hello()).unwrap();
    assert_eq!(inv.accept(&first, NOW).unwrap_err(), PairError::Used);
    // The ticket still works (128 bits are not guessable online).
    let t = ticket(&inv);
    let (j, first) = JoinerSession::with_ticket(&t, &J_PRIV, j_hello(), NOW).unwrap();
    check_success(&run(&mut inv, j, first), Mode::Ticket);
}

#[test]
fn a_joiner_that_lies_in_its_confirmation_is_refused_by_the_inviter() {
    let mut inv = invitation();
    let (mut j, first) = JoinerSession::with_code(&code(), &J_PRIV, j_hello()).unwrap();
    let (mut i, out) = inv.accept(&first, NOW).unwrap();
    let mut reply = j.receive(&out.send[0]).unwrap().send.remove(0);
    reply[0] ^= 1;
    assert_eq!(i.receive(&reply).unwrap_err(), PairError::WrongSecret);
    assert!(inv.code().is_none());
}

#[test]
fn wrong_ticket_secret_fails_at_m3() {
    let mut inv = invitation();
    let mut t = ticket(&inv);
    t.secret[0] ^= 1;
    let (j, first) = JoinerSession::with_ticket(&t, &J_PRIV, j_hello(), NOW).unwrap();
    let r = run(&mut inv, j, first);
    assert_eq!(r.inviter.unwrap_err(), PairError::WrongSecret);
    assert!(!inv.is_used());
}

#[test]
fn a_man_in_the_middle_with_the_ticket_secret_but_its_own_key_is_refused() {
    // M knows even the secret (read over a shoulder) and answers the joiner's dial
    // with its own static key: the ticket names the inviter's key, so the joiner
    // refuses before sending anything that proves the secret.
    let mut m_inv = Invitation::new(
        &M_PRIV,
        SECRET,
        None,
        NOW + 600,
        PairHello::new("inviter", 1).unwrap(),
    );
    let t = ticket(&invitation());
    let (j, first) = JoinerSession::with_ticket(&t, &J_PRIV, j_hello(), NOW).unwrap();
    let r = run(&mut m_inv, j, first);
    assert_eq!(r.joiner.unwrap_err(), PairError::KeyMismatch);
}

#[test]
fn a_relay_that_swaps_in_its_own_keys_cannot_complete_a_code_pairing() {
    // M relays the SPAKE2 messages untouched (J and I share K, M does not), then
    // runs the Noise handshake with each side under its own keys and a psk it must
    // guess.
    let mut inv = invitation();
    let (mut j, first) = JoinerSession::with_code(&code(), &J_PRIV, j_hello()).unwrap();
    let (mut i, out) = inv.accept(&first, NOW).unwrap();
    let confirm_m1 = j.receive(&out.send[0]).unwrap().send.remove(0);
    // Toward the inviter: J's confirmation with M's own M1 (keeping J's is relaying).
    let mut m_init = snow::Builder::new("Noise_XXpsk3_25519_ChaChaPoly_SHA256".parse().unwrap())
        .local_private_key(&M_PRIV)
        .unwrap()
        .prologue(b"peernet-pair-v1")
        .unwrap()
        .psk(3, &[0u8; 32])
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = m_init.write_message(&[], &mut buf).unwrap();
    let mut forged = confirm_m1[..32].to_vec();
    forged.extend_from_slice(&buf[..n]);
    let m2 = i.receive(&forged).unwrap().send.remove(0);
    m_init.read_message(&m2, &mut buf).unwrap();
    let n = m_init.write_message(&[], &mut buf).unwrap();
    assert_eq!(i.receive(&buf[..n]).unwrap_err(), PairError::WrongSecret);
    // Toward the joiner: M answers its M1 with its own M2; J's M3 and hello are
    // useless to M, and M cannot produce the hello J waits for.
    let mut m_resp = snow::Builder::new("Noise_XXpsk3_25519_ChaChaPoly_SHA256".parse().unwrap())
        .local_private_key(&M_PRIV)
        .unwrap()
        .prologue(b"peernet-pair-v1")
        .unwrap()
        .psk(3, &[0u8; 32])
        .unwrap()
        .build_responder()
        .unwrap();
    m_resp.read_message(&confirm_m1[32..], &mut buf).unwrap();
    let n = m_resp.write_message(&[], &mut buf).unwrap();
    let sent = j.receive(&buf[..n]).unwrap().send;
    assert!(
        m_resp.read_message(&sent[0], &mut buf).is_err(),
        "M3 fails for M"
    );
    // Whatever M sends as the inviter's hello is refused.
    assert_eq!(j.receive(&[0u8; 36]).unwrap_err(), PairError::WrongSecret);
}

#[test]
fn a_replayed_transcript_fails() {
    // A recorded successful ticket run replayed against a fresh invitation with the
    // same key and secret (the strongest case: the real one is used up anyway).
    let mut inv = invitation();
    let t = ticket(&inv);
    let (j, first) = JoinerSession::with_ticket(&t, &J_PRIV, j_hello(), NOW).unwrap();
    let r = run(&mut inv, j, first);
    check_success(&r, Mode::Ticket);
    assert_eq!(
        inv.accept(&r.joiner_frames[0], NOW).unwrap_err(),
        PairError::Used
    );
    let mut fresh = invitation();
    let (mut i, _) = fresh.accept(&r.joiner_frames[0], NOW).unwrap();
    // The inviter's new ephemeral key changes every later key: the recorded M3 fails.
    assert_eq!(
        i.receive(&r.joiner_frames[1]).unwrap_err(),
        PairError::WrongSecret
    );
    assert!(!fresh.is_used());
}

#[test]
fn a_replayed_code_transcript_fails() {
    let mut inv = invitation();
    let (j, first) = JoinerSession::with_code(&code(), &J_PRIV, j_hello()).unwrap();
    let r = run(&mut inv, j, first);
    check_success(&r, Mode::Code);
    let mut fresh = invitation();
    let (mut i, _) = fresh.accept(&r.joiner_frames[0], NOW).unwrap();
    // New SPAKE2 scalar on the inviter's side: the old confirmation does not match.
    assert_eq!(
        i.receive(&r.joiner_frames[1]).unwrap_err(),
        PairError::WrongSecret
    );
}

#[test]
fn expired_and_used_invites_are_refused() {
    let mut inv = invitation();
    let t = ticket(&inv);
    assert_eq!(
        JoinerSession::with_ticket(&t, &J_PRIV, j_hello(), NOW + 600).unwrap_err(),
        PairError::Expired,
        "the joiner refuses before any traffic"
    );
    let (_, first) = JoinerSession::with_ticket(&t, &J_PRIV, j_hello(), NOW).unwrap();
    assert_eq!(
        inv.accept(&first, NOW + 600).unwrap_err(),
        PairError::Expired
    );
    assert!(inv.is_finished(NOW + 600));
    let (j, first) = JoinerSession::with_ticket(&t, &J_PRIV, j_hello(), NOW).unwrap();
    check_success(&run(&mut inv, j, first), Mode::Ticket);
    let (_, first) = JoinerSession::with_ticket(&t, &J_PRIV, j_hello(), NOW).unwrap();
    assert_eq!(inv.accept(&first, NOW).unwrap_err(), PairError::Used);
}

#[test]
fn another_code_number_is_not_an_attempt() {
    let mut inv = invitation();
    let other = ShortCode::new(8, [1, 2]).unwrap();
    let (_, first) = JoinerSession::with_code(&other, &J_PRIV, j_hello()).unwrap();
    assert!(matches!(
        inv.accept(&first, NOW),
        Err(PairError::Malformed(_))
    ));
    assert!(
        inv.code().is_some(),
        "not burned by a code it does not have"
    );
}

#[test]
fn steps_after_the_end_are_misuse_never_panics() {
    let mut inv = invitation();
    let (mut j, first) = JoinerSession::with_code(&code(), &J_PRIV, j_hello()).unwrap();
    let (mut i, _) = inv.accept(&first, NOW).unwrap();
    assert!(j.receive(b"short").is_err());
    assert!(j.is_ended());
    assert_eq!(
        j.receive(b"x").unwrap_err(),
        PairError::Misuse("the pairing attempt has ended")
    );
    assert!(i.receive(&[0u8; 2000]).is_err());
    assert!(i.receive(b"x").is_err());
}
