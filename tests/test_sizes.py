"""Sizes read in binary units, as the settings count them: 2 GiB is "2 GiB", not "2.1 GB".

The browser's `formatBytes` must say the same as `format_size` for every value: that is
checked in a real browser in tests/test_browser_ui_points.py, over `SAMPLES` below.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clipsync.services.uploads import too_large
from clipsync.settings import Settings
from clipsync.sizes import format_size

KiB, MiB, GiB = 1024, 1024**2, 1024**3

#: bytes → what a person reads; shared with the browser test of the JavaScript twin.
SAMPLES = {
    0: "0 bytes",
    1: "1 byte",
    1023: "1023 bytes",
    1024: "1 KiB",
    1536: "1.5 KiB",
    # 1023.96 KiB rounds to 1024.0: it is written in the next unit up.
    1024 * 1024 - 40: "1 MiB",
    # 1.25 MiB exactly: halves round up in both languages (not to even).
    1310720: "1.3 MiB",
    100 * MiB: "100 MiB",
    2 * GiB: "2 GiB",
    2 * GiB - 1: "2 GiB",
    int(2.5 * GiB): "2.5 GiB",
    5 * 1024**4: "5 TiB",
    3 * 1024**6: "3072 PiB",  # the largest unit goes on counting
}


@pytest.mark.parametrize(("size", "shown"), SAMPLES.items())
def test_sizes_are_written_in_binary_units(size: int, shown: str) -> None:
    assert format_size(size) == shown


def test_a_negative_size_is_refused_rather_than_shown() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_size(-1)


def test_the_too_large_message_names_the_configured_limit_in_gib(
    make_settings: Callable[..., Settings],
) -> None:
    assert too_large(make_settings()).message == ("Videos can be at most 2 GiB (2147483648 bytes).")
    small = make_settings(uploads={"max_size": 300 * MiB})
    assert too_large(small).message == "Videos can be at most 300 MiB (314572800 bytes)."
