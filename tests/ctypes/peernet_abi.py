"""The raw C ABI of libpeernet, described with ctypes (as any foreign program sees it).

Not the Python package (that is bindings/python, built with pyo3): this module only
declares the exported functions and types of include/peernet.h so the tests can call
them directly. The library path comes from $PEERNET_LIB (default: libpeernet.so.1 on the
loader's path).
"""

import ctypes as C
import os

LIB_PATH = os.environ.get("PEERNET_LIB", "libpeernet.so.1")
lib = C.CDLL(LIB_PATH)

# ---- status codes (values fixed by the ABI) ----
STATUS = [
    "PEERNET_OK",
    "PEERNET_ERR_INVALID_ARGUMENT",
    "PEERNET_ERR_IO",
    "PEERNET_ERR_CORRUPT_FILE",
    "PEERNET_ERR_NOT_CONNECTED",
    "PEERNET_ERR_TIMEOUT",
    "PEERNET_ERR_NO_SUCH_HANDLER",
    "PEERNET_ERR_FORBIDDEN",
    "PEERNET_ERR_HANDLER_FAILED",
    "PEERNET_ERR_OVERLOADED",
    "PEERNET_ERR_UNTRUSTED_PEER",
    "PEERNET_ERR_HANDSHAKE_FAILED",
    "PEERNET_ERR_PAYLOAD_TOO_LARGE",
    "PEERNET_ERR_ALREADY_EXISTS",
    "PEERNET_ERR_CLOSED",
    "PEERNET_ERR_INTERNAL",
    "PEERNET_ERR_BUSY",
    "PEERNET_ERR_STREAM_RESET",
]
for _i, _n in enumerate(STATUS):
    globals()[_n.replace("PEERNET_", "")] = _i

EVENT_DISCOVERED, EVENT_LOST, EVENT_CONNECTED, EVENT_DISCONNECTED, EVENT_NETWORK_CHANGED = range(5)
# peernet_close_reason (the values used by the tests)
CLOSE_NONE, CLOSE_LOCAL_DISCONNECT = 0, 5
PEER_DISCONNECTED, PEER_CONNECTING, PEER_CONNECTED = range(3)
LOG_OFF, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE = range(6)


# ---- types ----
class Key(C.Structure):
    _fields_ = [("bytes", C.c_uint8 * 32)]

    def raw(self) -> bytes:
        return bytes(self.bytes)


class Buffer(C.Structure):
    _fields_ = [("data", C.POINTER(C.c_uint8)), ("len", C.c_size_t)]

    def value(self) -> bytes:
        return C.string_at(self.data, self.len) if self.data else b""


class PeerInfo(C.Structure):
    _fields_ = [
        ("key", Key),
        ("state", C.c_int),
        ("trusted", C.c_bool),
        ("rpc", C.c_bool),
        ("label", C.c_char * 64),
        ("address", C.c_char * 64),
        ("last_seen_ms", C.c_uint64),
        ("rtt_us", C.c_uint32),
    ]


class Event(C.Structure):
    _fields_ = [
        ("kind", C.c_int),
        ("key", Key),
        ("has_key", C.c_bool),
        ("detail", C.c_char * 128),
        ("close_reason", C.c_int),
    ]


Status = C.c_int32  # peernet_status is an int-sized enum
NodeP = C.c_void_p
ConfigP = C.c_void_p
ResponderP = C.c_void_p

FREE_FN = C.CFUNCTYPE(None, C.c_void_p)
HANDLER_FN = C.CFUNCTYPE(None, C.c_void_p, C.POINTER(Key), C.POINTER(C.c_uint8), C.c_size_t, ResponderP)
AUTHORIZE_FN = C.CFUNCTYPE(C.c_bool, C.c_void_p, C.POINTER(Key))
CALL_FN = C.CFUNCTYPE(None, C.c_void_p, Status, C.POINTER(C.c_uint8), C.c_size_t)
RPC_FN = C.CFUNCTYPE(
    None, C.c_void_p, C.POINTER(Key), C.c_char_p, C.c_char_p, C.POINTER(C.c_uint8), C.c_size_t, ResponderP
)
EVENT_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_int, C.POINTER(Key), C.c_char_p)
LOG_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_int, C.c_char_p, C.c_char_p)
StreamP = C.c_void_p
STREAM_HANDLER_FN = C.CFUNCTYPE(None, C.c_void_p, C.POINTER(Key), StreamP)
STREAM_READ_FN = C.CFUNCTYPE(None, C.c_void_p, Status, C.POINTER(C.c_uint8), C.c_size_t)
WAIT_FOREVER = 0xFFFFFFFF
STREAM_RESET_CANCELLED, STREAM_RESET_REFUSED, STREAM_RESET_TOO_MANY_STREAMS = 0, 1, 2
STREAM_REASON_SIZE = 256

KeyP = C.POINTER(Key)
Bytes = C.c_char_p  # bodies are passed as (const uint8_t *, size_t); c_char_p accepts bytes

_PROTOS = {
    "peernet_version": (C.c_char_p, []),
    "peernet_abi_version": (C.c_uint32, []),
    "peernet_status_str": (C.c_char_p, [C.c_int32]),
    "peernet_last_error": (C.c_char_p, []),
    "peernet_selftest_panic": (Status, []),
    "peernet_key_from_hex": (Status, [C.c_char_p, KeyP]),
    "peernet_key_to_hex": (None, [KeyP, C.c_char_p]),
    "peernet_key_fingerprint": (None, [KeyP, C.c_char_p]),
    "peernet_buffer_free": (None, [C.POINTER(Buffer)]),
    "peernet_config_new": (ConfigP, [C.c_char_p]),
    "peernet_config_free": (None, [ConfigP]),
    "peernet_config_set_listen": (Status, [ConfigP, C.c_char_p]),
    "peernet_config_set_udp_discovery": (Status, [ConfigP, C.c_uint16, C.c_uint32, C.c_char_p]),
    "peernet_config_set_discovery_interfaces": (Status, [ConfigP, C.c_char_p, C.c_char_p]),
    "peernet_config_set_mdns": (Status, [ConfigP, C.c_bool, C.c_char_p, C.c_char_p]),
    "peernet_config_set_heartbeat": (Status, [ConfigP, C.c_uint32, C.c_uint32]),
    "peernet_config_set_network_monitor": (Status, [ConfigP, C.c_uint32]),
    "peernet_config_set_max_frame": (Status, [ConfigP, C.c_uint32]),
    "peernet_config_set_handshake_timeout": (Status, [ConfigP, C.c_uint32]),
    "peernet_config_set_auto_connect": (Status, [ConfigP, C.c_bool]),
    "peernet_config_set_max_concurrent_calls": (Status, [ConfigP, C.c_uint32]),
    "peernet_node_start": (Status, [ConfigP, C.POINTER(NodeP)]),
    "peernet_node_free": (None, [NodeP]),
    "peernet_node_key": (None, [NodeP, KeyP]),
    "peernet_node_port": (C.c_uint16, [NodeP]),
    "peernet_node_address": (Status, [NodeP, C.c_char_p, C.c_size_t]),
    "peernet_trust": (Status, [NodeP, KeyP, C.c_char_p]),
    "peernet_untrust": (Status, [NodeP, KeyP]),
    "peernet_trust_add_address": (Status, [NodeP, KeyP, C.c_char_p]),
    "peernet_trust_remove_address": (Status, [NodeP, KeyP, C.c_char_p, C.POINTER(C.c_bool)]),
    "peernet_is_trusted": (C.c_bool, [NodeP, KeyP]),
    "peernet_grant_rpc": (Status, [NodeP, KeyP, C.c_bool]),
    "peernet_expose": (Status, [NodeP, C.c_char_p, HANDLER_FN, AUTHORIZE_FN, C.c_void_p, FREE_FN]),
    "peernet_revoke": (Status, [NodeP, C.c_char_p]),
    "peernet_respond": (Status, [ResponderP, Bytes, C.c_size_t]),
    "peernet_respond_error": (Status, [ResponderP, C.c_char_p]),
    "peernet_connect": (Status, [NodeP, KeyP, C.c_char_p, C.c_uint32]),
    "peernet_disconnect": (Status, [NodeP, KeyP]),
    "peernet_is_connected": (C.c_bool, [NodeP, KeyP]),
    "peernet_wait_connected": (Status, [NodeP, KeyP, C.c_uint32]),
    "peernet_call": (Status, [NodeP, KeyP, C.c_char_p, Bytes, C.c_size_t, C.c_uint32, C.POINTER(Buffer)]),
    "peernet_call_async": (
        Status,
        [NodeP, KeyP, C.c_char_p, Bytes, C.c_size_t, C.c_uint32, CALL_FN, C.c_void_p],
    ),
    "peernet_send": (Status, [NodeP, KeyP, C.c_char_p, Bytes, C.c_size_t]),
    "peernet_set_rpc_dispatcher": (Status, [NodeP, RPC_FN, C.c_void_p, FREE_FN]),
    "peernet_rpc_call": (
        Status,
        [NodeP, KeyP, C.c_char_p, C.c_char_p, Bytes, C.c_size_t, C.c_uint32, C.POINTER(Buffer)],
    ),
    "peernet_peers": (Status, [NodeP, C.POINTER(C.POINTER(PeerInfo)), C.POINTER(C.c_size_t)]),
    "peernet_peers_free": (None, [C.POINTER(PeerInfo), C.c_size_t]),
    "peernet_discovered": (Status, [NodeP, KeyP, C.c_char_p]),
    "peernet_lost": (Status, [NodeP, KeyP]),
    "peernet_set_event_callback": (Status, [NodeP, EVENT_FN, C.c_void_p, FREE_FN]),
    "peernet_next_event": (Status, [NodeP, C.c_uint32, C.POINTER(Event)]),
    "peernet_event_fd": (C.c_int, [NodeP]),
    "peernet_set_logger": (Status, [LOG_FN, C.c_void_p, C.c_int]),
    "peernet_stream_open": (Status, [NodeP, KeyP, C.c_char_p, C.POINTER(StreamP)]),
    "peernet_stream_read": (
        Status, [StreamP, C.c_void_p, C.c_size_t, C.c_uint32, C.POINTER(C.c_size_t)]
    ),
    "peernet_stream_write": (
        Status, [StreamP, Bytes, C.c_size_t, C.c_uint32, C.POINTER(C.c_size_t)]
    ),
    "peernet_stream_finish": (Status, [StreamP]),
    "peernet_stream_reset": (Status, [StreamP, C.c_uint32, C.c_char_p]),
    "peernet_stream_reset_info": (
        Status, [StreamP, C.POINTER(C.c_uint32), C.c_char_p, C.c_size_t]
    ),
    "peernet_stream_free": (None, [StreamP]),
    "peernet_stream_peer": (None, [StreamP, KeyP]),
    "peernet_stream_name": (C.c_char_p, [StreamP]),
    "peernet_stream_read_async": (
        Status, [StreamP, C.c_size_t, C.c_uint32, STREAM_READ_FN, C.c_void_p]
    ),
    "peernet_expose_stream": (
        Status, [NodeP, C.c_char_p, STREAM_HANDLER_FN, AUTHORIZE_FN, C.c_void_p, FREE_FN]
    ),
    "peernet_revoke_stream": (Status, [NodeP, C.c_char_p]),
}

for _name, (_res, _args) in _PROTOS.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

NULL_HANDLER = HANDLER_FN()
NULL_AUTHORIZE = AUTHORIZE_FN()
NULL_FREE = FREE_FN()
NULL_EVENT = EVENT_FN()
NULL_RPC = RPC_FN()
NULL_LOG = LOG_FN()


def last_error() -> str:
    return lib.peernet_last_error().decode()


def status_name(s: int) -> str:
    return lib.peernet_status_str(s).decode()


class PeernetError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status_name(status)}: {message}")
        self.status = status


def check(status: int) -> None:
    if status != 0:
        raise PeernetError(status, last_error())
