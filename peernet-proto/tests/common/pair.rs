//! Two connection machines back to back over a real Noise XX handshake, under fake
//! time; and a raw peer (the bare channel) for hand-made frames.

use std::time::{Duration, Instant};

use peernet_proto::channel::{RecvCipher, SendCipher};
use peernet_proto::connection::{Config, Connection, Event, Side};
use peernet_proto::envelope::Envelope;
use peernet_proto::frame::HEADER_LEN;
use peernet_proto::handshake::Handshake;
use peernet_proto::hello::Hello;

pub const I_KEY: [u8; 32] = [1; 32];
pub const R_KEY: [u8; 32] = [2; 32];
pub const MS: Duration = Duration::from_millis(1);
pub const SEC: Duration = Duration::from_secs(1);

/// A finished handshake: (initiator, responder, initiator's Hello, responder's Hello).
pub fn handshake(ih: Hello, rh: Hello) -> (Handshake, Handshake, Hello, Hello) {
    handshake_keys(&I_KEY, &R_KEY, ih, rh)
}

/// A finished handshake between the static keys `ik` (initiator) and `rk`.
pub fn handshake_keys(
    ik: &[u8; 32],
    rk: &[u8; 32],
    ih: Hello,
    rh: Hello,
) -> (Handshake, Handshake, Hello, Hello) {
    let mut i = Handshake::initiator(ik, &ih).unwrap();
    let mut r = Handshake::responder(rk, &rh).unwrap();
    r.read_m1(&i.write_m1().unwrap()).unwrap();
    let (_, got_rh) = i.read_m2(&r.write_m2().unwrap()).unwrap();
    let (_, got_ih) = r.read_m3(&i.write_m3().unwrap()).unwrap();
    assert_eq!((got_ih, got_rh), (ih, rh));
    (i, r, ih, rh)
}

/// The Hello a node with config `c` sends: the streams bit when it speaks streams.
pub fn hello(c: &Config) -> Hello {
    let mut h = Hello::new(c.max_frame_len, 7000);
    if c.streams.is_some() {
        h.features |= peernet_proto::stream::FEATURE_STREAMS;
    }
    h
}

/// Both machines, `a` the initiator (dialer), `b` the responder, with the bytes of each
/// direction handed over `chunk` bytes at a time.
pub struct Pair {
    pub now: Instant,
    pub a: Connection,
    pub b: Connection,
    pub chunk: usize,
    /// Bytes of each direction that `a_to_b`/`b_to_a` dropped (a silent peer).
    pub cut_a_to_b: bool,
    pub cut_b_to_a: bool,
}

impl Pair {
    pub fn new(ca: Config, cb: Config) -> Pair {
        Pair::with_keys(&I_KEY, &R_KEY, ca, cb)
    }

    /// `a` dials with static key `ak`, `b` responds with `bk`.
    pub fn with_keys(ak: &[u8; 32], bk: &[u8; 32], ca: Config, cb: Config) -> Pair {
        let (i, r, ih, rh) = handshake_keys(ak, bk, hello(&ca), hello(&cb));
        let now = Instant::now();
        let a = Connection::from_handshake(now, i, &rh, ca).unwrap();
        let b = Connection::from_handshake(now, r, &ih, cb).unwrap();
        assert_eq!(a.side(), Side::Initiator);
        assert_eq!(b.side(), Side::Responder);
        Pair {
            now,
            a,
            b,
            chunk: usize::MAX,
            cut_a_to_b: false,
            cut_b_to_a: false,
        }
    }

    /// Default configs, confirmed, both event queues empty.
    pub fn confirmed() -> Pair {
        let mut p = Pair::new(Config::default(), Config::default());
        p.confirm();
        p
    }

    pub fn confirm(&mut self) {
        self.b_to_a();
        assert_eq!(self.a.poll_event(), Some(Event::Confirmed));
        self.a_to_b();
        assert_eq!(self.b.poll_event(), None);
    }

    fn feed(conn: &mut Connection, now: Instant, bytes: &[u8], chunk: usize) {
        for c in bytes.chunks(chunk.max(1)) {
            conn.handle_bytes(now, c);
        }
    }

    /// Moves what `a` transmits to `b`; returns the byte count.
    pub fn a_to_b(&mut self) -> usize {
        let mut buf = Vec::new();
        let n = self.a.poll_transmit(&mut buf);
        assert_eq!(n, buf.len());
        if !self.cut_a_to_b {
            Self::feed(&mut self.b, self.now, &buf, self.chunk);
        }
        n
    }

    pub fn b_to_a(&mut self) -> usize {
        let mut buf = Vec::new();
        let n = self.b.poll_transmit(&mut buf);
        if !self.cut_b_to_a {
            Self::feed(&mut self.a, self.now, &buf, self.chunk);
        }
        n
    }

    /// Shuttles bytes both ways until neither side has anything to send.
    pub fn run(&mut self) {
        for _ in 0..1000 {
            if self.a_to_b() + self.b_to_a() == 0 {
                return;
            }
        }
        panic!("the machines never went quiet");
    }

    /// Advances fake time by `d` in steps, running each machine's timers exactly when
    /// they are due and shuttling bytes between steps.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    if self.a.poll_timeout().is_some_and(|x| x <= self.now) {
                        self.a.handle_timeout(self.now);
                    }
                    if self.b.poll_timeout().is_some_and(|x| x <= self.now) {
                        self.b.handle_timeout(self.now);
                    }
                    self.run();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    pub fn events_a(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.a.poll_event()).collect()
    }

    pub fn events_b(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.b.poll_event()).collect()
    }
}

/// The bare channel of the other end, for hand-made frames.
pub struct Raw {
    pub send: SendCipher,
    pub recv: RecvCipher,
}

impl Raw {
    /// One sealed frame carrying `env`.
    pub fn frame(&mut self, env: &Envelope<'_>) -> Vec<u8> {
        let mut plain = Vec::new();
        env.encode_into(&mut plain);
        self.frame_bytes(&plain)
    }

    /// One sealed frame carrying any plaintext.
    pub fn frame_bytes(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut out = vec![0; HEADER_LEN];
        out.extend_from_slice(plain);
        self.send.seal_in_place(&mut out, HEADER_LEN).unwrap();
        let n = (out.len() - HEADER_LEN) as u32;
        out[..HEADER_LEN].copy_from_slice(&n.to_be_bytes());
        out
    }

    /// Opens every frame in `bytes` and returns the plaintexts.
    pub fn open_all(&mut self, mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let n = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            let mut body = bytes[HEADER_LEN..HEADER_LEN + n].to_vec();
            out.push(self.recv.open_in_place(&mut body).unwrap().to_vec());
            bytes = &bytes[HEADER_LEN + n..];
        }
        out
    }

    /// Opens what `conn` transmits and decodes each envelope with `f`.
    pub fn take<T>(&mut self, conn: &mut Connection, f: impl Fn(Envelope<'_>) -> T) -> Vec<T> {
        let mut buf = Vec::new();
        conn.poll_transmit(&mut buf);
        self.open_all(&buf)
            .iter()
            .map(|p| f(Envelope::decode(p).unwrap()))
            .collect()
    }
}

/// A responder machine and the raw initiator channel facing it (the machine's
/// confirming Ping already taken off its queue and checked).
pub fn raw_responder(config: Config) -> (Instant, Connection, Raw) {
    let features = hello(&config).features;
    let mut ih = Hello::new(1 << 20, 1);
    ih.features = features;
    let mut rh = Hello::new(config.max_frame_len, 2);
    rh.features = features;
    let (i, r, ih, _) = handshake(ih, rh);
    let now = Instant::now();
    let mut conn = Connection::from_handshake(now, r, &ih, config).unwrap();
    let (send, recv) = i.split().unwrap();
    let mut raw = Raw { send, recv };
    let first = raw.take(&mut conn, |e| format!("{e:?}"));
    assert_eq!(first, vec!["Ping { nonce: 0 }".to_string()]);
    (now, conn, raw)
}

/// A dialer machine (unconfirmed) and the raw responder channel facing it.
pub fn raw_initiator(config: Config) -> (Instant, Connection, Raw) {
    let (i, r, _, rh) = handshake(Hello::new(config.max_frame_len, 1), Hello::new(1 << 20, 2));
    let now = Instant::now();
    let conn = Connection::from_handshake(now, i, &rh, config).unwrap();
    let (send, recv) = r.split().unwrap();
    (now, conn, Raw { send, recv })
}
