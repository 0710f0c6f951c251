// Every type and function of include/peernet.h described with koffi (a dynamic FFI).
// The library path comes from $PEERNET_LIB (default: libpeernet.so.1 on the loader path).
//
// JS runs on one thread: koffi queues callbacks that the library makes from its own
// threads to the main thread. So any function that waits for a JS callback to finish
// (a call answered by a JS handler in this process, peernet_node_free with callbacks in
// flight, peernet_next_event waits) must be issued with `.async` so the event loop keeps
// running; see docs/c-api.md.
import koffi from 'koffi';

export const LIB_PATH = process.env.PEERNET_LIB || 'libpeernet.so.1';
// koffi counts callbacks queued from foreign threads against max_async_calls (default
// 256); past it koffi 3.3.4 crashes (SIGSEGV creating an exception off the JS thread).
// 1,000 concurrent calls with JS handlers and completions need up to 2,000: raise it
// before loading the library (koffi refuses config changes afterwards).
koffi.config({ ...koffi.config(), max_async_calls: 4096 });
export const lib = koffi.load(LIB_PATH);

export const STATUS = [
  'PEERNET_OK', 'PEERNET_ERR_INVALID_ARGUMENT', 'PEERNET_ERR_IO', 'PEERNET_ERR_CORRUPT_FILE',
  'PEERNET_ERR_NOT_CONNECTED', 'PEERNET_ERR_TIMEOUT', 'PEERNET_ERR_NO_SUCH_HANDLER',
  'PEERNET_ERR_FORBIDDEN', 'PEERNET_ERR_HANDLER_FAILED', 'PEERNET_ERR_OVERLOADED',
  'PEERNET_ERR_UNTRUSTED_PEER', 'PEERNET_ERR_HANDSHAKE_FAILED', 'PEERNET_ERR_PAYLOAD_TOO_LARGE',
  'PEERNET_ERR_ALREADY_EXISTS', 'PEERNET_ERR_CLOSED', 'PEERNET_ERR_INTERNAL', 'PEERNET_ERR_BUSY',
  'PEERNET_ERR_STREAM_RESET',
];
export const S = Object.fromEntries(STATUS.map((n, i) => [n.replace('PEERNET_', ''), i]));
export const EVENT = { DISCOVERED: 0, LOST: 1, CONNECTED: 2, DISCONNECTED: 3, NETWORK_CHANGED: 4 };
export const PEER = { DISCONNECTED: 0, CONNECTING: 1, CONNECTED: 2 };
export const LOG = { OFF: 0, ERROR: 1, WARN: 2, INFO: 3, DEBUG: 4, TRACE: 5 };

// ---- types ----
koffi.alias('peernet_status', 'int32_t');
koffi.alias('peernet_event_kind', 'int');
koffi.alias('peernet_peer_state', 'int');
export const Key = koffi.struct('peernet_key', { bytes: koffi.array('uint8_t', 32, 'Typed') });
export const Buffer_ = koffi.struct('peernet_buffer', { data: 'uint8_t *', len: 'size_t' });
export const PeerInfo = koffi.struct('peernet_peer_info', {
  key: 'peernet_key',
  state: 'peernet_peer_state',
  trusted: 'bool',
  rpc: 'bool',
  label: koffi.array('char', 64, 'String'),
  address: koffi.array('char', 64, 'String'),
  last_seen_ms: 'uint64_t',
  rtt_us: 'uint32_t',
});
export const Event = koffi.struct('peernet_event', {
  kind: 'peernet_event_kind',
  key: 'peernet_key',
  has_key: 'bool',
  detail: koffi.array('char', 128, 'String'),
  close_reason: 'int',
});
koffi.opaque('peernet_config');
koffi.opaque('peernet_node');
koffi.opaque('peernet_responder');

export const FreeFn = koffi.proto('void peernet_free_fn(void *user_data)');
export const HandlerFn = koffi.proto(
  'void peernet_handler_fn(void *user_data, const peernet_key *from, const uint8_t *body, size_t body_len, peernet_responder *responder)');
export const AuthorizeFn = koffi.proto('bool peernet_authorize_fn(void *user_data, const peernet_key *from)');
export const CallFn = koffi.proto(
  'void peernet_call_fn(void *user_data, peernet_status status, const uint8_t *data, size_t len)');
export const RpcFn = koffi.proto(
  'void peernet_rpc_fn(void *user_data, const peernet_key *from, const char *module, const char *function, const uint8_t *args, size_t args_len, peernet_responder *responder)');
export const EventFn = koffi.proto(
  'void peernet_event_fn(void *user_data, peernet_event_kind kind, const peernet_key *key, const char *detail)');
export const LogFn = koffi.proto(
  'void peernet_log_fn(void *user_data, int level, const char *target, const char *message)');

const PROTOS = [
  'const char *peernet_version(void)',
  'uint32_t peernet_abi_version(void)',
  'const char *peernet_status_str(int32_t status)',
  'const char *peernet_last_error(void)',
  'peernet_status peernet_selftest_panic(void)',
  'peernet_status peernet_key_from_hex(const char *hex, _Out_ peernet_key *out)',
  'void peernet_key_to_hex(const peernet_key *key, _Out_ char *out)',
  'void peernet_key_fingerprint(const peernet_key *key, _Out_ char *out)',
  'void peernet_buffer_free(_Inout_ peernet_buffer *buf)',
  'peernet_config *peernet_config_new(const char *data_dir)',
  'void peernet_config_free(peernet_config *config)',
  'peernet_status peernet_config_set_listen(peernet_config *config, const char *addr)',
  'peernet_status peernet_config_set_udp_discovery(peernet_config *config, uint16_t port, uint32_t interval_ms, const char *broadcast_addrs)',
  'peernet_status peernet_config_set_heartbeat(peernet_config *config, uint32_t interval_ms, uint32_t timeout_ms)',
  'peernet_status peernet_config_set_network_monitor(peernet_config *config, uint32_t poll_ms)',
  'peernet_status peernet_config_set_max_frame(peernet_config *config, uint32_t bytes)',
  'peernet_status peernet_config_set_handshake_timeout(peernet_config *config, uint32_t timeout_ms)',
  'peernet_status peernet_config_set_auto_connect(peernet_config *config, bool enabled)',
  'peernet_status peernet_config_set_max_concurrent_calls(peernet_config *config, uint32_t calls)',
  'peernet_status peernet_node_start(const peernet_config *config, _Out_ peernet_node **out)',
  'void peernet_node_free(peernet_node *node)',
  'void peernet_node_key(const peernet_node *node, _Out_ peernet_key *out)',
  'uint16_t peernet_node_port(const peernet_node *node)',
  'peernet_status peernet_node_address(const peernet_node *node, char *buf, size_t len)',
  'peernet_status peernet_trust(peernet_node *node, const peernet_key *key, const char *label)',
  'peernet_status peernet_untrust(peernet_node *node, const peernet_key *key)',
  'bool peernet_is_trusted(peernet_node *node, const peernet_key *key)',
  'peernet_status peernet_grant_rpc(peernet_node *node, const peernet_key *key, bool allowed)',
  'peernet_status peernet_expose(peernet_node *node, const char *name, peernet_handler_fn *handler, peernet_authorize_fn *authorize, void *user_data, peernet_free_fn *free_user_data)',
  'peernet_status peernet_revoke(peernet_node *node, const char *name)',
  'peernet_status peernet_respond(peernet_responder *responder, const uint8_t *data, size_t len)',
  'peernet_status peernet_respond_error(peernet_responder *responder, const char *message)',
  'peernet_status peernet_connect(peernet_node *node, const peernet_key *key, const char *addr, uint32_t timeout_ms)',
  'peernet_status peernet_disconnect(peernet_node *node, const peernet_key *key)',
  'bool peernet_is_connected(peernet_node *node, const peernet_key *key)',
  'peernet_status peernet_wait_connected(peernet_node *node, const peernet_key *key, uint32_t timeout_ms)',
  'peernet_status peernet_call(peernet_node *node, const peernet_key *key, const char *name, const uint8_t *body, size_t len, uint32_t timeout_ms, _Out_ peernet_buffer *result)',
  'peernet_status peernet_call_async(peernet_node *node, const peernet_key *key, const char *name, const uint8_t *body, size_t len, uint32_t timeout_ms, peernet_call_fn *done, void *user_data)',
  'peernet_status peernet_send(peernet_node *node, const peernet_key *key, const char *name, const uint8_t *body, size_t len)',
  'peernet_status peernet_set_rpc_dispatcher(peernet_node *node, peernet_rpc_fn *dispatcher, void *user_data, peernet_free_fn *free_user_data)',
  'peernet_status peernet_rpc_call(peernet_node *node, const peernet_key *key, const char *module, const char *function, const uint8_t *args, size_t len, uint32_t timeout_ms, _Out_ peernet_buffer *result)',
  'peernet_status peernet_peers(peernet_node *node, _Out_ peernet_peer_info **out, _Out_ size_t *count)',
  'void peernet_peers_free(peernet_peer_info *peers, size_t count)',
  'peernet_status peernet_discovered(peernet_node *node, const peernet_key *key, const char *addr)',
  'peernet_status peernet_lost(peernet_node *node, const peernet_key *key)',
  'peernet_status peernet_set_event_callback(peernet_node *node, peernet_event_fn *callback, void *user_data, peernet_free_fn *free_user_data)',
  'peernet_status peernet_next_event(peernet_node *node, uint32_t timeout_ms, _Out_ peernet_event *out)',
  'int peernet_event_fd(peernet_node *node)',
  'peernet_status peernet_set_logger(peernet_log_fn *callback, void *user_data, int max_level)',
];

export const pn = {};
for (const proto of PROTOS) {
  const fn = lib.func(proto);
  const name = proto.match(/(peernet_\w+)\(/)[1];
  pn[name.replace('peernet_', '')] = fn;
}

// ---- helpers ----
export const lastError = () => pn.last_error();
export const statusName = (s) => pn.status_str(s);

export function bytesAt(ptr, len) {
  return len ? Buffer.from(koffi.decode(ptr, 'uint8_t', Number(len))) : Buffer.alloc(0);
}

export function keyAt(ptr) {
  return ptr ? koffi.decode(ptr, 'peernet_key') : null;
}

/** Calls `fn.async(...args)` and resolves with its return value. */
export function async(fn, ...args) {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err, value) => (err ? reject(err) : resolve(value)));
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(cond, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await sleep(5);
  }
  return cond();
}
