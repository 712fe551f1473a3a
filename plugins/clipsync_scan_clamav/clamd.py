"""The part of clamd's protocol a scan needs: PING and INSTREAM, over asyncio sockets.

clamd (ClamAV's daemon) listens on a unix socket (`LocalSocket`) or on TCP
(`TCPSocket`). A command is a `z` and its name, ended by a NUL (`zPING\\0`); so is
each reply. INSTREAM sends the file as chunks, each a 4-byte big-endian length and
that many bytes, ended by a zero length; clamd answers `stream: OK`, `stream: <name>
FOUND`, or `<reason> ERROR`. Past its `StreamMaxLength` clamd answers "INSTREAM size
limit exceeded. ERROR" at once and closes the connection, so the reply is read while
the file is still being sent. The socket is used through the loop's `sock_*` calls,
not a stream transport: a transport whose write fails (clamd has hung up) closes its
reading side too, and the reply still waiting on the socket, the one that says why,
would be lost.

Written here rather than taken from PyPI: python-clamd was last released in 2014 and
blocks; aioclamd ports its API to asyncio but takes a whole file object and does not
tell clamd's size limit apart from other errors. These hundred lines stream any
chunks in bounded memory, over either socket, with one deadline for the whole scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

# What one read from the file and one INSTREAM chunk hold: the memory a scan needs.
CHUNK_BYTES = 256 * 1024
# clamd's replies are short ("stream: <signature name> FOUND"); anything longer is wrong.
MAX_REPLY = 4096


class ClamdUnavailable(Exception):
    """clamd could not be reached, did not answer in time, or could not scan."""


class StreamTooLarge(Exception):
    """clamd stopped reading: the file is larger than its StreamMaxLength."""


@dataclass(frozen=True)
class Address:
    """Where clamd listens: a unix socket's path, or a TCP host and port."""

    socket: str = ""
    host: str = ""
    port: int = 3310

    def __str__(self) -> str:
        return f"clamd at {self.socket}" if self.socket else f"clamd at {self.host}:{self.port}"

    async def connect(self) -> socket.socket:
        """A non-blocking socket connected to clamd."""
        loop = asyncio.get_running_loop()
        try:
            if self.socket:
                family, kind, proto, target = socket.AF_UNIX, socket.SOCK_STREAM, 0, self.socket
            else:
                found = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
                family, kind, proto, _name, target = found[0]
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, target)
            except BaseException:
                sock.close()
                raise
        except OSError as exc:
            raise ClamdUnavailable(f"{self} cannot be reached: {exc.strerror or exc}") from None
        return sock


async def file_chunks(path: Path, size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """The file's bytes, `size` at a time, read off the event loop."""
    with path.open("rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, size):
            yield chunk


async def ping(address: Address, seconds: float) -> None:
    """Raise `ClamdUnavailable` unless clamd answers PING with PONG in time."""
    reply = await _exchange(address, b"zPING\0", None, seconds)
    if reply != "PONG":
        raise ClamdUnavailable(f"{address} answered PING with {reply!r}")


async def instream(address: Address, chunks: AsyncIterator[bytes], seconds: float) -> str | None:
    """Scan the chunks; the name of the signature they match, or None when clean.

    Raises `StreamTooLarge` when clamd stops at its StreamMaxLength, and
    `ClamdUnavailable` when it cannot be reached, takes longer than `seconds`
    from connecting to its verdict, or answers with an error.
    """
    reply = await _exchange(address, b"zINSTREAM\0", chunks, seconds)
    if reply == "stream: OK":
        return None
    if reply.startswith("stream: ") and reply.endswith(" FOUND"):
        return reply.removeprefix("stream: ").removesuffix(" FOUND").strip() or "unknown"
    if "size limit exceeded" in reply:
        raise StreamTooLarge(reply)
    raise ClamdUnavailable(f"{address} could not scan: {reply or 'no answer'}")


async def _exchange(
    address: Address, command: bytes, chunks: AsyncIterator[bytes] | None, seconds: float
) -> str:
    """Send a command (and the chunks, for INSTREAM); return clamd's reply, NUL removed."""
    try:
        async with asyncio.timeout(seconds):
            sock = await address.connect()
            loop = asyncio.get_running_loop()
            # Listening from the start: clamd may answer (and hang up) mid-stream.
            reply = asyncio.create_task(_read_reply(sock))
            try:
                # clamd hung up: its reply, still readable on the socket, says why.
                with contextlib.suppress(ConnectionError):
                    await loop.sock_sendall(sock, command)
                    if chunks is not None:
                        await _send(sock, chunks, reply)
                return await reply
            finally:
                reply.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await reply  # the loop stops watching the socket before it is closed
                sock.close()
    except TimeoutError:
        raise ClamdUnavailable(f"{address} did not answer within {seconds:g} s") from None
    except ConnectionError as exc:
        raise ClamdUnavailable(f"{address} closed the connection: {exc}") from None


async def _send(
    sock: socket.socket, chunks: AsyncIterator[bytes], reply: asyncio.Task[str]
) -> None:
    loop = asyncio.get_running_loop()
    async for chunk in chunks:
        if reply.done():  # clamd has stopped reading
            return
        for start in range(0, len(chunk), CHUNK_BYTES):
            part = chunk[start : start + CHUNK_BYTES]
            await loop.sock_sendall(sock, struct.pack("!L", len(part)))
            await loop.sock_sendall(sock, part)  # at most one chunk waits in memory
    await loop.sock_sendall(sock, struct.pack("!L", 0))


async def _read_reply(sock: socket.socket) -> str:
    loop = asyncio.get_running_loop()
    data = bytearray()
    while len(data) <= MAX_REPLY:
        got = await loop.sock_recv(sock, MAX_REPLY)
        if not got:
            break
        data += got
        if b"\0" in data:
            break
    return bytes(data).split(b"\0", 1)[0].decode("utf-8", "replace").strip()
