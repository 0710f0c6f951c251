//! Sets the SONAME of libpeernet.so from the one-line file `ABI_VERSION` and passes the
//! same number to the crate, so the header macro, `peernet_abi_version()` and the SONAME
//! can never disagree.

use std::fs;

fn main() {
    println!("cargo:rerun-if-changed=ABI_VERSION");
    let text = fs::read_to_string("ABI_VERSION").unwrap_or_default();
    let abi: u32 = match text.trim().parse() {
        Ok(v) => v,
        Err(_) => panic!("peernet-ffi/ABI_VERSION must hold one unsigned integer"),
    };
    println!("cargo:rustc-env=PEERNET_ABI_VERSION={abi}");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "freebsd" || os == "netbsd" || os == "openbsd" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpeernet.so.{abi}");
    }
}
