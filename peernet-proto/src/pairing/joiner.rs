//! The joiner's side of one pairing attempt (the Noise initiator).

use spake2::{Ed25519Group, Identity, Password, Spake2};

use super::kdf::{code_confirm_keys, code_psk, confirm_ok, confirm_tag, ticket_psk};
use super::messages::{split2, Open, NOISE_M1_LEN, PAKE_MSG_LEN};
use super::session::{
    check_ephemeral, hash_of, noise, noise_err, open_hello, pake_array, remote_static, seal_hello,
    Output, Paired, SPAKE_ID_INVITER, SPAKE_ID_JOINER,
};
use super::{Mode, PairError, PairHello, ShortCode, Ticket, CONFIRM_LEN, MAX_MESSAGE_LEN};
use crate::Key;

enum State {
    AwaitCodeReply {
        spake: Spake2<Ed25519Group>,
        pake_a: [u8; PAKE_MSG_LEN],
    },
    AwaitM2 {
        noise: Box<snow::HandshakeState>,
        expect: Option<Key>,
    },
    AwaitHello {
        transport: Box<snow::TransportState>,
        remote: Key,
        hash: [u8; 32],
    },
    Ended,
}

/// One pairing attempt by the joiner. Feed it every frame the inviter sends with
/// [`JoinerSession::receive`]; any error ends the attempt.
pub struct JoinerSession {
    state: State,
    local_private: zeroize::Zeroizing<[u8; 32]>,
    hello: PairHello,
    mode: Mode,
}

impl std::fmt::Debug for JoinerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinerSession")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl JoinerSession {
    /// Starts a ticket attempt; returns the session and the first frame to send. An
    /// expired ticket is refused here, before any traffic.
    pub fn with_ticket(
        ticket: &Ticket,
        local_private: &[u8; 32],
        hello: PairHello,
        now: u64,
    ) -> Result<(JoinerSession, Vec<u8>), PairError> {
        if ticket.is_expired(now) {
            return Err(PairError::Expired);
        }
        let mut state = noise(true, local_private, &ticket_psk(&ticket.secret))?;
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = state.write_message(&[], &mut buf).map_err(noise_err)?;
        let m1: [u8; NOISE_M1_LEN] = buf
            .get(..n)
            .and_then(|b| b.try_into().ok())
            .ok_or(PairError::Noise("unexpected M1 length".into()))?;
        let session = JoinerSession {
            state: State::AwaitM2 {
                noise: Box::new(state),
                expect: Some(ticket.key),
            },
            local_private: zeroize::Zeroizing::new(*local_private),
            hello,
            mode: Mode::Ticket,
        };
        Ok((session, Open::Ticket { m1 }.encode()))
    }

    /// Starts a short-code attempt; returns the session and the first frame to send.
    pub fn with_code(
        code: &ShortCode,
        local_private: &[u8; 32],
        hello: PairHello,
    ) -> Result<(JoinerSession, Vec<u8>), PairError> {
        let (spake, msg) = Spake2::<Ed25519Group>::start_a(
            &Password::new(code.password()),
            &Identity::new(SPAKE_ID_JOINER),
            &Identity::new(SPAKE_ID_INVITER),
        );
        let pake_a = pake_array(&msg)?;
        let session = JoinerSession {
            state: State::AwaitCodeReply { spake, pake_a },
            local_private: zeroize::Zeroizing::new(*local_private),
            hello,
            mode: Mode::Code,
        };
        let open = Open::Code {
            number: code.number(),
            pake: pake_a,
        };
        Ok((session, open.encode()))
    }

    /// True once the attempt has ended (succeeded or failed).
    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// Processes one frame from the inviter.
    pub fn receive(&mut self, msg: &[u8]) -> Result<Output, PairError> {
        if msg.len() > MAX_MESSAGE_LEN {
            self.state = State::Ended;
            return Err(PairError::Malformed("pairing message over 1024 bytes"));
        }
        match std::mem::replace(&mut self.state, State::Ended) {
            State::AwaitCodeReply { spake, pake_a } => self.code_reply(spake, pake_a, msg),
            State::AwaitM2 { noise, expect } => self.m2(*noise, expect, msg),
            State::AwaitHello {
                mut transport,
                remote,
                hash,
            } => {
                let remote_hello = open_hello(&mut transport, msg)?;
                Ok(Output {
                    send: Vec::new(),
                    paired: Some(Paired {
                        remote_key: remote,
                        remote_hello,
                        handshake_hash: hash,
                        mode: self.mode,
                    }),
                })
            }
            State::Ended => Err(PairError::Misuse("the pairing attempt has ended")),
        }
    }

    fn code_reply(
        &mut self,
        spake: Spake2<Ed25519Group>,
        pake_a: [u8; PAKE_MSG_LEN],
        msg: &[u8],
    ) -> Result<Output, PairError> {
        let (pake_b, tag) = split2::<PAKE_MSG_LEN, CONFIRM_LEN>(msg, "code reply: wrong length")?;
        let k = zeroize::Zeroizing::new(
            spake
                .finish(&pake_b)
                .map_err(|_| PairError::Malformed("code reply: bad SPAKE2 message"))?,
        );
        let (cj, ci) = code_confirm_keys(&k);
        if !confirm_ok(&ci, &pake_a, &pake_b, &tag) {
            return Err(PairError::WrongSecret);
        }
        let mut state = noise(true, &self.local_private, &code_psk(&k))?;
        let mut out = confirm_tag(&cj, &pake_a, &pake_b).to_vec();
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = state.write_message(&[], &mut buf).map_err(noise_err)?;
        out.extend_from_slice(buf.get(..n).unwrap_or_default());
        self.state = State::AwaitM2 {
            noise: Box::new(state),
            expect: None,
        };
        Ok(Output {
            send: vec![out],
            paired: None,
        })
    }

    fn m2(
        &mut self,
        mut state: snow::HandshakeState,
        expect: Option<Key>,
        msg: &[u8],
    ) -> Result<Output, PairError> {
        check_ephemeral(msg)?;
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = state.read_message(msg, &mut buf).map_err(noise_err)?;
        if n != 0 {
            return Err(PairError::Malformed("M2 payload is not empty"));
        }
        let remote = remote_static(&state)?;
        if expect.is_some_and(|k| k != remote) {
            return Err(PairError::KeyMismatch);
        }
        let n = state.write_message(&[], &mut buf).map_err(noise_err)?;
        let m3 = buf.get(..n).unwrap_or_default().to_vec();
        let hash = hash_of(&state);
        let mut transport = state.into_transport_mode().map_err(noise_err)?;
        let hello = seal_hello(&mut transport, &self.hello)?;
        self.state = State::AwaitHello {
            transport: Box::new(transport),
            remote,
            hash,
        };
        Ok(Output {
            send: vec![m3, hello],
            paired: None,
        })
    }
}
