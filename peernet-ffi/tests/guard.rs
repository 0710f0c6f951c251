//! Every exported function must run its whole body inside the one panic/NULL guard:
//! its body is exactly `ffi_guard!({ ... })` (or `ffi_guard_keep_error!` for the four
//! functions that must not clear the last error). This parses the crate's source and
//! fails on any export that does anything outside the guard.

use std::path::PathBuf;

const KEEP_ERROR: &[&str] = &[
    "peernet_version",
    "peernet_abi_version",
    "peernet_status_str",
    "peernet_last_error",
];

fn is_no_mangle(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| a.path().is_ident("no_mangle"))
}

#[test]
fn every_export_is_guarded() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut exports = Vec::new();
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let file = syn::parse_file(&text).unwrap();
        for item in &file.items {
            match item {
                syn::Item::Fn(f) => {
                    let name = f.sig.ident.to_string();
                    let extern_c = f.sig.abi.is_some();
                    if !is_no_mangle(&f.attrs) {
                        assert!(
                            !extern_c || !name.starts_with("peernet_"),
                            "{name} is extern but not exported"
                        );
                        continue;
                    }
                    assert!(extern_c, "{name} is #[no_mangle] but not extern \"C\"");
                    assert!(
                        name.starts_with("peernet_"),
                        "{name}: exports are prefixed peernet_"
                    );
                    exports.push(name.clone());
                    let ok = match f.block.stmts.as_slice() {
                        [syn::Stmt::Macro(m)] => {
                            m.mac.path.is_ident("ffi_guard")
                                || (m.mac.path.is_ident("ffi_guard_keep_error")
                                    && KEEP_ERROR.contains(&name.as_str()))
                        }
                        [syn::Stmt::Expr(syn::Expr::Macro(m), None)] => {
                            m.mac.path.is_ident("ffi_guard")
                                || (m.mac.path.is_ident("ffi_guard_keep_error")
                                    && KEEP_ERROR.contains(&name.as_str()))
                        }
                        _ => false,
                    };
                    if !ok {
                        problems.push(format!("{}: {name}", path.display()));
                    }
                }
                syn::Item::Static(s) => {
                    assert!(!is_no_mangle(&s.attrs), "exported static {}", s.ident);
                }
                _ => {}
            }
        }
    }
    assert!(
        problems.is_empty(),
        "exports not wrapped in ffi_guard!: {problems:#?}"
    );
    // Every function of the spec is exported.
    let spec = [
        "peernet_version",
        "peernet_abi_version",
        "peernet_status_str",
        "peernet_last_error",
        "peernet_key_from_hex",
        "peernet_key_to_hex",
        "peernet_key_fingerprint",
        "peernet_config_new",
        "peernet_config_set_listen",
        "peernet_config_set_udp_discovery",
        "peernet_config_set_heartbeat",
        "peernet_config_set_network_monitor",
        "peernet_config_set_max_frame",
        "peernet_config_set_handshake_timeout",
        "peernet_config_free",
        "peernet_node_start",
        "peernet_node_free",
        "peernet_node_key",
        "peernet_node_port",
        "peernet_trust",
        "peernet_untrust",
        "peernet_grant_rpc",
        "peernet_expose",
        "peernet_revoke",
        "peernet_respond",
        "peernet_respond_error",
        "peernet_connect",
        "peernet_disconnect",
        "peernet_is_connected",
        "peernet_buffer_free",
        "peernet_call",
        "peernet_call_async",
        "peernet_send",
        "peernet_set_rpc_dispatcher",
        "peernet_rpc_call",
        "peernet_peers",
        "peernet_peers_free",
        "peernet_discovered",
        "peernet_lost",
        "peernet_set_event_callback",
        "peernet_next_event",
        "peernet_set_logger",
        "peernet_stream_open",
        "peernet_stream_read",
        "peernet_stream_write",
        "peernet_stream_read_async",
        "peernet_stream_finish",
        "peernet_stream_reset",
        "peernet_stream_reset_info",
        "peernet_stream_free",
        "peernet_stream_peer",
        "peernet_stream_name",
        "peernet_expose_stream",
        "peernet_revoke_stream",
    ];
    for f in spec {
        assert!(
            exports.iter().any(|e| e == f),
            "{f} (spec/c-api.md) is not exported"
        );
    }
    assert!(exports.len() >= spec.len());
}
