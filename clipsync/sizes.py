"""Sizes in bytes as people read them: binary units, the way the settings count.

`[uploads] max_size` is 2 GiB (2 * 1024**3 bytes); in decimal units that reads
"2.1 GB", which looks like a different limit from the one configured. So every size
ClipSync shows goes through `format_size`: messages, the CLI, and pages through the
`filesize` template filter. The browser's twin is `formatBytes` in the default
theme's `static/js/common.js`, which follows the same rules to the letter, so a size
reads the same whether the server or the page wrote it.
"""

from __future__ import annotations

import math

UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def format_size(size: int) -> str:
    """`size` bytes in binary units: "1 byte", "512 bytes", "1.5 MiB", "2 GiB".

    Below 1 KiB, whole bytes; above, the largest unit under 1024 of it with at most
    one decimal, dropped when it is zero. Halves round up (as JavaScript's
    `Math.round` does), not to even, so both languages give the same text.
    """
    if size < 0:
        raise ValueError(f"a size cannot be negative: {size}")
    if size < 1024:
        return "1 byte" if size == 1 else f"{int(size)} bytes"
    value = size / 1024
    unit = 0
    # Round first, then pick the unit: 1023.96 KiB reads "1 MiB", not "1024 KiB".
    while math.floor(value * 10 + 0.5) >= 10240 and unit < len(UNITS) - 1:
        value /= 1024
        unit += 1
    tenths = math.floor(value * 10 + 0.5)
    whole, tenth = divmod(tenths, 10)
    number = f"{whole}.{tenth}" if tenth else f"{whole}"
    return f"{number} {UNITS[unit]}"
