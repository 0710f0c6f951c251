//! Shared measuring tools: time/count budgets, runtime flavours, latency percentiles
//! and the process's resident set size.

use std::time::{Duration, Instant};

/// How long and how many times one measurement may run (both bound every loop).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Untimed warm-up before the measured part.
    pub warmup: Duration,
    /// Measured time.
    pub time: Duration,
    /// Most iterations of the measured part.
    pub max_count: u64,
}

impl Budget {
    /// The budget of a `--quick` run or of a full run.
    pub fn new(quick: bool) -> Budget {
        if quick {
            Budget {
                warmup: Duration::from_millis(100),
                time: Duration::from_millis(400),
                max_count: 5_000_000,
            }
        } else {
            Budget {
                warmup: Duration::from_millis(400),
                time: Duration::from_millis(2_500),
                max_count: 50_000_000,
            }
        }
    }

    /// The same budget with at most `max` iterations.
    pub fn capped(self, max: u64) -> Budget {
        Budget {
            max_count: self.max_count.min(max),
            ..self
        }
    }
}

/// A deadline and an iteration cap, checked together.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    start: Instant,
    end: Instant,
    max: u64,
}

impl Bound {
    /// Starts now, for `time` and at most `max` iterations.
    pub fn new(time: Duration, max: u64) -> Bound {
        let start = Instant::now();
        Bound {
            start,
            end: start + time,
            max,
        }
    }

    /// Whether another iteration may run after `done` of them (reads the clock: ~20 ns,
    /// far below anything measured).
    pub fn go(&self, done: u64) -> bool {
        done < self.max && Instant::now() < self.end
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Tokio runtime flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `new_current_thread`: everything on one thread.
    Current,
    /// `new_multi_thread` with one worker per CPU.
    Multi,
}

impl Flavour {
    /// Both flavours, in table order.
    pub const ALL: [Flavour; 2] = [Flavour::Current, Flavour::Multi];

    /// Short name for tables and the command line.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Current => "ct",
            Flavour::Multi => "mt",
        }
    }

    /// Parses `ct`/`current` or `mt`/`multi`.
    pub fn parse(s: &str) -> Option<Flavour> {
        match s {
            "ct" | "current" => Some(Flavour::Current),
            "mt" | "multi" => Some(Flavour::Multi),
            _ => None,
        }
    }

    /// Builds a runtime of this flavour with IO and time enabled.
    pub fn runtime(self) -> std::io::Result<tokio::runtime::Runtime> {
        match self {
            Flavour::Current => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            Flavour::Multi => {
                let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .enable_all()
                    .build()
            }
        }
    }
}

/// Median and 99th percentile of a set of durations.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// 50th percentile.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Latency {
    /// Percentiles of `samples` (nanoseconds); `None` when empty.
    pub fn from_nanos(mut samples: Vec<u64>) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |p: f64| {
            let i = ((samples.len() - 1) as f64 * p).round() as usize;
            Duration::from_nanos(samples[i.min(samples.len() - 1)])
        };
        Some(Latency {
            p50: at(0.50),
            p99: at(0.99),
        })
    }
}

/// Nanoseconds of a duration, saturating.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Events per second.
pub fn rate(count: u64, d: Duration) -> f64 {
    count as f64 / d.as_secs_f64().max(1e-9)
}

/// Resident set size of this process in bytes: `/proc/self/statm` resident pages times
/// the page size (derived from `VmRSS` in `/proc/self/status` when possible, else 4 KiB).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = page_size(pages).unwrap_or(4096);
    Some(pages * page)
}

fn page_size(pages: u64) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    if pages == 0 {
        return None;
    }
    // The two files are read at slightly different moments: take the nearest real size.
    let raw = kb * 1024 / pages;
    [4096u64, 16384, 65536]
        .into_iter()
        .min_by_key(|p| p.abs_diff(raw))
}

/// The soft limit on open files, from `/proc/self/limits`.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let l = Latency::from_nanos((1..=100).collect()).unwrap();
        assert_eq!(l.p50, Duration::from_nanos(51));
        assert_eq!(l.p99, Duration::from_nanos(99));
        assert!(Latency::from_nanos(vec![]).is_none());
    }

    #[test]
    fn rss_is_read() {
        assert!(rss_bytes().unwrap() > 0);
        assert!(open_files_limit().unwrap() > 0);
    }
}
