"""Python call rate (sync and asyncio) and Python handler throughput, each as a ratio of
the Rust API doing the same work on the same machine in the same run.

Two nodes in this process on 127.0.0.1. The Rust baselines are issued through the
extension's benchmark helpers (`_bench_rust_calls`: a loop of `Node::call` in Rust;
`_bench_expose_rust_echo`: a pure-Rust echo handler), so both sides of every ratio use
the same core, the same connection and the same payload; only Python is added or not.

    python bench/bench.py [--seconds 2] [--size 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from typing import Callable

import peernet


def rate(count: int, secs: float) -> float:
    return count / secs if secs > 0 else float("inf")


def timed_count(fn: Callable[[int], None], budget: float, first: int = 200) -> tuple[int, float]:
    """Runs fn(n) with growing n until one run takes ~budget seconds; returns (n, secs)."""
    n = first
    while True:
        t = time.perf_counter()
        fn(n)
        dt = time.perf_counter() - t
        if dt >= budget * 0.5 or n >= 2_000_000:
            return n, dt
        n = int(n * min(10.0, max(2.0, budget / max(dt, 1e-3))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0, help="time budget per measurement")
    ap.add_argument("--size", type=int, default=64, help="body bytes")
    ap.add_argument("--concurrency", type=int, default=64, help="calls in flight (asyncio, throughput)")
    args = ap.parse_args()
    body = b"x" * args.size
    conc = args.concurrency
    with tempfile.TemporaryDirectory() as d:
        a = peernet.Node(os.path.join(d, "a"), listen="127.0.0.1:0")
        b = peernet.Node(os.path.join(d, "b"), listen="127.0.0.1:0", handler_threads=4)
        a.trust(b.key)
        b.trust(a.key)
        assert b.address
        a.connect(b.key, b.address)
        b._h._bench_expose_rust_echo("rust_echo")
        b.expose("py_echo", lambda peer, x: x)

        async def aecho(peer: peernet.Key, x: bytes) -> bytes:
            return x

        b.expose("py_async_echo", aecho)

        def rust_loop(name: str, c: int) -> Callable[[int], None]:
            return lambda n: (a._h._bench_rust_calls(b.key, name, args.size, n - n % c, c), None)[1]

        def py_sync(name: str) -> Callable[[int], None]:
            def run(n: int) -> None:
                call = a.call
                for _ in range(n):
                    call(b.key, name, body)
            return run

        def py_async(name: str, c: int) -> Callable[[int], None]:
            async def worker(n: int) -> None:
                for _ in range(n):
                    await a.call_async(b.key, name, body)

            def run(n: int) -> None:
                async def main() -> None:
                    await asyncio.gather(*(worker(n // c) for _ in range(c)))
                asyncio.run(main())
            return run

        # warm-up
        py_sync("rust_echo")(200)
        results: list[tuple[str, float, float]] = []

        def measure(label: str, fn: Callable[[int], None], base_label: str | None = None) -> float:
            n, dt = timed_count(fn, args.seconds)
            r = rate(n, dt)
            base = next((x[1] for x in results if x[0] == base_label), None)
            results.append((label, r, (r / base) if base else 1.0))
            ratio = f"{100 * r / base:6.1f}% of Rust" if base else "   (baseline)"
            print(f"{label:<58} {r:>10,.0f} calls/s  {ratio}", flush=True)
            return r

        print(f"peernet {peernet.__version__}, Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, body {args.size} B, {args.seconds:.0f} s budget each")
        print("\n-- caller side: the server is a pure-Rust echo handler --")
        measure("Rust  Node::call loop, 1 in flight", rust_loop("rust_echo", 1))
        measure("Python node.call, 1 in flight", py_sync("rust_echo"), "Rust  Node::call loop, 1 in flight")
        measure(f"Rust  Node::call, {conc} in flight", rust_loop("rust_echo", conc))
        measure(f"Python call_async, {conc} in flight", py_async("rust_echo", conc),
                f"Rust  Node::call, {conc} in flight")
        print("\n-- handler side: the caller is a Rust loop --")
        measure(f"Rust  handler (echo), {conc} in flight", rust_loop("rust_echo", conc))
        measure(f"Python def handler, {conc} in flight", rust_loop("py_echo", conc),
                f"Rust  handler (echo), {conc} in flight")
        measure(f"Python async def handler, {conc} in flight", rust_loop("py_async_echo", conc),
                f"Rust  handler (echo), {conc} in flight")
        measure("Rust  handler (echo), 1 in flight", rust_loop("rust_echo", 1))
        measure("Python def handler, 1 in flight", rust_loop("py_echo", 1),
                "Rust  handler (echo), 1 in flight")

        print("\n-- round trip, 1 in flight (goal: Python p50 <= 1.5 x Rust p50 + 10 us) --")
        count = max(2000, min(200_000, int(results[0][1] * args.seconds)))
        rust = sorted(a._h._bench_rust_rtts(b.key, "rust_echo", args.size, count))
        py: list[float] = []
        call, key, clock = a.call, b.key, time.perf_counter_ns
        for _ in range(count):
            t = clock()
            call(key, "rust_echo", body)
            py.append((clock() - t) / 1e3)
        py.sort()

        def pct(v: list[float], p: float) -> float:
            return v[min(len(v) - 1, int(p * (len(v) - 1)))]

        goal = 1.5 * pct(rust, 0.5) + 10
        for label, v in (("Rust  Node::call (task in the runtime)", rust),
                         ("Python node.call (blocking, GIL released)", py)):
            print(f"{label:<58} p50 {pct(v, 0.5):7.1f} us   p99 {pct(v, 0.99):7.1f} us")
        met = "met" if pct(py, 0.5) <= goal else "NOT met"
        print(f"{'goal: Python p50 <= ' + f'{goal:.1f} us':<58} {met}")
        a.close()
        b.close()


if __name__ == "__main__":
    main()
