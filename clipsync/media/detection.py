"""Can a hardware encoder work here? ffmpeg's build, the device node, a real test encode.

Hardware transcoder plugins chain these checks in their `probe()`, in this order, and
report the first that fails, so the reason says exactly which step to fix:

1. `missing_from_ffmpeg`: the ffmpeg build lacks the encoder or a filter;
2. `device_problem`: the device node is missing, or the service user may not open it;
3. `test_encode`: a one-second encode on the device fails (driver, firmware, a busy
   or too old GPU, a container without the driver libraries).
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import shutil
import subprocess

from clipsync.backends import Availability

TEST_ENCODE_TIMEOUT = 30
# ffmpeg's "[h264_nvenc @ 0x5581…] " in front of a log line.
_CONTEXT = re.compile(r"^\[[^\]]+ @ 0x[0-9a-f]+\]\s*")


@functools.cache
def ffmpeg_lists(program: str, kind: str) -> frozenset[str]:
    """The names `program -hide_banner -<kind>` lists (kind: "encoders" or "filters")."""
    try:
        done = subprocess.run(
            [program, "-hide_banner", f"-{kind}"],
            capture_output=True,
            text=True,
            timeout=TEST_ENCODE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    names = set()
    for line in done.stdout.splitlines():
        parts = line.split()
        # " V....D h264_nvenc  NVIDIA NVENC…" and " ... scale_cuda  V->V  GPU…"
        if len(parts) >= 2 and not line.startswith(" ="):
            names.add(parts[1])
    return frozenset(names)


def service_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def find_ffmpeg(ffmpeg: str) -> tuple[str | None, str]:
    """The full path of `ffmpeg`, or None and the reason."""
    program = shutil.which(ffmpeg)
    if program is None:
        return None, f"{ffmpeg} not found (install ffmpeg, or set the plugin's ffmpeg)"
    return program, ""


def missing_from_ffmpeg(
    program: str, encoders: tuple[str, ...] = (), filters: tuple[str, ...] = ()
) -> str | None:
    """Why `program` cannot do it (an encoder or filter it was built without), or None."""
    for kind, names in (("encoders", encoders), ("filters", filters)):
        listed = ffmpeg_lists(program, kind)
        for name in names:
            if name not in listed:
                what = kind[:-1]
                return (
                    f"{program} has no {name} {what} (it was built without it: "
                    "install an ffmpeg build that has it, e.g. Debian's ffmpeg package)"
                )
    return None


def device_problem(path: str, missing_fix: str, access_fix: str) -> str | None:
    """Why the device node `path` cannot be used by this process, or None."""
    if not os.path.exists(path):
        return f"no {path}: {missing_fix}"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"{path} is not readable and writable by user {service_user()}: {access_fix}"
    return None


def first_error(stderr: str) -> str:
    """The line of ffmpeg's stderr that says what went wrong first, without its prefix."""
    for line in stderr.splitlines():
        text = _CONTEXT.sub("", line.strip())
        if text and text != "Conversion failed!":
            return text[:200]
    return "no output"


def test_encode(command: list[str], what: str) -> Availability:
    """Run `command` (a short encode to `-f null -`) and say whether it worked."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TEST_ENCODE_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return Availability.no(f"test encode with {what} took over {TEST_ENCODE_TIMEOUT} s")
    except OSError as exc:
        return Availability.no(f"test encode with {what} could not start: {exc}")
    if done.returncode != 0:
        return Availability.no(f"test encode with {what} failed: {first_error(done.stderr)}")
    return Availability.yes(f"{what} test encode with {command[0]} succeeded")
