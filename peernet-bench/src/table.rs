//! The printed tables: the ceilings, then PeerNet against them with the goals.

use std::fmt::Write;

use crate::liveness::first_backoff;
use crate::measure::Flavour;
use crate::peernet::HS_CLIENTS;
use crate::results::Results;

/// How a figure is printed.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// Seconds, printed in µs.
    Time,
    /// Per second, with a noun.
    Rate(&'static str),
    /// Bytes per second, printed in GB/s (10^9).
    Bandwidth,
    /// Bytes, printed in KiB.
    Size,
    /// Seconds, printed in ms.
    Millis,
}

fn group(n: f64) -> String {
    let s = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt(v: f64, u: Unit) -> String {
    match u {
        Unit::Time => format!("{:.1} µs", v * 1e6),
        Unit::Rate(noun) => format!("{} {noun}/s", group(v)),
        Unit::Bandwidth => format!("{:.2} GB/s", v / 1e9),
        Unit::Size => format!("{:.1} KiB", v / 1024.0),
        Unit::Millis => format!("{:.1} ms", v * 1e3),
    }
}

/// A goal, on the ratio PeerNet/ceiling or on the PeerNet figure itself.
#[derive(Debug, Clone, Copy)]
enum Goal {
    RatioAtMost(f64),
    RatioAtLeast(f64),
    AtLeast(f64),
    AtMost(f64),
    /// No goal: a row that explains another (PeerNet against the same work over raw TCP).
    Context,
}

struct Row {
    work: String,
    ceiling: Option<(String, f64)>,
    peernet: Option<f64>,
    unit: Unit,
    goal: Goal,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        let (_, c) = self.ceiling.as_ref()?;
        Some(self.peernet? / c)
    }

    fn goal_text(&self) -> String {
        match self.goal {
            Goal::RatioAtMost(x) => format!("≤ {x}×"),
            Goal::RatioAtLeast(x) => format!("≥ {x}×"),
            Goal::AtLeast(v) => format!("≥ {}", fmt(v, self.unit)),
            Goal::AtMost(v) => format!("≤ {}", fmt(v, self.unit)),
            Goal::Context => "(context)".into(),
        }
    }

    fn met(&self) -> &'static str {
        let ok = match self.goal {
            Goal::RatioAtMost(x) => self.ratio().map(|r| r <= x),
            Goal::RatioAtLeast(x) => self.ratio().map(|r| r >= x),
            Goal::AtLeast(v) => self.peernet.map(|p| p >= v),
            Goal::AtMost(v) => self.peernet.map(|p| p <= v),
            Goal::Context => return "–",
        };
        match ok {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        }
    }
}

fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

fn rows(r: &Results) -> Vec<Row> {
    let mut rows = Vec::new();
    for f in Flavour::ALL {
        let p = r.of(f);
        let t = f.name();
        let tcp = p.tcp_rtt;
        // Issue 21's goals: each a ratio to a ceiling of this run, or a figure.
        let (rtt_p50, pipe_goal) = match f {
            Flavour::Current => (1.25, None),
            Flavour::Multi => (1.5, Some(250_000.0)),
        };
        rows.push(Row {
            work: format!("call RTT p50, 64 B, 1 in flight [{t}]"),
            ceiling: tcp.map(|l| ("TCP ping-pong p50".into(), secs(l.p50))),
            peernet: p.call_rtt.map(|l| secs(l.p50)),
            unit: Unit::Time,
            goal: Goal::RatioAtMost(rtt_p50),
        });
        rows.push(Row {
            work: format!("call RTT p99, 64 B, 1 in flight [{t}]"),
            ceiling: tcp.map(|l| ("TCP ping-pong p99".into(), secs(l.p99))),
            peernet: p.call_rtt.map(|l| secs(l.p99)),
            unit: Unit::Time,
            goal: Goal::RatioAtMost(2.0),
        });
        match pipe_goal {
            // ct: a call costs two seals and two opens, all on the one core.
            None => rows.push(Row {
                work: format!("pipelined calls, 64 B, 64 in flight [{t}]"),
                ceiling: r
                    .ring_64
                    .map(|s| ("AEAD bound: ring 64 B seal rate ÷ 4".into(), s.msgs / 4.0)),
                peernet: p.call_rate,
                unit: Unit::Rate("calls"),
                goal: Goal::RatioAtLeast(0.5),
            }),
            Some(v) => rows.push(Row {
                work: format!("pipelined calls, 64 B, 64 in flight [{t}]"),
                ceiling: None,
                peernet: p.call_rate,
                unit: Unit::Rate("calls"),
                goal: Goal::AtLeast(v),
            }),
        }
        rows.push(Row {
            work: format!("pipelined calls, against TCP pipelined echo [{t}]"),
            ceiling: p.tcp_pipe.map(|v| ("TCP pipelined echo".into(), v)),
            peernet: p.call_rate,
            unit: Unit::Rate("calls"),
            goal: Goal::Context,
        });
        rows.push(Row {
            work: format!("pipelined calls, metrics on, against metrics off [{t}]"),
            ceiling: p
                .metrics_cost
                .map(|(_, off)| ("the same, metrics off".into(), off)),
            peernet: p.metrics_cost.map(|(on, _)| on),
            unit: Unit::Rate("calls"),
            goal: Goal::RatioAtLeast(0.97),
        });
        rows.push(Row {
            work: format!("send, 64 KiB bodies [{t}]"),
            ceiling: r
                .ring_64k
                .map(|s| ("ring seal 64 KiB, 1 core".into(), s.bytes)),
            peernet: p.send_bps,
            unit: Unit::Bandwidth,
            goal: Goal::Context,
        });
        rows.push(Row {
            work: format!("send, 64 KiB bodies, against the same work over TCP [{t}]"),
            ceiling: p
                .wire_bulk
                .map(|v| ("sealed frames over TCP, no node".into(), v)),
            peernet: p.send_bps,
            unit: Unit::Bandwidth,
            goal: Goal::RatioAtLeast(0.95),
        });
        rows.push(Row {
            work: format!("one stream, 64 KiB writes, against the same work over TCP [{t}]"),
            ceiling: p
                .wire_bulk
                .map(|v| ("sealed frames over TCP, no node".into(), v)),
            peernet: p.stream_bps,
            unit: Unit::Bandwidth,
            goal: Goal::RatioAtLeast(0.9),
        });
        rows.push(Row {
            work: format!("call RTT p99 while a stream saturates the link, against idle [{t}]"),
            ceiling: p
                .stream_calls
                .map(|(idle, _)| ("call RTT p99, idle link".into(), secs(idle.p99))),
            peernet: p.stream_calls.map(|(_, loaded)| secs(loaded.p99)),
            unit: Unit::Time,
            goal: Goal::RatioAtMost(3.0),
        });
        rows.push(Row {
            work: format!("handshakes: connect+disconnect, {HS_CLIENTS} clients [{t}]"),
            ceiling: r.snow_hs.map(|v| ("XX in memory, 1 thread".into(), v)),
            peernet: p.hs_rate,
            unit: Unit::Rate("hs"),
            goal: Goal::Context,
        });
        rows.push(Row {
            work: format!("handshakes, {HS_CLIENTS} clients, against the same work over TCP [{t}]"),
            ceiling: p
                .wire_hs
                .map(|v| ("XX + Ping/Pong + close over TCP, no node".into(), v)),
            peernet: p.hs_rate,
            unit: Unit::Rate("hs"),
            goal: Goal::RatioAtLeast(0.95),
        });
        if let Some(m) = p.memory {
            rows.push(Row {
                work: format!("handshakes: {} connects, 16 at once [{t}]", m.conns),
                ceiling: r.snow_hs.map(|v| ("XX in memory, 1 thread".into(), v)),
                peernet: Some(m.connect_rate),
                unit: Unit::Rate("hs"),
                goal: Goal::Context,
            });
        }
        let step = secs(first_backoff());
        let timed = [
            (
                "discovery: start of 2 nodes to first call",
                p.first_call,
                0.1,
            ),
            (
                "discovery over IPv6 loopback: start of 2 nodes to first call",
                p.first_call_v6,
                0.1,
            ),
            (
                "reconnect: peer restart (same port) to next call",
                p.restart,
                step + 0.05,
            ),
            (
                "reconnect, UDP discovery on: peer restart to next call",
                p.restart_udp,
                step + 0.05,
            ),
        ];
        for (what, l, goal) in timed {
            // At most 20 runs (`liveness::RUNS`): their 99th percentile is the worst run.
            for (stat, v) in [
                ("median", l.map(|l| l.p50)),
                ("worst run", l.map(|l| l.p99)),
            ] {
                rows.push(Row {
                    work: format!("{what}, {stat} [{t}]"),
                    ceiling: None,
                    peernet: v.map(secs),
                    unit: Unit::Millis,
                    goal: Goal::AtMost(goal),
                });
            }
        }
        rows.push(Row {
            work: format!(
                "RSS per idle connection, one end, {} conns [{t}]",
                p.memory.map_or(0, |m| m.conns)
            ),
            ceiling: None,
            peernet: p.memory.map(|m| m.per_conn_both_ends / 2.0),
            unit: Unit::Size,
            goal: Goal::AtMost(16.0 * 1024.0),
        });
        rows.push(Row {
            work: format!("RSS per idle node, not connected [{t}]"),
            ceiling: None,
            peernet: p.memory.map(|m| m.per_idle_node),
            unit: Unit::Size,
            goal: Goal::AtMost(64.0 * 1024.0),
        });
    }
    rows
}

fn ceiling_lines(r: &Results) -> Vec<(String, Option<String>, Option<String>)> {
    let both = |f: &dyn Fn(Flavour) -> Option<String>| (f(Flavour::Current), f(Flavour::Multi));
    let mut out = Vec::new();
    let mut per = |name: &str, f: &dyn Fn(Flavour) -> Option<String>| {
        let (a, b) = both(f);
        out.push((name.to_owned(), a, b));
    };
    per("TCP ping-pong 64 B, p50", &|f| {
        r.of(f).tcp_rtt.map(|l| fmt(secs(l.p50), Unit::Time))
    });
    per("TCP ping-pong 64 B, p99", &|f| {
        r.of(f).tcp_rtt.map(|l| fmt(secs(l.p99), Unit::Time))
    });
    per("TCP pipelined 64 B echo, 64 in flight", &|f| {
        r.of(f).tcp_pipe.map(|v| fmt(v, Unit::Rate("msg")))
    });
    per("TCP bulk one direction, 64 KiB writes", &|f| {
        r.of(f).tcp_bulk.map(|v| fmt(v, Unit::Bandwidth))
    });
    per(
        "Sealed 64 KiB frames over TCP, one direction (peernet-proto, no node)",
        &|f| r.of(f).wire_bulk.map(|v| fmt(v, Unit::Bandwidth)),
    );
    per(
        "XX + Ping/Pong + Goodbye + close over TCP, 8 clients (peernet-proto, no node)",
        &|f| r.of(f).wire_hs.map(|v| fmt(v, Unit::Rate("hs"))),
    );
    let single = |name: &str, v: Option<String>| (name.to_owned(), v, None);
    let seal = |s: Option<crate::crypto::Seal>, small: bool| {
        s.map(|s| {
            if small {
                fmt(s.msgs, Unit::Rate("msg"))
            } else {
                fmt(s.bytes, Unit::Bandwidth)
            }
        })
    };
    out.push(single(
        "ChaCha20-Poly1305 seal 64 B, ring (PeerNet's)",
        seal(r.ring_64, true),
    ));
    out.push(single(
        "ChaCha20-Poly1305 seal 64 KiB, ring (PeerNet's)",
        seal(r.ring_64k, false),
    ));
    out.push(single(
        "ChaCha20-Poly1305 seal 64 B, chacha20poly1305 crate",
        seal(r.rc_64, true),
    ));
    out.push(single(
        "ChaCha20-Poly1305 seal 64 KiB, chacha20poly1305 crate",
        seal(r.rc_64k, false),
    ));
    out.push(single(
        "X25519 DH (x25519-dalek)",
        r.x25519.map(|v| fmt(v, Unit::Rate("op"))),
    ));
    out.push(single(
        "Noise XX handshake, both sides, 1 thread",
        r.snow_hs.map(|v| fmt(v, Unit::Rate("hs"))),
    ));
    out
}

/// Both tables as Markdown.
pub fn render(r: &Results) -> String {
    let mut s = String::new();
    let na = || "–".to_owned();
    let _ = writeln!(s, "### Ceilings (raw, measured in this run)\n");
    let _ = writeln!(s, "| work | current-thread | multi-thread |");
    let _ = writeln!(s, "|---|---:|---:|");
    for (name, ct, mt) in ceiling_lines(r) {
        let (ct, mt) = match (ct, mt) {
            (Some(v), None) if !name.contains("TCP") => (v, "(no runtime)".to_owned()),
            (a, b) => (a.unwrap_or_else(na), b.unwrap_or_else(na)),
        };
        let _ = writeln!(s, "| {name} | {ct} | {mt} |");
    }
    let _ = writeln!(s, "\n### PeerNet against the ceilings\n");
    let _ = writeln!(s, "| work | ceiling | PeerNet | ratio | goal | met? |");
    let _ = writeln!(s, "|---|---|---:|---:|---|---|");
    for row in rows(r) {
        if row.ceiling.is_none() && row.peernet.is_none() {
            continue;
        }
        let ceiling = row
            .ceiling
            .as_ref()
            .map_or_else(na, |(label, v)| format!("{label}: {}", fmt(*v, row.unit)));
        let peernet = row.peernet.map_or_else(na, |v| fmt(v, row.unit));
        let ratio = row.ratio().map_or_else(na, |x| format!("{x:.2}×"));
        let _ = writeln!(
            s,
            "| {} | {ceiling} | {peernet} | {ratio} | {} | {} |",
            row.work,
            row.goal_text(),
            row.met()
        );
    }
    for f in Flavour::ALL {
        if let Some(m) = r.of(f).memory {
            let _ = writeln!(
                s,
                "\n[{}] memory detail: {} per connection counting both ends (both nodes are in \
                 this process); an idle unconnected client node costs {}.",
                f.name(),
                fmt(m.per_conn_both_ends, Unit::Size),
                fmt(m.per_idle_node, Unit::Size)
            );
        }
    }
    if !r.errors.is_empty() {
        let _ = writeln!(s, "\nFailed measurements:");
        for e in &r.errors {
            let _ = writeln!(s, "- {e}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_and_units() {
        assert_eq!(group(1234567.4), "1,234,567");
        assert_eq!(group(999.0), "999");
        assert_eq!(fmt(2.5e-5, Unit::Time), "25.0 µs");
        assert_eq!(fmt(1.5e9, Unit::Bandwidth), "1.50 GB/s");
        assert_eq!(fmt(2048.0, Unit::Size), "2.0 KiB");
    }

    #[test]
    fn goal_rows_judge_and_context_rows_do_not() {
        let mut r = Results::default();
        r.ct.wire_hs = Some(2000.0);
        r.ct.hs_rate = Some(1500.0);
        let text = render(&r);
        let row = text
            .lines()
            .find(|l| l.contains("against the same work over TCP [ct]"))
            .unwrap_or_default();
        assert!(row.contains("| 0.75× | ≥ 0.95× | **no** |"), "{row}");
        let context = text
            .lines()
            .find(|l| l.starts_with("| handshakes: connect+disconnect"))
            .unwrap_or_default();
        assert!(context.ends_with("| (context) | – |"), "{context}");
    }

    #[test]
    fn empty_results_render_without_goals_met() {
        let text = render(&Results::default());
        assert!(text.contains("| work | ceiling | PeerNet | ratio | goal | met? |"));
        assert!(!text.contains("| yes |"));
        assert!(!text.contains("[ct]"), "rows without data are left out");
    }
}
