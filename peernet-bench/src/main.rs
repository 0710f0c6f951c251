//! `cargo run --release -p peernet-bench [-- --quick]`: measures, in one run, this
//! machine's ceilings (raw tokio TCP, ChaCha20-Poly1305, X25519, Noise XX) and PeerNet
//! on the same work through the public `peernet-core` API, over 127.0.0.1 only, and
//! prints `work | ceiling | PeerNet | ratio | goal | met?`. Every loop is bounded in
//! count and time. See docs/benchmarks.md.

mod crypto;
mod lines;
mod liveness;
mod measure;
mod memory;
mod nodes;
mod opts;
mod peernet;
mod results;
mod streams;
mod table;
mod tcp;
mod wire;

use std::process::ExitCode;
use std::time::Instant;

use measure::{Budget, Flavour};
use opts::{Opts, USAGE};
use results::Results;

fn main() -> ExitCode {
    let opts = match Opts::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    if let Some(f) = opts.memory_child {
        return memory_child(f, opts.conns);
    }
    let started = Instant::now();
    println!("{}", machine(&opts));
    let mut r = Results::default();
    let b = Budget::new(opts.quick);
    if !opts.no_ceilings && (opts.wants("crypto") || opts.wants("send") || opts.wants("hs")) {
        crypto_ceilings(&opts, b, &mut r);
    }
    for &f in &opts.flavours {
        if let Err(e) = runtime_work(&opts, b, f, &mut r) {
            r.errors.push(format!("[{}] runtime: {e}", f.name()));
        }
    }
    if opts.wants("mem") {
        for &f in &opts.flavours {
            let conns = memory::feasible_conns(opts.conns);
            eprintln!(
                "[{}] memory: {conns} idle connections (child process)",
                f.name()
            );
            let m = memory::in_child(f, conns);
            r.of_mut(f).memory = r.keep(&format!("[{}] memory", f.name()), m);
        }
    }
    nodes::cleanup();
    println!("{}", table::render(&r));
    if opts.lines {
        print!("{}", lines::render(&r));
    }
    println!(
        "total time {:.1} s; load average after: {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    if r.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn crypto_ceilings(opts: &Opts, b: Budget, r: &mut Results) {
    if opts.wants("crypto") || opts.wants("send") {
        eprintln!("ceiling: ChaCha20-Poly1305 seal");
        r.ring_64k = r.keep("ring seal 64 KiB", crypto::seal_ring(b, 64 * 1024));
    }
    if opts.wants("crypto") {
        r.ring_64 = r.keep("ring seal 64 B", crypto::seal_ring(b, 64));
        r.rc_64 = r.keep("rustcrypto seal 64 B", crypto::seal_rustcrypto(b, 64));
        r.rc_64k = r.keep(
            "rustcrypto seal 64 KiB",
            crypto::seal_rustcrypto(b, 64 * 1024),
        );
        eprintln!("ceiling: X25519");
        r.x25519 = Some(crypto::x25519(b));
    }
    if opts.wants("crypto") || opts.wants("hs") {
        eprintln!("ceiling: Noise XX handshakes in memory");
        r.snow_hs = r.keep("XX handshakes", crypto::handshakes(b.capped(200_000)));
    }
}

/// Everything that runs on a tokio runtime of flavour `f`.
fn runtime_work(opts: &Opts, b: Budget, f: Flavour, r: &mut Results) -> std::io::Result<()> {
    let rt = f.runtime()?;
    let t = f.name();
    rt.block_on(async {
        if opts.wants("rtt") {
            eprintln!("[{t}] ceiling: TCP ping-pong; PeerNet: call RTT");
            if !opts.no_ceilings {
                let v = tcp::ping_pong(b).await;
                r.of_mut(f).tcp_rtt = r.keep(&format!("[{t}] TCP ping-pong"), v);
            }
            let v = peernet::call_rtt(b).await;
            r.of_mut(f).call_rtt = r.keep(&format!("[{t}] call RTT"), v);
        }
        if opts.wants("pipe") {
            eprintln!("[{t}] ceiling: TCP pipelined; PeerNet: pipelined calls");
            if !opts.no_ceilings {
                let v = tcp::pipelined(b).await;
                r.of_mut(f).tcp_pipe = r.keep(&format!("[{t}] TCP pipelined"), v);
            }
            let v = peernet::call_rate(b).await;
            r.of_mut(f).call_rate = r.keep(&format!("[{t}] pipelined calls"), v);
        }
        if opts.wants("metrics") {
            eprintln!("[{t}] PeerNet: pipelined calls, metrics on vs off");
            let v = peernet::metrics_cost(b).await;
            r.of_mut(f).metrics_cost = r.keep(&format!("[{t}] metrics on/off"), v);
        }
        if opts.wants("send") {
            eprintln!("[{t}] ceiling: TCP bulk; PeerNet: send 64 KiB");
            if !opts.no_ceilings {
                let v = tcp::bulk(b).await;
                r.of_mut(f).tcp_bulk = r.keep(&format!("[{t}] TCP bulk"), v);
                let v = wire::sealed_bulk(b.capped(1_000_000)).await;
                r.of_mut(f).wire_bulk = r.keep(&format!("[{t}] sealed frames over TCP"), v);
            }
            let v = peernet::send_throughput(b.capped(1_000_000)).await;
            r.of_mut(f).send_bps = r.keep(&format!("[{t}] send 64 KiB"), v);
        }
        if opts.wants("stream") {
            eprintln!("[{t}] PeerNet: one stream of 64 KiB writes; calls while it runs");
            let v = streams::stream_throughput(b.capped(1_000_000)).await;
            r.of_mut(f).stream_bps = r.keep(&format!("[{t}] stream 64 KiB writes"), v);
            let v = streams::call_latency_under_stream(b).await;
            r.of_mut(f).stream_calls = r.keep(&format!("[{t}] calls under a stream"), v);
        }
        if opts.wants("hs") {
            eprintln!("[{t}] ceiling: XX over TCP; PeerNet: connect+disconnect loops");
            if !opts.no_ceilings {
                let v = wire::handshakes(b).await;
                r.of_mut(f).wire_hs = r.keep(&format!("[{t}] XX over TCP"), v);
            }
            let v = peernet::handshake_rate(b).await;
            r.of_mut(f).hs_rate = r.keep(&format!("[{t}] handshakes"), v);
        }
        if opts.wants("disc") {
            eprintln!("[{t}] PeerNet: discovery to first call; restart to next call");
            let v = liveness::discovery_to_first_call(b).await;
            r.of_mut(f).first_call = r.keep(&format!("[{t}] discovery to first call"), v);
            let v = liveness::discovery_to_first_call_v6(b).await;
            r.of_mut(f).first_call_v6 = r.keep(&format!("[{t}] discovery to first call, IPv6"), v);
            let v = liveness::restart_to_call(b, false).await;
            r.of_mut(f).restart = r.keep(&format!("[{t}] restart to call"), v);
            let v = liveness::restart_to_call(b, true).await;
            r.of_mut(f).restart_udp = r.keep(&format!("[{t}] restart to call, UDP"), v);
        }
    });
    Ok(())
}

fn memory_child(f: Flavour, conns: usize) -> ExitCode {
    let rt = match f.runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(memory::measure(conns));
    drop(rt);
    nodes::cleanup();
    match res {
        Ok(m) => {
            println!("{}", m.to_line());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("memory measurement: {e}");
            ExitCode::FAILURE
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn machine(opts: &Opts) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "## peernet-bench {} ({} run)\n\nmachine: {cpus} CPUs, {model}; load average before: {}; \
         peernet-core {}\n",
        env!("CARGO_PKG_VERSION"),
        if opts.quick { "--quick" } else { "full" },
        loadavg(),
        peernet_core::VERSION
    )
}
