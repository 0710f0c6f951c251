"""File transfer for :class:`peernet.Node`: :meth:`~FilesMixin.send_file` and
:meth:`~FilesMixin.expose_files` (the protocol is the core's, docs/protocol.md "File
transfer": a file is resumed where an interrupted transfer stopped, its SHA-256 is
checked, and it appears on the receiver only once whole)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, NamedTuple, Optional, Union

from . import _peernet
from ._types import Key, KeyLike, _key, _seconds

if TYPE_CHECKING:
    from ._peernet import NodeHandle

__all__ = ["FilesMixin", "SendReport", "ReceivedFile", "DEFAULT_MAX_FILE_SIZE"]

#: Largest file :meth:`FilesMixin.expose_files` takes unless told (4 GiB).
DEFAULT_MAX_FILE_SIZE = 4 << 30

#: How often :meth:`FilesMixin.send_file` calls its ``progress`` callback (seconds).
PROGRESS_EVERY = 0.1


class SendReport(NamedTuple):
    """What :meth:`FilesMixin.send_file` did."""

    #: The name the receiver stored the file under.
    name: str
    #: The file's size in bytes.
    size: int
    #: Bytes the receiver already had from an interrupted transfer (not sent again).
    resumed_from: int
    #: Bytes of file data sent by this call.
    sent: int
    #: Whether the receiver's partial copy was damaged and the file was sent again whole.
    restarted: bool
    #: SHA-256 of the file, as the receiver checked it (64 hex digits).
    sha256: str


class ReceivedFile(NamedTuple):
    """A file that arrived whole (given to ``on_received``)."""

    #: Who sent it.
    peer: Key
    #: Its name.
    name: str
    #: Where it is now.
    path: str
    #: Its size in bytes.
    size: int
    #: Bytes already there from an earlier, interrupted transfer.
    resumed_from: int


class FilesMixin:
    """The file-transfer half of :class:`peernet.Node` (mixed into it)."""

    if TYPE_CHECKING:
        _h: NodeHandle

    def send_file(
        self,
        key: KeyLike,
        path: Union[str, os.PathLike[str]],
        *,
        name: Optional[str] = None,
        progress: Optional[Callable[[int, int], object]] = None,
        timeout: float = 30.0,
    ) -> SendReport:
        """Sends the file at ``path`` to ``key`` (whose node runs :meth:`expose_files`)
        and returns once the receiver checked its SHA-256 and put it in place. After an
        interrupted transfer of the same file, only the rest is sent.

        ``name`` is the name it gets there (default: the path's base name; a base name
        of 1 to 200 bytes, no path separator, no leading ``.``: anything else is a
        ``ValueError`` before any traffic). ``progress(done, total)`` is called on this
        thread every 0.1 s and at the end. ``timeout`` is how long each answer of the
        receiver may take. Raises :class:`NoSuchHandler` when the peer receives no
        files, :class:`AlreadyExists` when it has a file of that name, and
        :class:`HandlerFailed` with its reason for other refusals (too large, a damaged
        transfer). Ctrl-C stops the transfer; the receiver keeps what it got."""
        t = _peernet.send_file_start(
            self._h, _key(key), os.fspath(path), name, _seconds("timeout", timeout)
        )
        every = PROGRESS_EVERY if progress is not None else 3600.0
        try:
            while True:
                row = t.wait(every)
                if progress is not None:
                    done, total = t.progress()
                    progress(done, total)
                if row is not None:
                    return SendReport(row[0], row[1], row[2], row[3], row[4], row[5].hex())
        except BaseException:
            t.cancel()
            raise

    def expose_files(
        self,
        directory: Union[str, os.PathLike[str]],
        *,
        max_size: int = DEFAULT_MAX_FILE_SIZE,
        overwrite: bool = False,
        timeout: float = 30.0,
        on_received: Optional[Callable[[ReceivedFile], object]] = None,
    ) -> None:
        """Receives files from trusted peers into ``directory`` (which must exist). A
        file arrives as ``.NAME.part`` and becomes ``NAME`` only once whole and its
        SHA-256 checked; one over ``max_size`` bytes is refused before any data, and an
        existing file is kept (the sender gets :class:`AlreadyExists`) unless
        ``overwrite``. ``on_received(ReceivedFile)`` runs on the node's event thread
        for each file in place. :class:`AlreadyExists` if files are exposed already."""
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0:
            raise ValueError(f"max_size is a number of bytes >= 0, not {max_size!r}")
        cb = None
        if on_received is not None:
            user = on_received

            def cb(peer: bytes, name: str, path: str, size: int, resumed_from: int) -> None:
                user(ReceivedFile(Key(peer), name, path, size, resumed_from))

        _peernet.expose_files(
            self._h,
            os.fspath(directory),
            max_size,
            bool(overwrite),
            _seconds("timeout", timeout),
            cb,
        )

    def revoke_files(self) -> None:
        """Stops receiving files (transfers in progress go on to their end)."""
        _peernet.revoke_files(self._h)
