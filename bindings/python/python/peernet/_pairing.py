"""Pairing: :meth:`Node.invite` returns an :class:`Invite`; :meth:`Node.join` a
:class:`Paired`. The protocol (tickets, SPAKE2 short codes, Noise XXpsk3) lives in the
Rust core; this module only wraps it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from . import _peernet

if TYPE_CHECKING:
    from ._api import Key

__all__ = ["Invite", "Paired"]


@dataclass(frozen=True)
class Paired:
    """Whom a pairing made this node trust."""

    #: The peer's key, now trusted (the one its handshake proved).
    key: Key
    #: The name it chose: its trust label.
    name: str
    #: Where it accepts connections ("ip:port"), if it listens.
    address: Optional[str]
    #: Five verification words; the other screen shows the same ones.
    sas: str


def _paired(t: tuple[bytes, str, Optional[str], str]) -> Paired:
    from ._api import Key

    return Paired(Key(t[0]), t[1], t[2], t[3])


class Invite:
    """An open invite: give :attr:`code` (read aloud) or :attr:`ticket` (copy-paste or
    :meth:`qr`) to the other person, whose program calls :meth:`Node.join`. It pairs
    once; one attempt on the code, right or wrong, burns the code. :meth:`close` (or
    ``with``, or garbage collection) closes the pairing listener."""

    def __init__(self, handle: _peernet.InviteHandle) -> None:
        self._h: Optional[_peernet.InviteHandle] = handle
        self._ticket = handle.ticket
        self._code = handle.code
        self._expires_at = handle.expires_at

    @property
    def ticket(self) -> str:
        """The ticket, ``peernet1-…``: typos are caught, naming the group."""
        return self._ticket

    @property
    def code(self) -> Optional[str]:
        """The short code, e.g. ``7-copper-violin`` (``None`` if not asked for)."""
        return self._code

    @property
    def expires_at(self) -> float:
        """When the invite expires, in unix seconds."""
        return self._expires_at

    @property
    def is_open(self) -> bool:
        """True while someone can still pair with it."""
        return self._h is not None and self._h.is_open

    def qr(self, invert: bool = False) -> str:
        """The ticket as a QR code in terminal text (Unicode half blocks); ``invert``
        for terminals with light text on a dark background."""
        return _peernet.qr_text(self._ticket, invert)

    def wait(self, timeout: float = 600.0) -> Paired:
        """Blocks until someone paired (returns who), the invite ended
        (``ValueError`` naming why: expired, cancelled) or ``timeout`` passed
        (:class:`Timeout`; the invite stays open)."""
        if self._h is None:
            raise ValueError("the invite was closed")
        return _paired(self._h.wait(float(timeout)))

    async def wait_async(self, timeout: float = 600.0) -> Paired:
        """Like :meth:`wait`, awaitable (waits in a worker thread)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.wait, timeout)

    def close(self) -> None:
        """Closes the pairing listener. Idempotent."""
        if self._h is not None:
            self._h.cancel()
            self._h = None

    def __enter__(self) -> Invite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<peernet.Invite code={self._code!r} {state}>"
