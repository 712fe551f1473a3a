"""Virus scanning: every upload goes through ClamAV's daemon, clamd, before it is accepted.

Through the `validate_upload` hook, so every way in is covered (the form upload, tus
resumable uploads and direct uploads to S3 all end in the same registration): the
stored file is streamed to clamd (INSTREAM, `clamd.py`) before the video is accepted.

- Clean: the upload goes on.
- A signature matches: the upload is refused with the signature's name ("The file
  was refused: it contains Eicar-Test-Signature") and its bytes and row are deleted;
  the log and the audit log (`upload_infected`) keep who tried and what was found.
- No verdict, because clamd does not answer within `timeout_seconds` (or answers
  with an error), or the file is larger than `max_bytes` or than clamd's own
  `StreamMaxLength`, or clamd reports `Heuristics.Limits.Exceeded…` (it did not scan
  all of it: with `AlertExceedsMax yes`; without it, clamd says OK for files over its
  `MaxFileSize` or `MaxScanSize`, hence `max_bytes`): `when_unavailable` decides.
  - "refuse" (the default): while clamd is away the registration fails with 503 and
    Retry-After; the upload is kept, so registering it again succeeds once clamd is
    back. A file too large to scan is refused for good (422) and deleted.
  - "accept": the upload goes on unscanned; a warning is logged and the audit log
    records it (`upload_not_scanned`, with the reason).

Nothing happens until `[plugins.scan_clamav]` names clamd's `socket` or `host`;
`probe()` is what `clipsync doctor` asks (does clamd answer PING?).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from clipsync import hookimpl
from clipsync.backends import Availability
from clipsync.doctor import Check
from clipsync.errors import ServiceUnavailable
from clipsync.models import User, Video
from clipsync.services.moderation import record
from clipsync.sizes import format_size

from . import clamd
from .settings import ClamavSettings

log = logging.getLogger(__name__)

PLUGIN = "scan_clamav"
# ClamAV adds this to the names of signatures from databases it did not sign (a
# site's own); the uploader is told the signature's own name.
UNOFFICIAL = ".UNOFFICIAL"
# With `AlertExceedsMax yes`, what clamd reports instead of OK for a file larger than
# its MaxFileSize or MaxScanSize: it did not scan all of it, so there is no verdict.
LIMITS_EXCEEDED = "Heuristics.Limits.Exceeded"
# How long `probe()` waits for PONG.
PING_SECONDS = 5.0


class ScannerUnavailable(ServiceUnavailable):
    code = "scanner_unavailable"
    default_message = (
        "Uploads are checked for viruses before they are accepted, and the virus "
        "scanner is not answering right now. Your upload is kept: please try again "
        "in a moment."
    )


@hookimpl
def settings_schema() -> type:
    return ClamavSettings


@hookimpl
async def validate_upload(video: Video, path: Path, plugins: Any) -> str | None:
    config: ClamavSettings | None = plugins.plugin_config(PLUGIN)
    if config is None or not config.enabled:
        return None
    return await scan(video, Path(path), config, address_of(config, plugins.settings))


@hookimpl
async def doctor_checks(plugins: Any) -> list[Check]:
    """`clipsync doctor`: does clamd answer? Information only while scanning is off."""
    availability = await probe(plugins)
    if availability is None:
        detail = "off: [plugins.scan_clamav] names no socket or host"
        return [Check("virus scanner", False, detail, required=False)]
    return [Check("virus scanner", availability.ok, availability.reason)]


async def probe(plugins: Any) -> Availability | None:
    """Whether clamd answers PING; None when scanning is not configured."""
    config: ClamavSettings | None = plugins.plugin_config(PLUGIN)
    if config is None or not config.enabled:
        return None
    address = address_of(config, plugins.settings)
    try:
        await clamd.ping(address, min(config.timeout_seconds, PING_SECONDS))
    except clamd.ClamdUnavailable as exc:
        return Availability.no(f"{exc} (uploads are {outcome(config)} meanwhile)")
    return Availability.yes(f"{address} answers PING; files up to {format_size(config.max_bytes)}")


def address_of(config: ClamavSettings, settings: Any) -> clamd.Address:
    if config.socket:
        return clamd.Address(socket=str(settings.resolve_path(config.socket)))
    return clamd.Address(host=config.host, port=config.port)


def outcome(config: ClamavSettings) -> str:
    return "refused" if config.when_unavailable == "refuse" else "accepted unscanned"


async def scan(
    video: Video, path: Path, config: ClamavSettings, address: clamd.Address
) -> str | None:
    """The refusal to show the uploader, None to accept; raises while clamd is away."""
    size = (await asyncio.to_thread(path.stat)).st_size
    if size > config.max_bytes:
        why = f"the file ({size} bytes) is larger than max_bytes ({config.max_bytes} bytes)"
        refusal = (
            f"This file is {format_size(size)}; files over {format_size(config.max_bytes)} "
            "cannot be checked for viruses here, so they are not accepted."
        )
        return await _no_verdict(video, config, why, refusal)
    try:
        async with contextlib.aclosing(clamd.file_chunks(path)) as chunks:
            found = await clamd.instream(address, chunks, config.timeout_seconds)
    except clamd.StreamTooLarge:
        why = f"{address} stopped reading the file ({size} bytes) at its StreamMaxLength"
        return await _no_verdict(video, config, why, _beyond_clamd(size))
    except clamd.ClamdUnavailable as exc:
        return await _no_verdict(video, config, str(exc), None)
    if found is None:
        return None
    if found.startswith(LIMITS_EXCEEDED):
        why = f"{address} did not scan all of the file ({size} bytes): {found}"
        return await _no_verdict(video, config, why, _beyond_clamd(size))
    name = found.removesuffix(UNOFFICIAL)
    log.warning(
        "upload %s (%r) of user %s refused: clamd found %s",
        video.id,
        video.original_filename,
        video.owner_id,
        found,
    )
    await record(
        await User.get(id=video.owner_id),
        "upload_infected",
        category=video.category,
        reason=f"clamd found {found}",
        signature=found,
        videoId=str(video.id),
        filename=video.original_filename,
    )
    return f"The file was refused: it contains {name}"


def _beyond_clamd(size: int) -> str:
    return (
        f"This file is {format_size(size)}, larger than the virus scanner here can check, "
        "so it is not accepted."
    )


async def _no_verdict(
    video: Video, config: ClamavSettings, why: str, refusal: str | None
) -> str | None:
    """Apply `when_unavailable`: refuse (`refusal`, or 503 when none) or accept and flag."""
    if config.when_unavailable == "refuse":
        log.warning("upload %s refused, not scanned: %s", video.id, why)
        if refusal is None:
            raise ScannerUnavailable()
        return refusal
    log.warning("upload %s accepted WITHOUT a virus scan: %s", video.id, why)
    await record(
        await User.get(id=video.owner_id),
        "upload_not_scanned",
        video=video,
        reason=why,
        filename=video.original_filename,
    )
    return None
