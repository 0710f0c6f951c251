//! Rust-API counterpart of tests/c/bench.c (filled in below).

fn main() {}
