"""`[plugins.scan_clamav]`: where clamd listens, and what happens when it cannot scan.

With neither `socket` nor `host` the plugin does nothing: uploads are not scanned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from clipsync.errors import ConfigError
from clipsync.settings import check

SECTION = "[plugins.scan_clamav]"
MiB = 1024 * 1024
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _host(value: str) -> str | None:
    if value and (CONTROL.search(value) or " " in value or "/" in value):
        return 'must be a host name or address without scheme or port, e.g. "127.0.0.1"'
    return None


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "must be between 1 and 65535"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _socket(value: str) -> str | None:
    # The kernel keeps a unix socket's path in 108 bytes, its terminating NUL included.
    if value and (CONTROL.search(value) or len(value.encode()) > 107):
        return "must be a unix socket's path of at most 107 bytes"
    return None


@dataclass(frozen=True)
class ClamavSettings:
    # clamd's unix socket (its LocalSocket; Debian's is "/run/clamav/clamd.ctl"). A
    # relative path is relative to the configuration file.
    socket: str = check(_socket, "")
    # Or clamd's TCP address (its TCPAddr and TCPSocket). Neither set: no scanning.
    host: str = check(_host, "")
    port: int = check(_port, 3310)
    # The longest one scan may take, from connecting to clamd to its verdict.
    timeout_seconds: float = check(_positive, 120.0)
    # When clamd cannot give a verdict (it does not answer, or the file is larger
    # than max_bytes or than clamd's StreamMaxLength): "refuse" the upload, or
    # "accept" it unscanned, with a warning in the log and an audit log entry.
    when_unavailable: Literal["refuse", "accept"] = "refuse"
    # The largest file sent to clamd. Keep clamd's StreamMaxLength, MaxFileSize and
    # MaxScanSize at least this large (ClamAV scans nothing over 2 GB): past
    # StreamMaxLength clamd stops reading, past the others it says OK unscanned,
    # unless its AlertExceedsMax is yes.
    max_bytes: int = check(_positive, 100 * MiB)

    def __post_init__(self) -> None:
        if self.socket and self.host:
            raise ConfigError(f"{SECTION}: set socket or host, not both")

    @property
    def enabled(self) -> bool:
        return bool(self.socket or self.host)
