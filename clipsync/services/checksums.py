"""A SHA-256 whose progress can be saved in the database and picked up again.

A resumable upload hashes its bytes as they arrive, so the finished video's checksum
costs no second read (with S3 storage that read would be a download). An upload may
outlive the server process, though, and `hashlib` cannot save a hash half-way. So
this hashes with OpenSSL's `SHA256_Init/Update/Final` through ctypes: the state is
then a plain `SHA256_CTX` (112 bytes) that is saved with the upload's offset and
loaded again after a restart. Those functions are deprecated in OpenSSL 3 but still
exported, and stable; the module checks itself against `hashlib` at import. Where
they are missing, `Sha256` falls back to `hashlib` and `state()` returns None: the
caller then knows the progress cannot be kept.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import hashlib
import logging
from typing import Any

log = logging.getLogger(__name__)

# sizeof(SHA256_CTX): h[8], Nl, Nh, data[16], num, md_len, all 32-bit.
CTX_SIZE = 112


def _load_openssl() -> Any | None:
    name = ctypes.util.find_library("crypto")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        for function in (lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final):
            function.restype = ctypes.c_int
        lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return lib


def _works(lib: Any) -> bool:
    ctx = ctypes.create_string_buffer(CTX_SIZE)
    out = ctypes.create_string_buffer(32)
    lib.SHA256_Init(ctx)
    lib.SHA256_Update(ctx, b"clipsync", 8)
    lib.SHA256_Final(out, ctx)
    return out.raw == hashlib.sha256(b"clipsync").digest()


_openssl = _load_openssl()
if _openssl is not None and not _works(_openssl):
    log.warning("libcrypto's SHA256 functions disagree with hashlib: not using them")
    _openssl = None


class Sha256:
    """`update()` bytes, `hexdigest()`; `state()` saves the progress, `resume()` loads it."""

    def __init__(self, state: str | None = None) -> None:
        self._hashlib: Any | None = None
        self._ctx = ctypes.create_string_buffer(CTX_SIZE)
        if _openssl is None:
            if state is not None:
                raise ValueError("saved SHA-256 states need OpenSSL's libcrypto")
            self._hashlib = hashlib.sha256()
        elif state is None:
            _openssl.SHA256_Init(self._ctx)
        else:
            raw = base64.b64decode(state)
            if len(raw) != CTX_SIZE:
                raise ValueError("not a saved SHA-256 state")
            ctypes.memmove(self._ctx, raw, CTX_SIZE)

    @classmethod
    def resume(cls, state: str | None) -> Sha256 | None:
        """The hash saved as `state`, or None when there is none (or it cannot be read)."""
        if state is None:
            return None
        try:
            return cls(state)
        except ValueError:
            return None

    @staticmethod
    def resumable() -> bool:
        return _openssl is not None

    def update(self, data: bytes | bytearray) -> None:
        if self._hashlib is not None:
            self._hashlib.update(data)
        elif data:
            # No copy: bytes go in as they are, a bytearray through its own buffer.
            # ctypes releases the GIL for the call, as hashlib does.
            buffer = (
                (ctypes.c_char * len(data)).from_buffer(data)
                if isinstance(data, bytearray)
                else data
            )
            _openssl.SHA256_Update(self._ctx, buffer, len(data))

    def copy(self) -> Sha256:
        twin = Sha256.__new__(Sha256)
        twin._hashlib = self._hashlib.copy() if self._hashlib is not None else None
        twin._ctx = ctypes.create_string_buffer(self._ctx.raw, CTX_SIZE)
        return twin

    def state(self) -> str | None:
        """The progress so far, to save; None when this hash cannot be saved."""
        if self._hashlib is not None:
            return None
        return base64.b64encode(self._ctx.raw).decode("ascii")

    def hexdigest(self) -> str:
        if self._hashlib is not None:
            return self._hashlib.hexdigest()
        ctx = ctypes.create_string_buffer(self._ctx.raw, CTX_SIZE)
        out = ctypes.create_string_buffer(32)
        _openssl.SHA256_Final(out, ctx)
        return out.raw.hex()
