//! The inviter's side: the one-time [`Invitation`] and one attempt against it
//! ([`InviterSession`], the Noise responder).

use std::net::SocketAddr;

use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::Zeroizing;

use super::kdf::{code_confirm_keys, code_psk, confirm_ok, confirm_tag, ticket_psk};
use super::messages::{split2, Open, NOISE_M1_LEN, PAKE_MSG_LEN};
use super::session::{
    check_ephemeral, hash_of, noise, noise_err, open_hello, pake_array, remote_static, seal_hello,
    Output, Paired, SPAKE_ID_INVITER, SPAKE_ID_JOINER,
};
use super::{Mode, PairError, PairHello, ShortCode, Ticket, CONFIRM_LEN, MAX_MESSAGE_LEN};
use crate::Key;

/// The inviter's one-time state: secret, optional short code, expiry, and whether it
/// was used. One success uses it up; one attempt on the short code burns the code
/// (whatever its outcome), the ticket stays valid until expiry or success.
pub struct Invitation {
    local_private: Zeroizing<[u8; 32]>,
    local_key: Key,
    secret: Zeroizing<[u8; 16]>,
    code: Option<ShortCode>,
    code_burned: bool,
    expires_at: u64,
    used: bool,
    hello: PairHello,
}

impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation")
            .field("key", &self.local_key)
            .field("code", &self.code)
            .field("code_burned", &self.code_burned)
            .field("expires_at", &self.expires_at)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

impl Invitation {
    /// A new invitation. `secret` must come from a CSPRNG; `code`, if any, too.
    pub fn new(
        local_private: &[u8; 32],
        secret: [u8; 16],
        code: Option<ShortCode>,
        expires_at: u64,
        hello: PairHello,
    ) -> Invitation {
        let public = x25519_dalek::x25519(*local_private, x25519_dalek::X25519_BASEPOINT_BYTES);
        Invitation {
            local_private: Zeroizing::new(*local_private),
            local_key: Key(public),
            secret: Zeroizing::new(secret),
            code,
            code_burned: false,
            expires_at,
            used: false,
            hello,
        }
    }

    /// The ticket a joiner needs, naming `addrs` (the first four are kept).
    pub fn ticket(&self, addrs: &[SocketAddr]) -> Ticket {
        Ticket {
            key: self.local_key,
            secret: *self.secret,
            expires_at: self.expires_at,
            addrs: addrs
                .iter()
                .take(super::ticket::MAX_ADDRS)
                .copied()
                .collect(),
        }
    }

    /// The short code, unless there is none or it was burned.
    pub fn code(&self) -> Option<ShortCode> {
        self.code.filter(|_| !self.code_burned)
    }

    /// Unix seconds at which the invitation expires.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// True once a pairing succeeded with it.
    pub fn is_used(&self) -> bool {
        self.used
    }

    /// True when nothing can succeed any more at `now`: used or expired.
    pub fn is_finished(&self, now: u64) -> bool {
        self.used || now >= self.expires_at
    }

    /// Marks the invitation used (call it when an [`InviterSession`] reported success).
    pub fn mark_used(&mut self) {
        self.used = true;
        self.code_burned = true;
    }

    /// Starts an attempt from the joiner's first frame. Refused when used, expired,
    /// for a code that is burned, absent or has another number. A code attempt burns
    /// the code here, before the reply: one attempt per code, whatever happens next.
    pub fn accept(
        &mut self,
        first: &[u8],
        now: u64,
    ) -> Result<(InviterSession, Output), PairError> {
        if self.used {
            return Err(PairError::Used);
        }
        if now >= self.expires_at {
            return Err(PairError::Expired);
        }
        match Open::decode(first)? {
            Open::Ticket { m1 } => self.accept_ticket(m1),
            Open::Code { number, pake } => {
                let code = match self.code {
                    Some(c) if c.number() == number => c,
                    Some(_) | None => return Err(PairError::Malformed("no such code number here")),
                };
                if self.code_burned {
                    return Err(PairError::Used);
                }
                self.code_burned = true;
                self.accept_code(&code, pake)
            }
        }
    }

    fn accept_ticket(&self, m1: [u8; NOISE_M1_LEN]) -> Result<(InviterSession, Output), PairError> {
        let mut state = noise(false, &self.local_private, &ticket_psk(&self.secret))?;
        let m2 = read_m1_write_m2(&mut state, &m1)?;
        let s = InviterSession {
            state: State::AwaitM3(Box::new(state)),
            hello: self.hello.clone(),
            mode: Mode::Ticket,
        };
        Ok((
            s,
            Output {
                send: vec![m2],
                paired: None,
            },
        ))
    }

    fn accept_code(
        &self,
        code: &ShortCode,
        pake_a: [u8; PAKE_MSG_LEN],
    ) -> Result<(InviterSession, Output), PairError> {
        let (spake, msg) = Spake2::<Ed25519Group>::start_b(
            &Password::new(code.password()),
            &Identity::new(SPAKE_ID_JOINER),
            &Identity::new(SPAKE_ID_INVITER),
        );
        let pake_b = pake_array(&msg)?;
        let k = Zeroizing::new(
            spake
                .finish(&pake_a)
                .map_err(|_| PairError::Malformed("code open: bad SPAKE2 message"))?,
        );
        let (cj, ci) = code_confirm_keys(&k);
        let state = noise(false, &self.local_private, &code_psk(&k))?;
        let mut reply = pake_b.to_vec();
        reply.extend_from_slice(&confirm_tag(&ci, &pake_a, &pake_b));
        let s = InviterSession {
            state: State::AwaitConfirm {
                noise: Box::new(state),
                confirm_key: Zeroizing::new(cj),
                pake_a,
                pake_b,
            },
            hello: self.hello.clone(),
            mode: Mode::Code,
        };
        Ok((
            s,
            Output {
                send: vec![reply],
                paired: None,
            },
        ))
    }
}

fn read_m1_write_m2(state: &mut snow::HandshakeState, m1: &[u8]) -> Result<Vec<u8>, PairError> {
    check_ephemeral(m1)?;
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = state.read_message(m1, &mut buf).map_err(noise_err)?;
    if n != 0 {
        return Err(PairError::Malformed("M1 payload is not empty"));
    }
    let n = state.write_message(&[], &mut buf).map_err(noise_err)?;
    Ok(buf.get(..n).unwrap_or_default().to_vec())
}

enum State {
    AwaitConfirm {
        noise: Box<snow::HandshakeState>,
        confirm_key: Zeroizing<[u8; 32]>,
        pake_a: [u8; PAKE_MSG_LEN],
        pake_b: [u8; PAKE_MSG_LEN],
    },
    AwaitM3(Box<snow::HandshakeState>),
    AwaitHello {
        transport: Box<snow::TransportState>,
        remote: Key,
        hash: [u8; 32],
    },
    Ended,
}

/// One attempt against an [`Invitation`]. On success ([`Output::paired`] set), call
/// [`Invitation::mark_used`]; any error ends the attempt.
pub struct InviterSession {
    state: State,
    hello: PairHello,
    mode: Mode,
}

impl std::fmt::Debug for InviterSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviterSession")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl InviterSession {
    /// Ticket or code.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Processes one frame from the joiner.
    pub fn receive(&mut self, msg: &[u8]) -> Result<Output, PairError> {
        if msg.len() > MAX_MESSAGE_LEN {
            self.state = State::Ended;
            return Err(PairError::Malformed("pairing message over 1024 bytes"));
        }
        match std::mem::replace(&mut self.state, State::Ended) {
            State::AwaitConfirm {
                mut noise,
                confirm_key,
                pake_a,
                pake_b,
            } => {
                let (tag, m1) =
                    split2::<CONFIRM_LEN, NOISE_M1_LEN>(msg, "code confirm: wrong length")?;
                if !confirm_ok(&confirm_key, &pake_a, &pake_b, &tag) {
                    return Err(PairError::WrongSecret);
                }
                let m2 = read_m1_write_m2(&mut noise, &m1)?;
                self.state = State::AwaitM3(noise);
                Ok(Output {
                    send: vec![m2],
                    paired: None,
                })
            }
            State::AwaitM3(mut noise) => {
                let mut buf = [0u8; MAX_MESSAGE_LEN];
                // With XXpsk3 the psk enters at M3: a joiner without the secret fails here.
                let n = noise
                    .read_message(msg, &mut buf)
                    .map_err(|_| PairError::WrongSecret)?;
                if n != 0 {
                    return Err(PairError::Malformed("M3 payload is not empty"));
                }
                let remote = remote_static(&noise)?;
                let hash = hash_of(&noise);
                let transport = noise.into_transport_mode().map_err(noise_err)?;
                self.state = State::AwaitHello {
                    transport: Box::new(transport),
                    remote,
                    hash,
                };
                Ok(Output::default())
            }
            State::AwaitHello {
                mut transport,
                remote,
                hash,
            } => {
                let remote_hello = open_hello(&mut transport, msg)?;
                let reply = seal_hello(&mut transport, &self.hello)?;
                Ok(Output {
                    send: vec![reply],
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
}
