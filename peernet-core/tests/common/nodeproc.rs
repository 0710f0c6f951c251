//! `peernet-node` processes inside network namespaces, for the discovery namespace
//! tests (`netns_discovery.rs`, `netns_routed.rs`): start one, read its lines, wait for
//! one with a deadline, send it commands; and a lab that removes its namespaces and
//! processes on drop, even when the test fails.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use super::netlab::node_bin;
use super::netlab::{ip, skip_reason};

/// How long any one expected line is waited for.
pub const WAIT: Duration = Duration::from_secs(25);

/// One node process and everything it printed.
pub struct Proc {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<(Instant, String)>,
    /// Every line read so far.
    pub lines: Vec<String>,
    /// When each line of `lines` was read from the process's stdout.
    pub read_at: Vec<Instant>,
    /// Its key (hex).
    pub key: String,
    /// Its listening address.
    pub listen: String,
}

impl Proc {
    /// Starts `bin ARGS` in namespace `ns`; waits for its key and listening lines.
    pub fn start(ns: &str, bin: &Path, args: &[&str]) -> Proc {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting a node");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send((Instant::now(), l)).is_err() {
                    break;
                }
            }
        });
        let mut p = Proc {
            child,
            stdin,
            rx,
            lines: Vec::new(),
            read_at: Vec::new(),
            key: String::new(),
            listen: String::new(),
        };
        let k = p.wait_after(0, "key line", |l| l.starts_with("key "));
        p.key = k[4..].to_string();
        let l = p.wait_after(0, "listening line", |l| l.starts_with("listening "));
        p.listen = l[10..].to_string();
        p
    }

    /// Lines read so far (a mark for [`Proc::wait_after`]).
    pub fn mark(&self) -> usize {
        self.lines.len()
    }

    /// Reads every line printed by now, without waiting.
    pub fn drain(&mut self) {
        while let Ok((t, l)) = self.rx.try_recv() {
            self.lines.push(l);
            self.read_at.push(t);
        }
    }

    /// The first line after `mark` that satisfies `pred`, waiting up to [`WAIT`].
    pub fn wait_after(&mut self, mark: usize, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_after_at(mark, what, pred).0
    }

    /// Like [`Proc::wait_after`], with the time the line was read.
    pub fn wait_after_at(
        &mut self,
        mark: usize,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> (String, Instant) {
        if let Some(i) = self.lines[mark..].iter().position(|l| pred(l)) {
            return (self.lines[mark + i].clone(), self.read_at[mark + i]);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((t, l)) => {
                    self.lines.push(l.clone());
                    self.read_at.push(t);
                    if pred(&l) {
                        return (l, t);
                    }
                }
                Err(_) => panic!(
                    "node {}: no {what} within {WAIT:?}; last lines:\n{}",
                    &self.key[..8.min(self.key.len())],
                    self.lines[self.lines.len().saturating_sub(30)..].join("\n")
                ),
            }
        }
    }

    /// Sends one command line.
    pub fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").expect("node stdin");
        self.stdin.flush().expect("node stdin");
    }

    /// Calls `key` until it answers (a connection may be mid-replacement), bounded.
    pub fn call_until_ok(&mut self, key: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.mark();
            self.send(&format!("call {key} ping"));
            let l = self.wait_after(m, "call result", |l| {
                l.starts_with(&format!("call-ok {key}"))
                    || l.starts_with(&format!("call-err {key}"))
            });
            if l.starts_with("call-ok") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "calls to {key} keep failing: {l}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Whether a line after `mark` says `key` was discovered.
    pub fn discovered_since(&mut self, mark: usize, key: &str) -> bool {
        self.drain();
        let want = format!("event discovered {key}");
        self.lines[mark..].iter().any(|l| l.starts_with(&want))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Namespaces (removed on drop, after the processes in `procs`) and a scratch dir.
pub struct Lab {
    /// Names of the namespaces created, in order.
    pub ns: Vec<String>,
    /// Scratch directory (data directories of the nodes).
    pub dir: PathBuf,
    /// Node processes by slot.
    pub procs: Vec<Option<Proc>>,
    tag: String,
}

impl Lab {
    /// A lab with `setup` done, or `None` after printing why the test is skipped
    /// (not root, no example binary, namespaces not creatable).
    pub fn or_skip<T>(
        tag: &str,
        slots: usize,
        setup: impl FnOnce(&mut Lab) -> Result<T, String>,
    ) -> Option<(Lab, T)> {
        let mut lab = match Lab::new(tag, slots) {
            Ok(l) => l,
            Err(why) => {
                println!("netns test skipped: {why}");
                return None;
            }
        };
        match setup(&mut lab) {
            Ok(x) => Some((lab, x)),
            Err(e) => {
                println!("netns test skipped: cannot build the lab: {e}");
                None
            }
        }
    }

    /// A lab, or why a namespace test cannot run here. `tag` keeps the names of
    /// concurrent tests apart (with the process id).
    pub fn new(tag: &str, slots: usize) -> Result<Lab, String> {
        if let Some(why) = skip_reason(&node_bin()) {
            return Err(why);
        }
        let pid = std::process::id();
        Ok(Lab {
            ns: Vec::new(),
            dir: std::env::temp_dir().join(format!("peernet-{tag}-{pid}")),
            procs: (0..slots).map(|_| None).collect(),
            tag: format!("{tag}{}", pid % 100_000),
        })
    }

    /// A name unique to this lab (namespaces, interfaces: at most 15 bytes kept short).
    pub fn name(&self, what: &str) -> String {
        format!("{}{what}", self.tag)
    }

    /// Creates namespace `<tag><what>` with loopback up; returns its name.
    pub fn netns(&mut self, what: &str) -> Result<String, String> {
        let ns = self.name(what);
        ip(&["netns", "add", &ns])?;
        self.ns.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A data directory path for slot `i`.
    pub fn data(&self, i: usize) -> String {
        self.dir.join(format!("node{i}")).display().to_string()
    }

    /// Starts the node of slot `i` in `ns` with `args` after `--data DIR`.
    pub fn start(&mut self, i: usize, ns: &str, args: &[&str]) {
        let data = self.data(i);
        let mut all = vec!["--data", data.as_str()];
        all.extend_from_slice(args);
        self.procs[i] = Some(Proc::start(ns, &node_bin(), &all));
    }

    /// The running node of slot `i`.
    pub fn p(&mut self, i: usize) -> &mut Proc {
        self.procs[i].as_mut().expect("node running")
    }

    /// Kills the node of slot `i` (its data directory stays).
    pub fn kill(&mut self, i: usize) {
        self.procs[i] = None;
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &mut self.procs {
            *p = None;
        }
        for ns in self.ns.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
