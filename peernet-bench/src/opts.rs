//! Command line.

use crate::measure::Flavour;
use crate::memory::CONNS;

/// Measurement groups `--only` can pick.
pub const GROUPS: [&str; 9] = [
    "crypto", "rtt", "pipe", "metrics", "send", "stream", "hs", "disc", "mem",
];

/// Parsed options.
#[derive(Debug, Clone, PartialEq)]
pub struct Opts {
    /// Short run (< 30 s).
    pub quick: bool,
    /// Groups to run (all when empty).
    pub only: Vec<String>,
    /// Runtime flavours to run.
    pub flavours: Vec<Flavour>,
    /// Connections of the memory test.
    pub conns: usize,
    /// Skip the raw ceilings (for profiling PeerNet alone).
    pub no_ceilings: bool,
    /// Also print the machine-readable `row ...` lines (see `lines.rs`).
    pub lines: bool,
    /// Internal: run only the memory measurement with this flavour and print its line.
    pub memory_child: Option<Flavour>,
}

/// Usage text.
pub const USAGE: &str = "\
usage: peernet-bench [--quick] [--only GROUP,...] [--flavour ct|mt] [--conns N] [--no-ceilings] [--lines]

Measures this machine's ceilings and PeerNet on the same work, over 127.0.0.1 only,
and prints Markdown tables. Full run < 3 min, --quick < 30 s.
  --quick           short budgets (0.4 s per figure instead of 2.5 s)
  --only GROUPS     comma list of: crypto, rtt, pipe, metrics, send, hs, disc, mem
                    (default: all; metrics = pipelined calls, metrics on vs off)
  --flavour F       only one tokio runtime flavour: ct (current-thread) or mt (multi-thread)
  --conns N         connections of the memory test (default 1000)
  --no-ceilings     measure PeerNet only (for profiling it)
  --lines           after the tables, one `row peernet <flavour> <name> <value>` line per
                    rtt/pipe/send/hs figure (SI units; read by scripts/bench-peers.sh)";

impl Opts {
    /// Parses the arguments after the program name.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Opts, String> {
        let mut o = Opts {
            quick: false,
            only: Vec::new(),
            flavours: Flavour::ALL.to_vec(),
            conns: CONNS,
            no_ceilings: false,
            lines: false,
            memory_child: None,
        };
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match a.as_str() {
                "--quick" => o.quick = true,
                "--no-ceilings" => o.no_ceilings = true,
                "--lines" => o.lines = true,
                "--only" => {
                    for g in value("--only")?.split(',').filter(|g| !g.is_empty()) {
                        if !GROUPS.contains(&g) {
                            return Err(format!("unknown group {g:?}"));
                        }
                        o.only.push(g.to_owned());
                    }
                }
                "--flavour" => {
                    let v = value("--flavour")?;
                    let f = Flavour::parse(&v).ok_or(format!("unknown flavour {v:?}"))?;
                    o.flavours = vec![f];
                }
                "--conns" => {
                    let v = value("--conns")?;
                    o.conns = v
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or(format!("bad --conns {v:?}"))?;
                }
                "--memory-child" => {
                    let v = value("--memory-child")?;
                    o.memory_child = Some(Flavour::parse(&v).ok_or(format!("bad flavour {v:?}"))?);
                }
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(o)
    }

    /// Whether `group` runs.
    pub fn wants(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Opts, String> {
        Opts::parse(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn parses() {
        let o =
            parse("--quick --only rtt,mem --flavour mt --conns 10 --no-ceilings --lines").unwrap();
        assert!(o.no_ceilings && o.lines);
        assert!(!parse("").unwrap().lines);
        assert!(o.quick);
        assert!(o.wants("rtt") && o.wants("mem") && !o.wants("send"));
        assert_eq!(o.flavours, vec![Flavour::Multi]);
        assert_eq!(o.conns, 10);
        assert!(parse("").unwrap().wants("send"));
        assert!(parse("--only nope").is_err());
        assert!(parse("--conns 0").is_err());
        assert!(parse("--flavour").is_err());
    }
}
