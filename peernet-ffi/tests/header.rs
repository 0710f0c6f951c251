//! `include/peernet.h` is generated from this crate by cbindgen and committed; this test
//! regenerates it and fails if the committed file differs. `PEERNET_BLESS=1` rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

fn generate() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let abi = include_str!("../ABI_VERSION").trim();
    let version = env!("CARGO_PKG_VERSION");
    config.after_includes = Some(format!(
        "\n/** Version of this header (the library reports its own with peernet_version()). */\n\
         #define PEERNET_VERSION \"{version}\"\n\
         #define PEERNET_VERSION_MAJOR {}\n\
         #define PEERNET_VERSION_MINOR {}\n\
         #define PEERNET_VERSION_PATCH {}\n\
         /** ABI version of this header; compare with peernet_abi_version() at run time. */\n\
         #define PEERNET_ABI_VERSION {abi}\n\
         /** The SONAME of the shared library this header describes. */\n\
         #define PEERNET_SONAME \"libpeernet.so.{abi}\"\n",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    ));
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen failed")
        .write(&mut out);
    String::from_utf8(out).expect("utf-8 header")
}

#[test]
fn header_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../include/peernet.h");
    let fresh = generate();
    if std::env::var_os("PEERNET_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/peernet.h differs from a fresh generation; run \
         `PEERNET_BLESS=1 cargo test -p peernet-ffi --test header` and commit it"
    );
    for needle in [
        "peernet_node_start",
        "PEERNET_ABI_VERSION",
        "peernet_next_event",
        "peernet_stream_open",
        "PEERNET_ERR_STREAM_RESET",
    ] {
        assert!(fresh.contains(needle), "{needle} missing from the header");
    }
}
