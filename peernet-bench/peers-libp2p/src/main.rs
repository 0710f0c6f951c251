//! `peers-libp2p [--quick] [--flavour ct|mt] [--only rtt,pipe,send,hs] [--lazy]`: rust-libp2p (TCP + Noise XX + Yamux +
//! request-response, raw-bytes codec) on the work of peernet-bench's `rtt`, `pipe`,
//! `send` and `hs` rows, two or more swarms in this process over 127.0.0.1 only.
//! Measurement only: run by scripts/bench-peers.sh, never by CI. Prints one
//! machine-readable line per figure, in peernet-bench's `--lines` format:
//! `row <impl> <flavour> <name> <value in SI units>`.

mod node;
mod rows;

use std::process::ExitCode;

/// The rows `--only` can pick, peernet-bench's group names.
const GROUPS: [&str; 4] = ["rtt", "pipe", "send", "hs"];

fn main() -> ExitCode {
    let mut quick = false;
    let mut only: Vec<String> = Vec::new();
    let mut flavours = vec!["ct", "mt"];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--only" => match args.next() {
                Some(list) => {
                    for g in list.split(',').filter(|g| !g.is_empty()) {
                        if !GROUPS.contains(&g) {
                            return usage();
                        }
                        only.push(g.to_owned());
                    }
                }
                None => return usage(),
            },
            "--lazy" => node::LAZY.store(true, std::sync::atomic::Ordering::Relaxed),
            "--flavour" => match args.next().as_deref() {
                Some("ct") => flavours = vec!["ct"],
                Some("mt") => flavours = vec!["mt"],
                _ => return usage(),
            },
            _ => return usage(),
        }
    }
    let b = rows::Budget::new(quick);
    let wants = |g: &str| only.is_empty() || only.iter().any(|o| o == g);
    let mut failed = false;
    for f in flavours {
        let rt = if f == "ct" {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
        };
        let rt = match rt {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("[{f}] tokio runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        rt.block_on(async {
            let mut put = |name: &str, v: Result<f64, String>| match v {
                Ok(v) => println!("row rust-libp2p {f} {name} {v:e}"),
                Err(e) => {
                    eprintln!("[{f}] {name} FAILED: {e}");
                    failed = true;
                }
            };
            if wants("rtt") {
                eprintln!("[{f}] rust-libp2p: call RTT");
                match rows::rtt(b).await {
                    Ok((p50, p99)) => {
                        put("rtt_p50_s", Ok(p50));
                        put("rtt_p99_s", Ok(p99));
                    }
                    Err(e) => put("rtt_p50_s", Err(e)),
                }
            }
            if wants("pipe") {
                eprintln!("[{f}] rust-libp2p: pipelined calls");
                put("pipe_calls_per_s", rows::pipelined(b).await);
            }
            if wants("send") {
                eprintln!("[{f}] rust-libp2p: bulk 64 KiB");
                put("send_bytes_per_s", rows::bulk(b).await);
            }
            if wants("hs") {
                eprintln!("[{f}] rust-libp2p: new connections");
                put("hs_per_s", rows::connections(b).await);
            }
        });
        // Spawned swarm tasks end with the runtime.
        rt.shutdown_timeout(std::time::Duration::from_secs(2));
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: peers-libp2p [--quick] [--flavour ct|mt] [--only rtt,pipe,send,hs] [--lazy]\n  --lazy  multistream-select V1Lazy for streams (default: libp2p's V1)");
    ExitCode::from(2)
}
