"""Answer with a local file's bytes, sent by the kernel (`sendfile(2)`) where it can.

Sanic's `response.file` reads the whole file into memory and `response.file_stream`
copies it through Python in chunks (both through aiofiles' thread pool); neither uses
`sendfile`. Here the headers go out through Sanic as usual (so every response
middleware runs), then the body goes from the page cache to the socket with
`os.sendfile`, without passing through Python.

That needs a plain HTTP/1.1 connection on a socket: under TLS, HTTP/3, or the ASGI
test client, and for whatever the kernel would not take, the bytes are copied through
the response as any streamed body is. Sanic counts a body's bytes against its
Content-Length (`Http.response_bytes_left`): the bytes sent here are subtracted
from it, the one piece of Sanic's HTTP/1 state this module touches.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import IO

from sanic import Request
from sanic.exceptions import RequestCancelled
from sanic.response import BaseHTTPResponse

CHUNK = 256 * 1024


async def send_file(
    request: Request,
    path: Path,
    span: tuple[int, int] | None,
    size: int,
    *,
    headers: dict[str, str],
    content_type: str,
) -> bool:
    """Answer `request` with the file at `path` (`size` bytes), or its `span` (inclusive).

    200 for the whole file, 206 with Content-Range for a span. Returns whether the
    kernel sent the body (False: copied, or no body). FileNotFoundError before
    anything is sent when the file is gone.
    """
    start, end = span or (0, size - 1)
    length = max(0, end - start + 1)
    headers = {**headers, "Accept-Ranges": "bytes", "Content-Length": str(length)}
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    with path.open("rb") as fh:
        response = await request.respond(
            status=206 if span else 200, headers=headers, content_type=content_type
        )
        kernel = False
        if request.method != "HEAD" and length:
            sent = await _by_kernel(request, response, fh, start, length)
            kernel = sent > 0
            await _copy(response, fh, start + sent, length - sent)
        await response.eof()
    return kernel


async def _copy(response: BaseHTTPResponse, fh: IO[bytes], offset: int, length: int) -> None:
    """The bytes the kernel did not send, through the response like any body."""
    fh.seek(offset)
    while length > 0:
        chunk = fh.read(min(CHUNK, length))
        if not chunk:
            raise OSError("the file became shorter while it was being sent")
        length -= len(chunk)
        await response.send(chunk)


async def _by_kernel(
    request: Request, response: BaseHTTPResponse, fh: IO[bytes], offset: int, length: int
) -> int:
    """Send up to `length` bytes from `offset` with sendfile; how many were sent."""
    http = request.stream
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or transport.get_extra_info("sslcontext") is not None:
        return 0
    await response.send(b"")  # the headers, through Sanic
    if not isinstance(getattr(http, "response_bytes_left", None), int):
        return 0  # not Sanic's HTTP/1 (which sets it once the headers are out)
    if transport.get_write_buffer_size():
        return 0  # bytes of ours still queued would come after the file's
    sent = 0
    socket_fd = sock.fileno()
    try:
        while sent < length:
            try:
                done = os.sendfile(socket_fd, fh.fileno(), offset + sent, length - sent)
            except BlockingIOError:
                await _writable(socket_fd)
                # A body that takes long must not look idle to Sanic's response timeout.
                await response.send(b"")
                continue
            if done == 0:
                break  # the file ended early: _copy says so
            sent += done
    except (BrokenPipeError, ConnectionResetError):
        # The client went away mid-file, as Sanic's own sends report it.
        transport.close()
        raise RequestCancelled from None
    finally:
        http.response_bytes_left -= sent
    return sent


async def _writable(socket_fd: int) -> None:
    """Wait until the socket takes more bytes.

    The event loop watches the socket's own descriptor for its transport and refuses
    a second watcher on it; a duplicate descriptor names the same socket.
    """
    loop = asyncio.get_running_loop()
    duplicate = os.dup(socket_fd)
    ready = loop.create_future()
    loop.add_writer(duplicate, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_writer(duplicate)
        os.close(duplicate)
