"""What the core calls back into: the asyncio loop that runs ``async def`` handlers, the
handler, authorize, RPC and event trampolines (they hold the node by weak reference), and
the JSON encoding of RPC arguments and results. Used by ``peernet._api.Node``."""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
import logging
import os
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional

from . import _peernet
from ._types import Event, Key

if TYPE_CHECKING:
    from ._api import Node

_log = logging.getLogger("peernet")

# ---- the asyncio loop that runs `async def` handlers -------------------------------

_loop_lock = threading.Lock()
_loop_state: dict[str, Any] = {}


def _handler_loop() -> asyncio.AbstractEventLoop:
    """peernet's own event loop (one daemon thread per process, started on first use)."""
    with _loop_lock:
        pid = os.getpid()
        loop = _loop_state.get("loop")
        if loop is not None and _loop_state.get("pid") == pid:
            return loop  # type: ignore[no-any-return]
        loop = asyncio.new_event_loop()
        t = threading.Thread(target=loop.run_forever, name="peernet-asyncio", daemon=True)
        t.start()
        _loop_state.update(loop=loop, pid=pid, thread=t)
        return loop


def _describe(e: BaseException) -> str:
    msg = str(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _reply(responder: _peernet.Responder, result: object) -> None:
    if result is None:
        responder.ok(b"")
    elif isinstance(result, (bytes, bytearray, memoryview)):
        responder.ok(bytes(result))
    else:
        responder.err(f"handler returned {type(result).__name__}, expected bytes")


def _finish_async(responder: _peernet.Responder, fut: Any) -> None:
    if fut.cancelled():
        responder.err("handler cancelled")
        return
    e = fut.exception()
    if e is not None:
        responder.err(_describe(e))
    else:
        _reply(responder, fut.result())


def _dispatch(
    node_ref: weakref.ReferenceType[Node],
    name: str,
    peer: bytes,
    body: bytes,
    is_call: bool,
    responder: _peernet.Responder,
) -> None:
    """Runs on a handler thread with the GIL: calls the user's handler."""
    node = node_ref()
    entry = node._handlers.get(name) if node is not None else None
    if entry is None:
        responder.err("node closed")
        return
    del node
    key = Key(peer)
    try:
        result = entry.func(key, body)
        if entry.is_async:
            cf = asyncio.run_coroutine_threadsafe(result, _handler_loop())
            cf.add_done_callback(functools.partial(_finish_async, responder))
            return
    except Exception as e:
        if not is_call:
            _log.warning("handler %r failed on a send from fingerprint %s: %s", name, key.fingerprint, e)
        responder.err(_describe(e))
        return
    _reply(responder, result)


def _authorize(
    node_ref: weakref.ReferenceType[Node], name: str, peer: bytes
) -> bool:
    node = node_ref()
    entry = node._handlers.get(name) if node is not None else None
    if entry is None or entry.authorize is None:
        return False
    del node
    try:
        return bool(entry.authorize(Key(peer)))
    except Exception:
        _log.exception("authorize predicate of %r raised; refusing", name)
        return False


def _rpc_function(module: str, function: str) -> Callable[..., Any]:
    """``module.function``, if it is a function defined in that module: a Python function
    whose globals are the module's, or a builtin function of that (C) module. Anything
    else the module holds — names it imported (``from subprocess import check_output``),
    classes, methods, other callables — is refused: an allowed module must not become a
    way to reach the modules it uses."""
    mod = importlib.import_module(module)
    fn = getattr(mod, function)
    if inspect.isfunction(fn):
        own = fn.__globals__ is vars(mod) and fn.__module__ == mod.__name__
    elif inspect.isbuiltin(fn):
        own = fn.__self__ is mod
    else:
        own = False
    if not own:
        raise PermissionError(
            f"{module}.{function} is not a function defined in {module} "
            "(imported names, classes and other objects are not callable by RPC)"
        )
    return fn  # type: ignore[no-any-return]


def _rpc_dispatch(
    allow: Optional[frozenset[str]],
    peer: bytes,
    module: str,
    function: str,
    args: bytes,
    responder: _peernet.Responder,
) -> None:
    """The default RPC dispatcher: ``module.function(*json_args)`` -> JSON result.

    The core hands calls here only from peers granted RPC rights, on the node's RPC
    threads (never the handler threads), within the node's ``rpc_timeout``."""
    try:
        if allow is not None and module not in allow:
            raise PermissionError(f"module {module!r} is not in rpc_modules")
        if function.startswith("_"):
            raise PermissionError(f"{function!r} is private")
        decoded = json.loads(args.decode("utf-8")) if args else []
        if not isinstance(decoded, list):
            raise TypeError("RPC arguments must be a JSON array")
        fn = _rpc_function(module, function)
        result = fn(*decoded)
        try:
            out = json.dumps(result)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"result of {module}.{function} is not JSON-serialisable "
                f"({type(result).__name__}): {e}"
            ) from None
    except Exception as e:
        responder.err(_describe(e))
        return
    responder.ok(out.encode("utf-8"))


def _deliver_event(
    node_ref: weakref.ReferenceType[Node],
    kind: str,
    key: Optional[bytes],
    address: Optional[str],
    reason: str,
    close_reason: Optional[str] = None,
) -> None:
    node = node_ref()
    if node is None:
        return
    ev = Event(kind, Key(key) if key is not None else None, address, reason, close_reason)
    for cb in list(node._event_callbacks):
        try:
            cb(ev)
        except Exception:
            _log.exception("event callback raised")


def _identity(b: bytes) -> bytes:
    return b


def _json_result(b: bytes) -> Any:
    return json.loads(b.decode("utf-8"))


def _json_args(args: Sequence[Any]) -> bytes:
    if isinstance(args, (str, bytes)):
        raise TypeError("args is a sequence of JSON-serialisable values")
    return json.dumps(list(args)).encode("utf-8")
