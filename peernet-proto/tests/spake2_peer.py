"""The other side of tests/spake2_python.rs: python-spake2 (PyPI `spake2`, the
implementation magic-wormhole uses) plays one SPAKE2 role against peernet-proto's.

Usage: spake2_peer.py a|b PASSWORD ID_A ID_B   (this script's role)
Prints its message (hex), reads the Rust side's message (hex) from stdin, prints the
key (hex)."""

import sys

import spake2

role, pw, ida, idb = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode(), sys.argv[4].encode()
cls = spake2.SPAKE2_A if role == "a" else spake2.SPAKE2_B
s = cls(pw, idA=ida, idB=idb)
print(s.start().hex(), flush=True)
other = bytes.fromhex(sys.stdin.readline().strip())
print(s.finish(other).hex(), flush=True)
