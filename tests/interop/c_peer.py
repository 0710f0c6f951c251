"""The C peer of the cross-language tests: builds tests/interop/rpc_peer.c against
include/peernet.h and a libpeernet.so, and runs it as a child process speaking the line
protocol described at the top of rpc_peer.c. Shared by tests/interop (Python package
on the other side) and tests/ctypes (ctypes on the other side)."""

import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT = 10.0


def build(library: pathlib.Path, libdir: pathlib.Path, bindir: pathlib.Path) -> pathlib.Path:
    """Compiles rpc_peer into `bindir` against `library`, laid out in `libdir`."""
    # The library's SONAME is libpeernet.so.<ABI_VERSION> (docs/c-api.md): lay out the
    # names an installed copy would have.
    abi = (ROOT / "peernet-ffi" / "ABI_VERSION").read_text().strip()
    for name in ("libpeernet.so", f"libpeernet.so.{abi}"):
        (libdir / name).symlink_to(library)
    out = bindir / "rpc_peer"
    cmd = [
        os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra", "-Werror",
        "-I", str(ROOT / "include"), str(ROOT / "tests/interop/rpc_peer.c"),
        "-o", str(out), "-L", str(libdir), f"-Wl,-rpath,{libdir}", "-lpeernet",
    ]
    subprocess.run(cmd, check=True)
    return out


class CPeer:
    """One running rpc_peer process."""

    def __init__(self, binary: pathlib.Path, data_dir: pathlib.Path) -> None:
        self.proc = subprocess.Popen(
            [str(binary), str(data_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        first = self._line()
        parts = first.split()
        assert parts[0] == "KEY" and parts[2] == "PORT", first
        self.key_hex = parts[1]
        self.port = int(parts[3])
        self.address = f"127.0.0.1:{parts[3]}"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        # A child that hangs is killed by the fixture's finaliser; pytest-timeout
        # bounds the test itself.
        line = self.proc.stdout.readline()
        assert line, "rpc_peer exited"
        return line.rstrip("\n")

    def cmd(self, text: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self._line()

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.cmd("quit")
                except (AssertionError, BrokenPipeError):
                    pass
                try:
                    self.proc.wait(TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
        assert self.proc.returncode == 0, f"rpc_peer exited with {self.proc.returncode}"
