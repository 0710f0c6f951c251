//! Shared helpers for the integration tests: hex and the golden vectors.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod pair;

use serde_json::Value;

pub const PEERNET_V1: &str = include_str!("../vectors/peernet-v1.json");
pub const CACOPHONY: &str = include_str!("../vectors/noise-xx-cacophony.json");

pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn hex32(s: &str) -> [u8; 32] {
    hex(s).try_into().unwrap()
}

pub fn v1() -> Value {
    serde_json::from_str(PEERNET_V1).unwrap()
}

pub fn cacophony() -> Value {
    serde_json::from_str(CACOPHONY).unwrap()
}

/// The `hex` fields of the array `section` of the v1 vectors, in order.
pub fn hexes(v: &Value, section: &str) -> Vec<Vec<u8>> {
    v[section]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| hex(e["hex"].as_str().unwrap()))
        .collect()
}
