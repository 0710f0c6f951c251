//! `--lines`: one machine-readable line per figure of the `rtt`, `pipe`, `send` and
//! `hs` rows, `row peernet <flavour> <name> <value in SI units>` (seconds, per second,
//! bytes per second), the format scripts/bench-peers.sh reads from this benchmark and
//! from peernet-bench/peers-libp2p alike.

use std::fmt::Write;

use crate::measure::Flavour;
use crate::results::Results;

/// The lines of every figure measured in `r`, in flavour order; nothing for the rest.
pub fn render(r: &Results) -> String {
    let mut s = String::new();
    for f in Flavour::ALL {
        let p = r.of(f);
        let figures = [
            ("rtt_p50_s", p.call_rtt.map(|l| l.p50.as_secs_f64())),
            ("rtt_p99_s", p.call_rtt.map(|l| l.p99.as_secs_f64())),
            ("pipe_calls_per_s", p.call_rate),
            ("send_bytes_per_s", p.send_bps),
            ("hs_per_s", p.hs_rate),
        ];
        for (name, v) in figures {
            if let Some(v) = v {
                let _ = writeln!(s, "row peernet {} {name} {v:e}", f.name());
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::measure::Latency;

    #[test]
    fn one_parsable_line_per_measured_figure() {
        let mut r = Results::default();
        r.mt.call_rtt = Some(Latency {
            p50: Duration::from_micros(40),
            p99: Duration::from_micros(90),
        });
        r.mt.send_bps = Some(1.5e9);
        r.ct.hs_rate = Some(2500.0);
        let text = render(&r);
        let rows: Vec<(String, String, f64)> = text
            .lines()
            .map(|l| {
                let w: Vec<&str> = l.split(' ').collect();
                assert_eq!(w.len(), 5, "{l}");
                assert_eq!(&w[..2], ["row", "peernet"], "{l}");
                (w[2].to_owned(), w[3].to_owned(), w[4].parse().unwrap())
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("ct".into(), "hs_per_s".into(), 2500.0),
                ("mt".into(), "rtt_p50_s".into(), 4e-5),
                ("mt".into(), "rtt_p99_s".into(), 9e-5),
                ("mt".into(), "send_bytes_per_s".into(), 1.5e9),
            ]
        );
        assert_eq!(render(&Results::default()), "");
    }
}
