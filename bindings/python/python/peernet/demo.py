"""``peernet demo``: several nodes in one process on loopback, showing the feature set.

Every step asserts what it prints; the demo exits 1 at the first step that fails. All
traffic stays on 127.0.0.1; discovery broadcasts to 127.255.255.255 on a random port.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional

from ._api import Event, Key, Node, UdpDiscovery
from ._streams import Stream
from ._errors import (
    Busy,
    Forbidden,
    HandlerFailed,
    HandshakeFailed,
    NoSuchHandler,
    NotConnected,
    PeerNetError,
    UntrustedPeer,
)


class StepFailed(Exception):
    """A demo step did not show what it should."""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Transcript:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.steps = 0

    def say(self, who: str, text: str) -> None:
        print(f"  [{time.monotonic() - self.t0:5.2f}s] {who:<6} {text}", flush=True)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.steps += 1
        print(f"\n{self.steps}. {title}", flush=True)
        yield

    def check(self, cond: object, what: str) -> None:
        if not cond:
            raise StepFailed(what)


def _expect(exc: type[BaseException] | tuple[type[BaseException], ...], fn: Callable[[], Any]) -> BaseException:
    try:
        fn()
    except exc as e:
        return e
    raise StepFailed(f"expected {exc}, but the call succeeded")


class EventLog:
    """Collects a node's events so steps can wait for them (no sleeps)."""

    def __init__(self, node: Node) -> None:
        self.cond = threading.Condition()
        self.events: list[Event] = []
        node.on_event(self._add)

    def _add(self, ev: Event) -> None:
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def wait(self, kind: str, key: Key, timeout: float = 10.0, since: int = 0) -> Event:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.events[since:]:
                    if ev.kind == kind and ev.key == key:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StepFailed(f"no {kind!r} event for fingerprint {key.fingerprint} within {timeout} s")
                self.cond.wait(left)

    def mark(self) -> int:
        with self.cond:
            return len(self.events)


def run() -> int:
    """Runs the demo; returns the exit status."""
    tmp = Path(tempfile.mkdtemp(prefix="peernet-demo-"))
    tr = Transcript()
    nodes: list[Node] = []
    disc = UdpDiscovery(port=_free_udp_port(), interval=0.25, broadcast=["127.255.255.255"])

    def start(name: str, **kw: Any) -> Node:
        n = Node(tmp / name, listen="127.0.0.1:0", discovery=disc, heartbeat=(1.0, 3.0), **kw)
        nodes.append(n)
        return n

    print("PeerNet demo: three nodes in this process, on 127.0.0.1 only.")
    print(f"(data dirs in {tmp}; discovery on UDP port {disc.port} to 127.255.255.255)")
    try:
        with tr.step("Start alice, bob and carol; each has its own X25519 identity"):
            alice = start("alice")
            alog = EventLog(alice)
            bob = start("bob", rpc_modules=["math", "statistics"])
            blog = EventLog(bob)
            carol = start("carol")
            for name, n in (("alice", alice), ("bob", bob), ("carol", carol)):
                tr.say(name, f"key {n.key.hex()[:16]}… (fingerprint {n.key.fingerprint})  listening on {n.address}")
            tr.check(len({alice.key, bob.key, carol.key}) == 3, "keys are distinct")

        with tr.step("Discovery: UDP announcements on loopback"):
            for n, name in ((bob, "bob"), (carol, "carol")):
                ev = alog.wait("discovered", n.key)
                tr.say("alice", f"discovered {name} (fingerprint {n.key.fingerprint}) at {ev.address}")
            tr.say("alice", "nobody is trusted yet, so nobody connects (default deny)")
            tr.check(not alice.is_connected(bob.key), "no connection before pairing")

        with tr.step("Pairing: alice invites, bob joins with the short code"):
            invite = alice.invite(name="alice", expiry=60.0)
            tr.say("alice", f"invite code {invite.code} (read aloud; only its number is announced)")
            paired = bob.join(str(invite.code), name="bob", timeout=10.0)
            invite.wait()
            tr.check(
                any(e.key == alice.key for e in bob.trusted())
                and any(e.key == bob.key for e in alice.trusted()),
                "both trust each other",
            )
            tr.say("bob", f"paired with {paired.name!r}; verification words: {paired.sas}")
            alog.wait("connected", bob.key)
            blog.wait("connected", alice.key)
            wa, wb = alice.verification_words(bob.key), bob.verification_words(alice.key)
            tr.check(wa is not None and wa == wb, "both screens show the same words")
            tr.say("alice", f"connected to bob (Noise XX); this connection's words: {wa}")

        with tr.step("Call: bob exposes 'greet', alice calls it"):

            @bob.expose("greet")
            def greet(peer: Key, body: bytes) -> bytes:
                return b"hi " + body + b", from bob"

            reply = alice.call(bob.key, "greet", b"alice", timeout=5.0)
            tr.say("alice", f"call greet(b'alice') -> {reply!r}")
            tr.check(reply == b"hi alice, from bob", "greet reply")

            async def many() -> list[bytes]:
                return await asyncio.gather(*(alice.call_async(bob.key, "greet", b"%d" % i) for i in range(100)))

            t = time.monotonic()
            replies = asyncio.run(many())
            tr.check(replies[42] == b"hi 42, from bob", "async replies")
            tr.say("alice", f"100 concurrent call_async -> 100 replies in {1000 * (time.monotonic() - t):.0f} ms")

        with tr.step("Send: fire-and-forget to bob's 'chat' handler"):
            inbox: list[bytes] = []
            got = threading.Event()

            @bob.expose("chat")
            def chat(peer: Key, body: bytes) -> None:
                inbox.append(body)
                got.set()

            alice.send(bob.key, "chat", b"over and out")
            tr.say("alice", "send chat(b'over and out')  (no reply)")
            tr.check(got.wait(5), "the message arrived")
            tr.say("bob", f"chat handler got {inbox[0]!r}")

        with tr.step("Streams: 8 MiB through one stream, then a file with send_file"):

            @bob.expose_stream("upload")
            def upload(stream: Stream) -> None:
                digest = hashlib.sha256()
                for chunk in stream:
                    digest.update(chunk)
                stream.write(digest.hexdigest().encode())

            payload = os.urandom(8 << 20)
            t = time.monotonic()
            with alice.open_stream(bob.key, "upload") as s:
                for i in range(0, len(payload), 1 << 20):
                    s.write(payload[i : i + (1 << 20)])
                    if i == 4 << 20:
                        # Calls interleave with the stream on the same connection.
                        tr.check(alice.call(bob.key, "greet", b"mid-stream") == b"hi mid-stream, from bob", "call")
                s.close()
                answer = s.read(timeout=10.0)
            tr.check(answer == hashlib.sha256(payload).hexdigest().encode(), "bob's hash matches")
            tr.say("alice", f"8 MiB written to bob's 'upload' stream in {time.monotonic() - t:.2f} s, "
                   "a call answered half-way; bob's sha256 matches")
            inbox_dir = tmp / "bob-inbox"
            inbox_dir.mkdir()
            bob.expose_files(inbox_dir)
            src = tmp / "photo.bin"
            src.write_bytes(payload[: 3 << 20])
            report = alice.send_file(bob.key, src)
            tr.check((inbox_dir / "photo.bin").read_bytes() == src.read_bytes(), "file arrived intact")
            tr.say("alice", f"send_file photo.bin: {report.sent} bytes sent, checked by SHA-256 on bob's side")
            tr.say("alice", "(an interrupted send_file resumes: it sends only what bob does not have)")

        with tr.step("Default deny: what is refused, and how"):
            e = _expect(UntrustedPeer, lambda: carol.connect(bob.key, bob.address or "", timeout=5.0))
            tr.say("carol", f"connect to bob without trusting him -> {type(e).__name__}")
            carol.trust(bob.key)
            e = _expect(
                (UntrustedPeer, HandshakeFailed, PeerNetError),
                lambda: carol.connect(bob.key, bob.address or "", timeout=5.0),
            )
            tr.say("carol", f"trusts bob, bob does not trust carol -> {type(e).__name__}: {e}")
            e = _expect(NotConnected, lambda: carol.call(bob.key, "greet", b"carol"))
            tr.say("carol", f"call greet anyway -> {type(e).__name__}")
            e = _expect(NoSuchHandler, lambda: alice.call(bob.key, "shutdown"))
            tr.say("alice", f"call a handler bob never exposed -> {type(e).__name__}")
            bob.expose("admin", lambda peer, body: b"root shell", authorize=lambda peer: False)
            e = _expect(Forbidden, lambda: alice.call(bob.key, "admin"))
            tr.say("alice", f"call 'admin' (authorize says no) -> {type(e).__name__}")

            @bob.expose("divide")
            def divide(peer: Key, body: bytes) -> bytes:
                return str(1 / int(body)).encode()

            e = _expect(HandlerFailed, lambda: alice.call(bob.key, "divide", b"0"))
            tr.say("alice", f"call divide(0) -> {type(e).__name__}: {e}")
            tr.check(alice.call(bob.key, "divide", b"4") == b"0.25", "bob keeps serving")
            tr.say("alice", "call divide(4) -> b'0.25'  (bob keeps serving)")

        with tr.step("RPC: apply(module, function, args) for a specifically trusted peer"):
            e = _expect(Forbidden, lambda: alice.rpc_call(bob.key, "math", "hypot", [3, 4]))
            tr.say("alice", f"rpc math.hypot(3, 4) before any grant -> {type(e).__name__}")
            bob.grant_rpc(alice.key)
            tr.say("bob", "grant_rpc(alice)  (bob's rpc_modules: math, statistics)")
            r = alice.rpc_call(bob.key, "math", "hypot", [3, 4])
            tr.check(r == 5.0, "hypot result")
            tr.say("alice", f"rpc math.hypot(3, 4) -> {r}")
            r = alice.rpc_call(bob.key, "statistics", "mean", [[1, 2, 3, 4]])
            tr.check(r == 2.5, "mean result")
            tr.say("alice", f"rpc statistics.mean([1, 2, 3, 4]) -> {r}")
            e = _expect(HandlerFailed, lambda: alice.rpc_call(bob.key, "os", "getcwd"))
            tr.say("alice", f"rpc os.getcwd() -> {type(e).__name__}: {e}")
            imported = getattr(__import__("statistics"), "sqrt", None)
            if imported is not None and getattr(imported, "__module__", "") != "statistics":
                e = _expect(HandlerFailed, lambda: alice.rpc_call(bob.key, "statistics", "sqrt", [4]))
                tr.say("alice", "rpc statistics.sqrt(4), a name statistics imported from math ->")
                tr.say("alice", f"  {type(e).__name__}: {e}")
            bob.grant_rpc(alice.key, False)
            e = _expect(Forbidden, lambda: alice.rpc_call(bob.key, "math", "hypot", [3, 4]))
            tr.say("alice", f"after bob revokes the grant: rpc -> {type(e).__name__} (same connection)")

        with tr.step("One process per data directory, and numbers to look at"):
            e = _expect(Busy, lambda: Node(tmp / "bob", listen="127.0.0.1:0"))
            tr.say("demo", f"a second node on bob's data directory -> {type(e).__name__}: {e}")
            bm, am = bob.metrics(), alice.metrics()
            tr.check(bm.handshakes_untrusted >= 1, "bob counted carol's untrusted handshake")
            tr.check(am.calls_out >= 100, "alice counted her calls")
            tr.say("bob", f"metrics: {bm.handshakes_ok} handshakes ok, {bm.handshakes_untrusted} refused as "
                   f"untrusted, {bm.calls_in} calls in, {bm.bytes_in} bytes in")
            tr.say("alice", f"metrics: {am.calls_out} calls out, {am.sends_out} send out; "
                   f"{len(bob.metrics_text().splitlines())} lines of OpenMetrics text on bob")
            detail = carol.peer(bob.key)
            if detail is not None and detail.last_dial is not None:
                d = detail.last_dial
                tr.say("carol", f"why not connected to bob: last dial to {d.address}: {d.error or 'connected'}")

        with tr.step("Reconnect: bob restarts (same identity, new port)"):
            old_addr = bob.address
            mark = alog.mark()
            bob.close()
            nodes.remove(bob)
            gone = alog.wait("disconnected", bob.key, since=mark)
            tr.say("alice", f"bob went away -> disconnected event (close_reason {gone.close_reason!r})")
            e = _expect(NotConnected, lambda: alice.call(bob.key, "greet", b"?"))
            tr.say("alice", f"call while bob is down -> {type(e).__name__}")
            t = time.monotonic()
            bob2 = start("bob")
            tr.check(bob2.key == bob.key, "same identity after restart")
            bob2.expose("greet", lambda peer, body: b"hi again " + body)
            tr.say("bob", f"restarted: same key (fingerprint {bob2.key.fingerprint}), now on {bob2.address} (was {old_addr})")
            alog.wait("connected", bob2.key, since=mark)
            bob2.wait_connected(alice.key, timeout=10.0)
            tr.say("alice", f"reconnected to bob automatically in {time.monotonic() - t:.2f} s")
            reply = alice.call(bob2.key, "greet", b"alice", timeout=5.0)
            tr.check(reply == b"hi again alice", "call after reconnect")
            tr.say("alice", f"call greet(b'alice') -> {reply!r}")
    except (StepFailed, PeerNetError) as e:
        print(f"\nFAILED in step {tr.steps}: {type(e).__name__}: {e}", flush=True)
        return 1
    finally:
        for n in nodes:
            n.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nDemo finished: {tr.steps} steps OK in {time.monotonic() - tr.t0:.1f} s.")
    return 0


def main() -> Optional[int]:  # pragma: no cover - convenience
    return run()
