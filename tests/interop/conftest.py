"""Builds tests/interop/rpc_peer.c against include/peernet.h and $PEERNET_LIB, and runs
it as a child process speaking a line protocol (see rpc_peer.c and c_peer.py)."""

import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import c_peer  # noqa: E402
from c_peer import CPeer  # noqa: E402


def _library() -> pathlib.Path:
    lib = os.environ.get("PEERNET_LIB")
    if not lib:
        pytest.fail("set PEERNET_LIB to the path of libpeernet.so (see scripts/ci/interop.sh)")
    path = pathlib.Path(lib).resolve()
    assert path.exists(), f"{path} does not exist"
    return path


@pytest.fixture(scope="session")
def rpc_peer_binary(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return c_peer.build(
        _library(), tmp_path_factory.mktemp("lib"), tmp_path_factory.mktemp("bin")
    )


@pytest.fixture
def c_peers(rpc_peer_binary: pathlib.Path, tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    made: list[CPeer] = []

    def make(name: str) -> CPeer:
        p = CPeer(rpc_peer_binary, tmp_path / name)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
