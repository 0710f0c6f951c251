//! The SPAKE2 this crate uses (RustCrypto `spake2`, Ed25519 group) against an
//! independent implementation: python-spake2 (PyPI `spake2`, magic-wormhole's), in
//! both roles with the pairing identities. Both must derive the same key, and a wrong
//! password must not. Skipped when `python3` with `spake2` is missing, unless
//! `PEERNET_REQUIRE_SPAKE2_PY=1` (then it fails).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use peernet_proto::pairing::{SPAKE_ID_INVITER, SPAKE_ID_JOINER};
use spake2::{Ed25519Group, Identity, Password, Spake2};

mod common;
use common::{hex, to_hex};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/spake2_peer.py");

fn python_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import spake2"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok && std::env::var_os("PEERNET_REQUIRE_SPAKE2_PY").is_some_and(|v| v == "1") {
        panic!("python3 with the PyPI spake2 package is required (pip install spake2==0.9)");
    }
    ok
}

/// Python plays `py_role` with `py_pw`, Rust the other role with `rust_pw`; returns
/// (python key, rust key).
fn exchange(py_role: &str, py_pw: &str, rust_pw: &str) -> (Vec<u8>, Vec<u8>) {
    let ida = std::str::from_utf8(SPAKE_ID_JOINER).unwrap();
    let idb = std::str::from_utf8(SPAKE_ID_INVITER).unwrap();
    let mut child = Command::new("python3")
        .args([SCRIPT, py_role, py_pw, ida, idb])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let py_msg = hex(line.trim());
    let pw = Password::new(rust_pw.as_bytes());
    let (ia, ib) = (
        Identity::new(SPAKE_ID_JOINER),
        Identity::new(SPAKE_ID_INVITER),
    );
    let (state, rust_msg) = if py_role == "a" {
        Spake2::<Ed25519Group>::start_b(&pw, &ia, &ib)
    } else {
        Spake2::<Ed25519Group>::start_a(&pw, &ia, &ib)
    };
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", to_hex(&rust_msg)).unwrap();
    drop(stdin);
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(child.wait().unwrap().success());
    let rust_key = state.finish(&py_msg).unwrap();
    (hex(line.trim()), rust_key)
}

#[test]
fn rust_spake2_agrees_with_python_spake2() {
    if !python_available() {
        eprintln!("skipped: python3 with the PyPI spake2 package not found");
        return;
    }
    for role in ["a", "b"] {
        for _ in 0..3 {
            let (py, rust) = exchange(role, "7-copper-violin", "7-copper-violin");
            assert_eq!(py.len(), 32);
            assert_eq!(py, rust, "python as {role}");
        }
        let (py, rust) = exchange(role, "7-copper-violin", "7-copper-viola");
        assert_ne!(py, rust, "a wrong password must give another key");
    }
}
