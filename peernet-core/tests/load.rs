//! Load (issue 7): one node with 200 connected peers serving 100,000 calls, and one
//! node holding 10,000 idle connections. The node under load is the `hardening-node`
//! example in a child process, so its memory (VmRSS from /proc/PID/status) is its own;
//! the peers live in this process.
//!
//! The 200-peer test takes ~6 s in a debug build and runs with the other tests; the
//! 10,000-connection one is `#[ignore]`d (heavy) and run in release by
//! `scripts/ci/hardening.sh` (`cargo test --release -p peernet-core --test load --
//! --ignored`), which builds the example first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "common/hostile_peer.rs"]
mod hostile_peer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::raw::*;
use common::*;
use hostile_peer::*;
use peernet_core::{Key, Node, TRUST_FILE};
use peernet_proto::trustfile::{self, TrustEntry};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const PEERS: usize = 200;
const CALLS: usize = 100_000;
/// Calls in flight per peer during the call phase.
const PER_PEER_CONCURRENCY: usize = 4;
/// Held calls per peer for the in-flight memory reading.
const HELD_PER_PEER: usize = 25;
const IDLE: usize = 10_000;

/// The example binary; `None` (with the reason printed) when it is not built, unless
/// `PEERNET_REQUIRE_EXAMPLES` is set (the CI script sets it): then that is a failure.
fn bin() -> Option<PathBuf> {
    let b = example_bin("hardening-node");
    if b.exists() {
        return Some(b);
    }
    let why = format!(
        "{} missing: build it first (cargo build [--release] -p peernet-core --example \
         hardening-node; `cargo test -p peernet-core` builds it), or run \
         scripts/ci/hardening.sh",
        b.display()
    );
    assert!(
        std::env::var_os("PEERNET_REQUIRE_EXAMPLES").is_none(),
        "{why}"
    );
    println!("skipped: {why}");
    None
}

/// Writes a trust store trusting `keys` (faster than 10,000 `trust` calls, each of
/// which rewrites the file).
fn write_trust(dir: &Path, keys: &[Key]) {
    std::fs::create_dir_all(dir).unwrap();
    let entries: Vec<TrustEntry> = keys
        .iter()
        .map(|k| TrustEntry {
            key: *k,
            label: String::new(),
            added_at: 1,
            rpc: false,
            addresses: Vec::new(),
            manual: Vec::new(),
        })
        .collect();
    std::fs::write(dir.join(TRUST_FILE), trustfile::render(&entries)).unwrap();
}

async fn wait_count(child: &mut ChildNode, cmd: &str, prefix: &str, want: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let n = child.query(cmd, prefix).await;
        if n == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{prefix}: {n}, expected {want} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kib_per(delta_kib: i64, n: usize) -> String {
    format!("{:.1} KiB", delta_kib as f64 / n as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_200_peers_100k_calls() {
    let Some(bin) = bin() else { return };
    let t0 = Instant::now();
    let mut peers = Vec::new();
    for i in 0..PEERS {
        let mut c = config(&format!("load{i}"));
        c.listen = None;
        c.heartbeat_interval = Duration::from_secs(5);
        c.heartbeat_timeout = Duration::from_secs(30);
        peers.push(Arc::new(Node::start(c).await.unwrap()));
    }
    let data = tempdir("loadsrv");
    write_trust(&data, &peers.iter().map(|p| p.key()).collect::<Vec<_>>());
    let mut server = ChildNode::spawn(
        &bin,
        &[
            "--data".into(),
            data.display().to_string(),
            "--heartbeat-ms".into(),
            "5000".into(),
        ],
    )
    .await;
    let pid = server.pid();
    let rss0 = rss_kib(Some(pid)) as i64;

    // Connect all, at most 16 handshakes at once: every client is on 127.0.0.1, and one
    // source address gets a quarter of the node's 64 handshake slots.
    let connect_start = Instant::now();
    let gate = Arc::new(Semaphore::new(16));
    let mut set = JoinSet::new();
    for p in &peers {
        let (p, k, a, gate) = (Arc::clone(p), server.key, server.addr, Arc::clone(&gate));
        set.spawn(async move {
            let _g = gate.acquire().await.unwrap();
            p.trust(&k, None).unwrap();
            p.connect(&k, a, Duration::from_secs(20)).await.unwrap();
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    wait_count(
        &mut server,
        "count",
        "connections",
        PEERS as u64,
        Duration::from_secs(30),
    )
    .await;
    let connect_time = connect_start.elapsed();
    let rss1 = rss_kib(Some(pid)) as i64;

    // 100,000 calls, spread evenly, PER_PEER_CONCURRENCY in flight per peer.
    let errors = Arc::new(AtomicU64::new(0));
    let calls_start = Instant::now();
    let per_task = CALLS / PEERS / PER_PEER_CONCURRENCY;
    let mut set = JoinSet::new();
    for (i, p) in peers.iter().enumerate() {
        for j in 0..PER_PEER_CONCURRENCY {
            let (p, k, errors) = (Arc::clone(p), server.key, Arc::clone(&errors));
            set.spawn(async move {
                let mut done = 0usize;
                for n in 0..per_task {
                    let body = format!("{i}:{j}:{n}");
                    match p
                        .call(&k, "echo", body.as_bytes(), Duration::from_secs(60))
                        .await
                    {
                        Ok(r) if r == body.as_bytes() => done += 1,
                        Ok(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                                println!("call error: {e}");
                            }
                        }
                    }
                }
                done
            });
        }
    }
    let mut done = 0usize;
    while let Some(r) = set.join_next().await {
        done += r.unwrap();
    }
    let calls_time = calls_start.elapsed();
    let rss2 = rss_kib(Some(pid)) as i64;

    // Memory per call in flight: HELD_PER_PEER `hold` calls per peer wait in the node.
    let held = PEERS * HELD_PER_PEER;
    let mut set = JoinSet::new();
    for p in &peers {
        for _ in 0..HELD_PER_PEER {
            let (p, k) = (Arc::clone(p), server.key);
            set.spawn(async move {
                p.call(&k, "hold", &[0u8; 64], Duration::from_secs(60))
                    .await
            });
        }
    }
    wait_count(
        &mut server,
        "inflight",
        "inflight",
        held as u64,
        Duration::from_secs(60),
    )
    .await;
    let rss3 = rss_kib(Some(pid)) as i64;
    server.send("release");
    let mut released = 0;
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), b"released");
        released += 1;
    }
    let errs = errors.load(Ordering::Relaxed);
    println!(
        "load: {PEERS} peers connected in {connect_time:?}; {done} of {CALLS} calls ok, {errs} \
         errors, in {calls_time:?} ({:.0} calls/s); node RSS: {:.1} MiB idle, {:.1} MiB with \
         {PEERS} connections ({} per connection), {:.1} MiB after the calls, {:.1} MiB with \
         {held} calls in flight ({} per in-flight call, 64-byte bodies); total {:?}",
        done as f64 / calls_time.as_secs_f64(),
        mib(rss0),
        mib(rss1),
        kib_per(rss1 - rss0, PEERS),
        mib(rss2),
        mib(rss3),
        kib_per(rss3 - rss2, held),
        t0.elapsed()
    );
    assert_eq!(errs, 0, "calls failed");
    assert_eq!(done, CALLS);
    assert_eq!(released, held);
    drop(server);
    for p in &peers {
        p.shutdown().await;
        let _ = std::fs::remove_dir_all(&p.config().data_dir);
    }
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "heavy: run in release by scripts/ci/hardening.sh"]
async fn idle_10k_connections() {
    let limit = fd_limit();
    // Ours: one socket per connection; the child's the same (it inherits the limit).
    if limit < (IDLE + 200) as u64 {
        println!(
            "idle connections test skipped: open-file limit {limit} < {} (raise it with \
             `ulimit -n`)",
            IDLE + 200
        );
        return;
    }
    let Some(bin) = bin() else { return };
    let t0 = Instant::now();
    let keys: Vec<Arc<RawKeys>> = (0..IDLE).map(|_| Arc::new(RawKeys::new())).collect();
    let data = tempdir("idlesrv");
    write_trust(&data, &keys.iter().map(|k| k.public).collect::<Vec<_>>());
    let mut server = ChildNode::spawn(
        &bin,
        &[
            "--data".into(),
            data.display().to_string(),
            // No pings while the test runs: the raw peers do not answer them.
            "--heartbeat-ms".into(),
            "600000".into(),
        ],
    )
    .await;
    let pid = server.pid();
    let rss0 = rss_kib(Some(pid)) as i64;
    let own0 = rss_kib(None) as i64;
    let start = Instant::now();
    let gate = Arc::new(Semaphore::new(16)); // one source: a quarter of 64 slots
    let mut set = JoinSet::new();
    for k in &keys {
        let (k, a, gate) = (Arc::clone(k), server.addr, Arc::clone(&gate));
        set.spawn(async move {
            let _g = gate.acquire().await.unwrap();
            tokio::time::timeout(Duration::from_secs(30), RawConn::connect(a, &k))
                .await
                .expect("handshake timed out")
        });
    }
    let mut conns = Vec::with_capacity(IDLE);
    while let Some(r) = set.join_next().await {
        conns.push(r.unwrap());
    }
    let connect_time = start.elapsed();
    wait_count(
        &mut server,
        "count",
        "connections",
        IDLE as u64,
        Duration::from_secs(60),
    )
    .await;
    let rss1 = rss_kib(Some(pid)) as i64;
    let own1 = rss_kib(None) as i64;
    // Still serving: a few of them ping and get their pongs.
    let mut alive = 0;
    for (i, c) in conns.iter_mut().step_by(IDLE / 10).enumerate() {
        if c.alive(i as u64 + 1).await {
            alive += 1;
        }
    }
    println!(
        "idle: {IDLE} connections (fd limit {limit}) established in {connect_time:?}; node RSS \
         {:.1} MiB -> {:.1} MiB: {} per idle connection; raw-peer side in the test process: \
         {} per connection; {alive}/10 sampled connections answered a ping; total {:?}",
        mib(rss0),
        mib(rss1),
        kib_per(rss1 - rss0, IDLE),
        kib_per(own1 - own0, IDLE),
        t0.elapsed()
    );
    assert_eq!(conns.len(), IDLE);
    assert_eq!(alive, 10);
    drop(conns);
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}
