"""Reading one file field of a multipart/form-data body as a stream.

Sanic only parses multipart bodies it has read whole; a video upload must instead
flow to storage in bounded memory. python-multipart's incremental parser is fed the
body as it arrives, and the bytes of the wanted field are handed on chunk by chunk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from sanic import Request

from clipsync.errors import BadRequest


class StreamedFile:
    """The file sent in form field `field`; call `open()` first, then `chunks()`."""

    def __init__(self, request: Request, field: str = "file") -> None:
        kind, options = parse_options_header(request.headers.get("content-type", ""))
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise BadRequest("Send the video as multipart/form-data with a field named 'file'.")
        self.request = request
        self.field = field.encode()
        self.filename = ""
        self.content_type = "application/octet-stream"
        self._pending: deque[bytes] = deque()
        self._header_name = b""
        self._headers: dict[bytes, bytes] = {}
        self._in_field = False
        self._found = False
        self._done = False
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    # --- parser callbacks -----------------------------------------------------------

    def _part_begin(self) -> None:
        self._headers = {}
        self._header_name = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        name = self._header_name.lower()
        self._headers[name] = self._headers.get(name, b"") + data[start:end]

    def _header_end(self) -> None:
        self._header_name = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == self.field and not self._found:
            self._found = self._in_field = True
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace")
            kind = self._headers.get(b"content-type")
            if kind:
                self.content_type = kind.decode("latin-1").strip()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_field:
            self._pending.append(bytes(data[start:end]))

    def _part_end(self) -> None:
        if self._in_field:
            self._in_field = False
            self._done = True

    def _end(self) -> None:
        self._ended = True

    # --- reading --------------------------------------------------------------------

    async def _feed(self) -> bool:
        """Feed the next piece of the body to the parser; False at the end of the body."""
        chunk = await self.request.stream.read()
        if chunk is None:
            return False
        try:
            self._parser.write(chunk)
        except MultipartParseError:
            # A client's malformed form, not a fault of ours: a 400 that says so.
            raise BadRequest("The body is not valid multipart/form-data.") from None
        return True

    async def open(self) -> None:
        """Read until the file field's headers are known (its name and type)."""
        while not self._found:
            if not await self._feed():
                raise BadRequest("The form has no file in a field named 'file'.")

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes, as they arrive; the rest of the body is read and dropped."""
        while True:
            while self._pending:
                yield self._pending.popleft()
            if self._done:
                break
            if not await self._feed():
                raise BadRequest("The upload was cut off before the file ended.")
        # Read the closing boundary (and any later fields) so the connection stays usable.
        while await self._feed():
            self._pending.clear()
