//! More tools for the hardening tests (flood, load, faults), on top of `raw.rs`: a raw
//! connection split into a writing and a reading half, a session recorder for replays,
//! forged LAN announcements, memory and descriptor readings from /proc, and a guard for
//! example binaries run as child processes.
//!
//! Include with `#[path = "common/hostile_peer.rs"] mod hostile_peer;` next to
//! `mod common;` (it uses `crate::common::raw`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use peernet_proto::announce::Announcement;
use peernet_proto::channel::{RecvCipher, SendCipher};
use peernet_proto::envelope::Envelope;
use peernet_proto::frame::HEADER_LEN;
use peernet_proto::handshake::{Handshake, PROLOGUE};
use peernet_proto::hello::Hello;
use peernet_proto::Key;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::common::raw::{framed, read_frame, EnvOwned, RawConn, RawKeys};

// ---- /proc readings ----

/// VmRSS of a process (`None`: this one) in KiB.
pub fn rss_kib(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    let s = std::fs::read_to_string(path).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The soft limit on open descriptors of this process (0 if unreadable).
pub fn fd_limit() -> u64 {
    let s = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn mib(kib: i64) -> f64 {
    kib as f64 / 1024.0
}

// ---- split raw connection ----

/// The writing half of a raw connection.
pub struct RawTx {
    pub wr: OwnedWriteHalf,
    pub send: SendCipher,
}

impl RawTx {
    pub fn seal_env(&mut self, env: &Envelope<'_>) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_LEN];
        env.encode_into(&mut v);
        self.send.seal_tail(&mut v, 0).unwrap();
        v
    }

    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.wr.write_all(bytes).await
    }
}

/// The reading half of a raw connection.
pub struct RawRx {
    pub rd: OwnedReadHalf,
    pub recv: RecvCipher,
    pub buf: Vec<u8>,
}

impl RawRx {
    /// Next envelope (None when the connection closes or a frame fails to open).
    pub async fn recv_env(&mut self) -> Option<EnvOwned> {
        let mut body = read_frame(&mut self.rd, &mut self.buf).await?;
        let plain = self.recv.open_in_place(&mut body).ok()?;
        Some(EnvOwned::from(Envelope::decode(plain).ok()?))
    }
}

pub fn split(c: RawConn) -> (RawTx, RawRx) {
    let (rd, wr) = c.stream.into_split();
    (
        RawTx { wr, send: c.send },
        RawRx {
            rd,
            recv: c.recv,
            buf: c.buf,
        },
    )
}

// ---- recorded sessions ----

/// A legitimate session driven by hand, with every chunk of bytes the initiator wrote,
/// in order (M1, M3, then one chunk per envelope).
pub struct Recorded {
    pub written: Vec<Vec<u8>>,
    pub conn: RawConn,
}

/// Connects as `keys`, completes the handshake, sends `calls` (id, name, body) and
/// waits for their replies; records what it wrote.
pub async fn record_session(
    addr: SocketAddr,
    keys: &RawKeys,
    calls: &[(u64, &str, &[u8])],
) -> Recorded {
    let mut written = Vec::new();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let hello = Hello::new(1 << 20, 0);
    let mut hs = Handshake::with_options(true, &keys.private, PROLOGUE, None, &hello).unwrap();
    let m1 = framed(&hs.write_message(&[]).unwrap());
    s.write_all(&m1).await.unwrap();
    written.push(m1);
    let mut buf = Vec::new();
    let m2 = read_frame(&mut s, &mut buf).await.expect("M2");
    hs.read_message(&m2).unwrap();
    let m3 = framed(&hs.write_message(&hello.encode()).unwrap());
    s.write_all(&m3).await.unwrap();
    written.push(m3);
    let (send, recv) = hs.split().unwrap();
    let mut conn = RawConn {
        stream: s,
        send,
        recv,
        buf,
    };
    match conn.recv_env().await {
        Some(EnvOwned::Ping(_)) => {}
        other => panic!("expected the confirmation ping, got {other:?}"),
    }
    for &(id, name, body) in calls {
        let f = conn.seal_env(&Envelope::Call { id, name, body });
        conn.write(&f).await;
        written.push(f);
    }
    let mut replies = 0;
    while replies < calls.len() {
        match conn
            .recv_env()
            .await
            .expect("connection closed before the replies")
        {
            EnvOwned::Reply(..) => replies += 1,
            EnvOwned::Ping(n) => {
                let f = conn.seal_env(&Envelope::Pong { nonce: n });
                conn.write(&f).await;
            }
            _ => {}
        }
    }
    Recorded { written, conn }
}

// ---- forged announcements ----

/// A free UDP port on 127.0.0.1 (bound and released: good enough for one test run).
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// Sends one LAN announcement "`key` listens on TCP `tcp_port`" from 127.0.0.1 to
/// 127.255.255.255:`disc_port` (the receiver takes the IP from the datagram's source).
pub fn forge_announcement(key: Key, tcp_port: u16, disc_port: u16) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_broadcast(true).unwrap();
    let a = Announcement { tcp_port, key }.encode();
    s.send_to(&a, SocketAddr::from(([127, 255, 255, 255], disc_port)))
        .unwrap();
}

// ---- example binaries as child processes ----

/// Where `cargo test` put example `name` (next to the test binary's directory).
pub fn example_bin(name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os("PEERNET_EXAMPLES_DIR") {
        return PathBuf::from(p).join(name);
    }
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

/// An example process; killed (SIGKILL) and reaped on drop, so a failing test leaves
/// nothing behind.
pub struct ChildNode {
    pub child: Child,
    stdin: Option<ChildStdin>,
    rx: tokio::sync::mpsc::UnboundedReceiver<String>,
    pub lines: Vec<String>,
    pub key: Key,
    pub addr: SocketAddr,
}

impl ChildNode {
    /// Starts `bin` with `args`, waits for its `key` and `listening` lines.
    pub async fn spawn(bin: &std::path::Path, args: &[String]) -> ChildNode {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut c = ChildNode {
            child,
            stdin,
            rx,
            lines: Vec::new(),
            key: Key::from_bytes([0; 32]),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let k = c
            .wait_line("key line", Duration::from_secs(20), |l| {
                l.starts_with("key ")
            })
            .await;
        c.key = Key::from_hex(&k[4..]).unwrap();
        let l = c
            .wait_line("listening line", Duration::from_secs(20), |l| {
                l.starts_with("listening ")
            })
            .await;
        c.addr = l[10..].parse().unwrap();
        c
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line (after those already seen) satisfying `pred`, within `within`.
    pub async fn wait_line(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let r = tokio::time::timeout(within, async {
            loop {
                match self.rx.recv().await {
                    Some(l) => {
                        self.lines.push(l.clone());
                        if pred(&l) {
                            return l;
                        }
                    }
                    None => panic!("child exited before {what}; output: {:?}", self.lines),
                }
            }
        })
        .await;
        r.unwrap_or_else(|_| panic!("no {what} within {within:?}; output: {:?}", self.lines))
    }

    pub fn send(&mut self, cmd: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
    }

    /// Sends `cmd` and returns the number in the reply line starting with `prefix`.
    pub async fn query(&mut self, cmd: &str, prefix: &str) -> u64 {
        self.send(cmd);
        let p = format!("{prefix} ");
        let l = self
            .wait_line(prefix, Duration::from_secs(20), |l| l.starts_with(&p))
            .await;
        l[p.len()..].trim().parse().unwrap()
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        self.kill9();
    }
}
