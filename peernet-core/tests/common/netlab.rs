//! Shared by the network-namespace tests: running `ip` and `sysctl` in a namespace,
//! and deciding whether the test can run here at all.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `ip ARGS`; the error carries its stderr.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Sets the sysctl `kv` (`name=value`) inside the namespace `ns`.
pub fn sysctl(ns: &str, kv: &str) -> Result<(), String> {
    let ok = Command::new("ip")
        .args(["netns", "exec", ns, "sysctl", "-qw", kv])
        .status()
        .map_err(|e| format!("sysctl: {e}"))?
        .success();
    if ok {
        Ok(())
    } else {
        Err(format!("sysctl {kv} failed in {ns}"))
    }
}

/// Runs `ip ARGS` and panics with its stderr on failure.
pub fn must(args: &[&str]) {
    ip(args).unwrap_or_else(|e| panic!("{e}"));
}

/// The example binary, next to the test binary (or `PEERNET_NODE_BIN`).
pub fn node_bin() -> PathBuf {
    std::env::var_os("PEERNET_NODE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("test binary path");
            exe.parent()
                .and_then(Path::parent)
                .expect("target dir")
                .join("examples/peernet-node")
        })
}

/// Why a namespace test cannot run here (not root, no `ip`, example not built), or
/// `None`. With `PEERNET_REQUIRE_EXAMPLES` set, a missing example binary fails instead.
pub fn skip_reason(bin: &Path) -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("no `ip` command (apt-get install iproute2)".into());
    }
    if !bin.exists() {
        let why = format!(
            "{} not built (cargo build -p peernet-core --example peernet-node)",
            bin.display()
        );
        assert!(
            std::env::var_os("PEERNET_REQUIRE_EXAMPLES").is_none(),
            "{why}"
        );
        return Some(why);
    }
    None
}
