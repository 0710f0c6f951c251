//! OpenMetrics text exposition of a [`NodeMetrics`] snapshot (a small encoder of our
//! own: about a hundred lines instead of a dependency). Labels are fixed sets (result,
//! reason, direction, status) and handler names, which the program registers; never a
//! peer key.

use std::fmt::Write;

use crate::metrics::{HandlerMetrics, NodeMetrics, LATENCY_BUCKETS_US};

/// Escapes a label value (OpenMetrics: backslash, double quote, newline).
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
        let _ = writeln!(self.0, "# HELP {name} {help}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {v}");
    }

    fn counter(&mut self, name: &str, help: &str, v: u64) {
        self.family(name, "counter", help);
        self.sample(&format!("{name}_total"), &[], v);
    }

    fn gauge(&mut self, name: &str, help: &str, v: u64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], v);
    }

    fn labelled(&mut self, name: &str, help: &str, label: &str, rows: &[(&str, u64)]) {
        self.family(name, "counter", help);
        for (l, v) in rows {
            self.sample(&format!("{name}_total"), &[(label, l)], v);
        }
    }
}

/// Renders `m` as OpenMetrics text (ends with `# EOF`).
pub(crate) fn render(m: &NodeMetrics) -> String {
    let mut o = Out(String::with_capacity(4096));
    o.labelled(
        "peernet_handshakes",
        "Handshakes by result.",
        "result",
        &[
            ("ok", m.handshakes_ok),
            ("untrusted", m.handshakes_untrusted),
            ("timeout", m.handshakes_timeout),
            ("failed", m.handshakes_failed),
            ("refused", m.handshakes_refused),
        ],
    );
    o.gauge(
        "peernet_connections_open",
        "Authenticated connections open.",
        m.connections_open,
    );
    o.gauge(
        "peernet_peers_connected",
        "Peers with at least one connection.",
        m.peers_connected,
    );
    o.counter(
        "peernet_reconnects",
        "Connections to a peer that had been connected before.",
        m.reconnects,
    );
    o.counter(
        "peernet_duplicates",
        "Duplicate connections resolved.",
        m.duplicates,
    );
    o.labelled(
        "peernet_discovery_datagrams",
        "Discovery datagrams received (in) and announcements sent (out).",
        "direction",
        &[("in", m.discovery_in), ("out", m.discovery_out)],
    );
    o.labelled(
        "peernet_discovery_dropped",
        "Discovery datagrams dropped, by reason.",
        "reason",
        &[
            ("rate_limited", m.discovery_dropped_rate_limited),
            ("malformed", m.discovery_dropped_malformed),
            ("table_full", m.discovery_dropped_table_full),
        ],
    );
    o.labelled(
        "peernet_calls",
        "Calls received (in) and started (out).",
        "direction",
        &[("in", m.calls_in), ("out", m.calls_out)],
    );
    o.labelled(
        "peernet_sends",
        "Sends received (in) and queued (out).",
        "direction",
        &[("in", m.sends_in), ("out", m.sends_out)],
    );
    o.counter(
        "peernet_overloaded",
        "Overloaded answers sent.",
        m.overloaded,
    );
    o.labelled(
        "peernet_bytes",
        "Bytes on authenticated connections, frame headers included.",
        "direction",
        &[("in", m.bytes_in), ("out", m.bytes_out)],
    );
    o.labelled(
        "peernet_frames",
        "Frames on authenticated connections.",
        "direction",
        &[("in", m.frames_in), ("out", m.frames_out)],
    );
    handlers(&mut o, &m.handlers);
    o.0.push_str("# EOF\n");
    o.0
}

fn handlers(o: &mut Out, hs: &[HandlerMetrics]) {
    o.family(
        "peernet_handler_calls",
        "counter",
        "Calls received, by handler name.",
    );
    for h in hs {
        o.sample(
            "peernet_handler_calls_total",
            &[("handler", &h.name)],
            h.calls,
        );
    }
    o.family(
        "peernet_handler_sends",
        "counter",
        "Sends received, by handler name.",
    );
    for h in hs {
        o.sample(
            "peernet_handler_sends_total",
            &[("handler", &h.name)],
            h.sends,
        );
    }
    o.family(
        "peernet_handler_errors",
        "counter",
        "Calls answered with an error, by handler name and status.",
    );
    for h in hs {
        for (status, v) in [
            ("no_such_handler", h.no_such_handler),
            ("forbidden", h.forbidden),
            ("handler_failed", h.handler_failed),
            ("overloaded", h.overloaded),
        ] {
            let labels = [("handler", h.name.as_str()), ("status", status)];
            o.sample("peernet_handler_errors_total", &labels, v);
        }
    }
    o.family(
        "peernet_handler_latency_seconds",
        "histogram",
        "Time from reading a call to queuing its answer, by handler name.",
    );
    for h in hs {
        let name = h.name.as_str();
        let les = LATENCY_BUCKETS_US
            .iter()
            .map(|us| format!("{}", *us as f64 / 1e6));
        for (le, v) in les
            .chain(std::iter::once("+Inf".to_owned()))
            .zip(&h.latency_buckets)
        {
            let labels = [("handler", name), ("le", le.as_str())];
            o.sample("peernet_handler_latency_seconds_bucket", &labels, v);
        }
        let count = h.latency_buckets.last().copied().unwrap_or(0);
        let labels = [("handler", name)];
        o.sample("peernet_handler_latency_seconds_count", &labels, count);
        let sum = h.latency_sum.as_secs_f64();
        o.sample("peernet_handler_latency_seconds_sum", &labels, sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_the_text_ends_with_eof() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let m = NodeMetrics {
            handlers: vec![HandlerMetrics {
                name: "we\"ird".into(),
                latency_buckets: vec![0; LATENCY_BUCKETS_US.len() + 1],
                ..HandlerMetrics::default()
            }],
            ..NodeMetrics::default()
        };
        let t = render(&m);
        assert!(t.ends_with("# EOF\n"));
        assert!(t.contains("peernet_handler_calls_total{handler=\"we\\\"ird\"} 0"));
        assert!(t.contains("le=\"+Inf\""));
    }
}
