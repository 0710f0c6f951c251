//! Memory per idle authenticated connection. Runs in a child process (a fresh heap, so
//! memory freed by earlier measurements cannot hide the cost): N client nodes, one
//! server node, one connection each (spec 5.1 keeps one per pair of nodes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use peernet_core::{Error, Node, Result};
use tokio::task::JoinSet;

use crate::measure::{open_files_limit, rss_bytes, Flavour};
use crate::nodes::{self, T};

/// Connections opened by default.
pub const CONNS: usize = 1000;
/// Dials in progress at once: one source address gets a quarter of the server's 64
/// handshake slots.
const PARALLEL_DIALS: usize = 16;

/// What the child reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryReport {
    /// Connections measured.
    pub conns: usize,
    /// RSS growth per connection, both ends together (both live in this process).
    pub per_conn_both_ends: f64,
    /// RSS growth per client node before it connected (identity, tables, channels).
    pub per_idle_node: f64,
    /// Connections established per second while opening them, `PARALLEL_DIALS` at once.
    pub connect_rate: f64,
}

impl MemoryReport {
    /// The line the child prints and the parent parses.
    pub fn to_line(self) -> String {
        format!(
            "MEMORY conns={} per_conn_both_ends={:.0} per_idle_node={:.0} connect_rate={:.1}",
            self.conns, self.per_conn_both_ends, self.per_idle_node, self.connect_rate
        )
    }

    /// Parses [`MemoryReport::to_line`] output (the first line starting `MEMORY`).
    pub fn parse(out: &str) -> Option<MemoryReport> {
        let line = out.lines().find(|l| l.starts_with("MEMORY "))?;
        let field = |name: &str| -> Option<f64> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?
                .parse()
                .ok()
        };
        Some(MemoryReport {
            conns: field("conns")? as usize,
            per_conn_both_ends: field("per_conn_both_ends")?,
            per_idle_node: field("per_idle_node")?,
            connect_rate: field("connect_rate")?,
        })
    }
}

/// Connections this process can hold: two descriptors each, with headroom.
pub fn feasible_conns(want: usize) -> usize {
    let limit = open_files_limit().unwrap_or(1024) as usize;
    want.min(limit.saturating_sub(128) / 2)
}

/// The child's work: measure and return the report.
pub async fn measure(conns: usize) -> Result<MemoryReport> {
    let rss = || rss_bytes().ok_or_else(|| Error::Internal("cannot read /proc/self/statm".into()));
    let srv = nodes::start(true).await?;
    let saddr = nodes::addr(&srv)?;
    let skey = srv.key();
    let before_nodes = rss()?;
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        let c = nodes::start(false).await?;
        nodes::mutual_trust(&c, &srv)?;
        clients.push(Arc::new(c));
    }
    let before = rss()?;
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for chunk in clients.chunks(conns.div_ceil(PARALLEL_DIALS).max(1)) {
        let chunk: Vec<Arc<Node>> = chunk.to_vec();
        tasks.spawn(async move {
            for c in chunk {
                c.connect(&skey, saddr, T).await?;
            }
            Ok::<(), Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| Error::Internal(e.to_string()))??;
    }
    let connect_time = start.elapsed();
    // The server registers each connection as the client receives its confirmation;
    // wait (bounded) until it holds all of them.
    let deadline = Instant::now() + T;
    while srv.connection_count() < conns {
        if Instant::now() > deadline {
            return Err(Error::Timeout);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let after = rss()?;
    let report = MemoryReport {
        conns,
        per_conn_both_ends: after.saturating_sub(before) as f64 / conns as f64,
        per_idle_node: before.saturating_sub(before_nodes) as f64 / conns as f64,
        connect_rate: conns as f64 / connect_time.as_secs_f64().max(1e-9),
    };
    for c in &clients {
        c.shutdown().await;
    }
    srv.shutdown().await;
    Ok(report)
}

/// Runs the measurement in a child process of this binary and parses its report.
pub fn in_child(flavour: Flavour, conns: usize) -> std::result::Result<MemoryReport, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let out = std::process::Command::new(exe)
        .args([
            "--memory-child",
            flavour.name(),
            "--conns",
            &conns.to_string(),
        ])
        .output()
        .map_err(|e| format!("spawning the memory child: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match MemoryReport::parse(&stdout) {
        Some(r) if out.status.success() => Ok(r),
        _ => Err(format!(
            "memory child failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_line_round_trips() {
        let r = MemoryReport {
            conns: 1000,
            per_conn_both_ends: 20480.0,
            per_idle_node: 5000.0,
            connect_rate: 1234.5,
        };
        assert_eq!(
            MemoryReport::parse(&format!("noise\n{}\n", r.to_line())),
            Some(r)
        );
        assert_eq!(MemoryReport::parse("nothing"), None);
    }
}
