"""Prometheus metrics: what every process counts, and the scrape that sums them.

`clipsync serve` runs several Sanic workers and a job consumer, each a process of its
own; a scrape reaches one worker. prometheus_client's multiprocess mode makes the
sum: each process writes its counters to memory-mapped files in one folder
(`PROMETHEUS_MULTIPROC_DIR`) and the worker that answers `/metrics` reads them all.
`prepare_run` gives each run of `clipsync serve` (or of `clipsync worker`) its own
folder under `<data>/metrics/`, emptied when the run starts, and sets the variable
before any of its processes (all spawned, all inheriting it) imports
prometheus_client, which reads it once, at import. For that reason nothing here
imports prometheus_client at module level: the instruments are made on first use.

The domain code calls one function per event (`upload_accepted(size)`); label values
come from small fixed sets (route patterns, never raw paths), so no series is made
per video or per user. With `[metrics] enabled = false` the variable is not set and
the counts stay in each process's memory, unread.

Where a `clipsync worker` runs on the same machine with the same data directory, its
folder is read too; a worker on another machine is not counted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import glob
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from clipsync import logs

if TYPE_CHECKING:
    from huey import Huey
    from prometheus_client.metrics_core import Metric
    from sanic import Request
    from sanic.response import BaseHTTPResponse

    from clipsync.media.pipeline import TranscodeResult
    from clipsync.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

ENV = "PROMETHEUS_MULTIPROC_DIR"
# Under the data directory: one folder per run, "<role>-<pid of the run's main process>".
FOLDER = "metrics"
RUN_FOLDER = re.compile(r"^(serve|worker)-(\d+)$")
# The pid in the name of a process's file: "gauge_livesum_1234.db".
_PID = re.compile(r"_(\d+)\.db$")
# The route label of a request that matched no route (a 404 for an unknown address).
UNMATCHED = "unmatched"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

TRANSCODE_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
REALTIME_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)


# -- each run's folder ----------------------------------------------------------------


def prepare_run(settings: Settings, role: str) -> Path | None:
    """Give this run (`serve` or `worker`) an empty folder for its processes' metrics.

    Call it in the run's main process before anything imports prometheus_client:
    the worker and consumer processes it starts inherit the variable. Folders of
    runs that ended are removed. None (and nothing set) while metrics are off.
    """
    if not settings.metrics.enabled:
        return None
    if "prometheus_client" in sys.modules and ENV not in os.environ:
        # Its processes would count, each in its own memory, where no scrape looks.
        raise RuntimeError("prometheus_client was imported before the metrics folder was set")
    root = settings.data_dir / FOLDER
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        match = RUN_FOLDER.match(old.name)
        if match and not _alive(int(match.group(2))):
            shutil.rmtree(old, ignore_errors=True)
    folder = root / f"{role}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    os.environ[ENV] = str(folder)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _live_runs(folder: Path) -> list[Path]:
    """This run's folder and those of the other runs still going (a `clipsync worker`)."""
    runs = [folder]
    for other in folder.parent.iterdir() if folder.parent.is_dir() else ():
        match = RUN_FOLDER.match(other.name)
        if match and other != folder and _alive(int(match.group(2))):
            runs.append(other)
    return runs


def _forget_dead_processes(folder: Path) -> None:
    """`mark_process_dead` for each process that wrote here and is gone.

    A worker or consumer that died (and was started again with a new pid) keeps its
    counters in the sum, as Prometheus expects; its live gauges (jobs running) go.
    """
    from prometheus_client import multiprocess

    pids = {int(m.group(1)) for f in folder.glob("gauge_live*_*.db") if (m := _PID.search(f.name))}
    for pid in pids:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, str(folder))


class _Runs:
    """The collector of a multiprocess scrape: every live run's files, merged."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.multiprocess import MultiProcessCollector

        files: list[str] = []
        for run in _live_runs(self.folder):
            _forget_dead_processes(run)
            files += glob.glob(os.path.join(run, "*.db"))
        return MultiProcessCollector.merge(files, accumulate=True)


class _Snapshot:
    """Gauges worked out for this scrape (storage, queue depth), as a collector."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


class _ThisProcess:
    """The instruments of this one process, when no folder is shared (tests)."""

    def collect(self) -> Iterable[Metric]:
        from prometheus_client import REGISTRY

        instruments()
        return REGISTRY.collect()


def exposition(snapshot: list[Metric]) -> bytes:
    """The text a scrape gets: every process's counts plus this scrape's gauges."""
    from prometheus_client import CollectorRegistry, generate_latest

    folder = os.environ.get(ENV)
    registry = CollectorRegistry()
    registry.register(_Runs(Path(folder)) if folder else _ThisProcess())
    registry.register(_Snapshot(snapshot))
    return generate_latest(registry)


# -- the instruments ------------------------------------------------------------------


class Instruments:
    """Every metric ClipSync exports, made once per process on first use."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter(
            "clipsync_http_requests", "HTTP requests answered, by route pattern and status.",
            ["method", "route", "status"],
        )  # fmt: skip
        self.request_seconds = Histogram(
            "clipsync_http_request_duration_seconds",
            "Time to answer an HTTP request (to its first byte for streamed answers).",
            ["method", "route"],
        )
        self.hls_files = Counter(
            "clipsync_hls_segments_served", "HLS media segments served, by how.", ["delivery"]
        )
        self.hls_bytes = Counter(
            "clipsync_hls_segment_bytes", "Bytes of HLS segments streamed through the app."
        )
        self.uploads = Counter("clipsync_uploads", "Uploads accepted and queued for transcoding.")
        self.upload_bytes = Counter("clipsync_upload_bytes", "Bytes of the uploads accepted.")
        self.upload_failures = Counter(
            "clipsync_upload_failures",
            "Uploads that failed: cut off or too large while received, or refused when checked.",
            ["stage"],
        )
        self.jobs_queued = Counter("clipsync_jobs_queued", "Jobs put on the queue.", ["task"])
        self.jobs_running = Gauge(
            "clipsync_jobs_running", "Jobs running now.", ["task"], multiprocess_mode="livesum"
        )
        self.jobs_retried = Counter(
            "clipsync_jobs_retried", "Job attempts that failed and will be tried again.", ["task"]
        )
        self.jobs_failed = Counter(
            "clipsync_jobs_failed", "Jobs that failed for good (their last attempt).", ["task"]
        )
        self.transcode_seconds = Histogram(
            "clipsync_transcode_duration_seconds",
            "Wall time of one successful transcode run (every rendition of a video, or of "
            "one chunk of it: one ffmpeg run).",
            ["encoder"], buckets=TRANSCODE_BUCKETS,
        )  # fmt: skip
        self.rendition_seconds = Counter(
            "clipsync_transcode_rendition_seconds",
            "Transcoding wall time by rendition made; one run counts for each rendition it made.",
            ["rendition", "encoder"],
        )
        self.media_seconds = Counter(
            "clipsync_transcode_media_seconds", "Seconds of video transcoded.", ["encoder"]
        )
        self.realtime_factor = Histogram(
            "clipsync_transcode_realtime_factor",
            "Seconds of video transcoded per second of wall time, per transcode run "
            "(a video, or one chunk of it).",
            ["encoder"], buckets=REALTIME_BUCKETS,
        )  # fmt: skip
        self.analytics_events = Counter(
            "clipsync_analytics_events",
            "Watch events received: accepted, or rejected with a reason.",
            ["outcome", "reason"],
        )
        self.analytics_spooled = Counter(
            "clipsync_analytics_events_spooled",
            "Watch events written to the disk spool while the analytics store was away.",
        )
        self.sign_in_failures = Counter(
            "clipsync_sign_in_failures", "Sign-ins refused, by reason.", ["reason"]
        )
        self.lockouts = Counter(
            "clipsync_sign_in_lockouts",
            "Failed sign-ins after which the address must wait before trying that email again.",
        )
        self.deliveries = Counter(
            "clipsync_notification_deliveries",
            "Notification delivery attempts by channel and outcome (sent, retried, failed).",
            ["channel", "outcome"],
        )


@functools.cache
def instruments() -> Instruments:
    return Instruments()


# -- what the domain code calls -------------------------------------------------------


async def observe_request(request: Request, response: BaseHTTPResponse) -> None:
    """Response middleware: count the request by route pattern and status, and time it."""
    started = getattr(request.ctx, "started", None)
    route = logs.route_pattern(request) or UNMATCHED
    m = instruments()
    m.requests.labels(request.method, route, str(response.status)).inc()
    if started is not None:
        m.request_seconds.labels(request.method, route).observe(time.perf_counter() - started)


def hls_file_served(path: str, size: int, *, presigned: bool = False) -> None:
    """A file of an HLS tree was sent (`size` bytes through the app) or redirected to."""
    if path.endswith((".m4s", ".ts", ".mp4")):
        m = instruments()
        m.hls_files.labels("presigned" if presigned else "app").inc()
        m.hls_bytes.inc(size)


def upload_accepted(size: int | None) -> None:
    m = instruments()
    m.uploads.inc()
    m.upload_bytes.inc(size or 0)


def upload_failed(stage: str) -> None:
    """`receiving` (cut off, too large) or `checking` (not a usable video, refused)."""
    instruments().upload_failures.labels(stage).inc()


def job_failed(task: str) -> None:
    """A job the service gave up on without raising (its last attempt, handled)."""
    instruments().jobs_failed.labels(task).inc()


def count_jobs(huey: Huey) -> None:
    """Count jobs queued, running, retried and failed through Huey's own hooks."""
    from huey import signals

    m = instruments()

    @huey.signal(signals.SIGNAL_ENQUEUED)
    def queued(signal: str, task: Any, *args: Any) -> None:
        m.jobs_queued.labels(task.name).inc()

    @huey.pre_execute()
    def running(task: Any) -> None:
        m.jobs_running.labels(task.name).inc()

    @huey.post_execute()
    def finished(task: Any, value: Any, exc: BaseException | None) -> None:
        m.jobs_running.labels(task.name).dec()
        if exc is not None:
            (m.jobs_retried if task.retries else m.jobs_failed).labels(task.name).inc()


async def timed_transcode(
    transcoding: Awaitable[TranscodeResult], duration: float | None
) -> TranscodeResult:
    """Await a transcode and record its time, per encoder and rendition, and its speed."""
    started = time.monotonic()
    result = await transcoding
    # "libx264 (cpu)", "h264_nvenc (nvenc) after ...": the encoder is the first word.
    encoder = result.encoder.split(" ", 1)[0] or "unknown"
    renditions = [variant.name for variant in result.variants]
    transcoded(encoder, renditions, time.monotonic() - started, duration)
    return result


def transcoded(
    encoder: str, renditions: Iterable[str], seconds: float, duration: float | None
) -> None:
    """One ffmpeg run made `renditions` of `duration` seconds of video in `seconds`:
    a whole video, or one chunk of a chunked transcode (services/chunk_jobs.py)."""
    seconds = max(seconds, 1e-6)
    m = instruments()
    m.transcode_seconds.labels(encoder).observe(seconds)
    for rendition in renditions:
        m.rendition_seconds.labels(rendition, encoder).inc(seconds)
    if duration:
        m.media_seconds.labels(encoder).inc(duration)
        m.realtime_factor.labels(encoder).observe(duration / seconds)


def analytics_ingested(accepted: int, rejected: list[dict[str, Any]]) -> None:
    m = instruments()
    if accepted:
        m.analytics_events.labels("accepted", "").inc(accepted)
    for refusal in rejected:
        m.analytics_events.labels("rejected", str(refusal.get("code", "invalid"))).inc()


def analytics_spooled(count: int) -> None:
    instruments().analytics_spooled.inc(count)


def sign_in_failed(reason: str, *, lockout: bool = False) -> None:
    """`wrong_credentials`, or `throttled_address` / `throttled_email` (told to wait)."""
    m = instruments()
    m.sign_in_failures.labels(reason).inc()
    if lockout:
        m.lockouts.inc()


def delivery_attempted(channel: str, outcome: str) -> None:
    """`sent`, `retried` (the attempt failed, another follows) or `failed` (for good)."""
    instruments().deliveries.labels(channel, outcome).inc()


# -- gauges worked out when scraped ---------------------------------------------------


async def scrape_gauges(huey: Huey | None) -> list[Metric]:
    """Storage by kind (from the sizes the database keeps), videos by status, queue depth.

    Sums over indexed columns, no walk of the store: cheap enough for every scrape.
    Rendition bytes are estimated from each rendition's average bitrate and the
    video's duration (their files' sizes are not kept).
    """
    from prometheus_client.core import GaugeMetricFamily
    from tortoise.functions import Count, Sum

    from clipsync.models import Caption, Rendition, Video

    storage = GaugeMetricFamily(
        "clipsync_storage_bytes", "Bytes stored, by kind (renditions: estimated).", labels=["kind"]
    )
    sources = (
        await Video.filter(source_key__isnull=False).annotate(total=Sum("size")).values("total")
    )
    captions = await Caption.all().annotate(total=Sum("size")).values("total")
    renditions = 0.0
    for average, peak, duration in await Rendition.all().values_list(
        "average_bitrate", "bitrate", "video__duration"
    ):
        renditions += (average or peak or 0) * (duration or 0) / 8
    storage.add_metric(["sources"], float(sources[0]["total"] or 0) if sources else 0.0)
    storage.add_metric(["renditions"], renditions)
    storage.add_metric(["captions"], float(captions[0]["total"] or 0) if captions else 0.0)

    videos = GaugeMetricFamily("clipsync_videos", "Videos, by status.", labels=["status"])
    for row in await Video.all().annotate(n=Count("id")).group_by("status").values("status", "n"):
        videos.add_metric([str(row["status"])], float(row["n"]))
    families: list[Metric] = [storage, videos]
    if huey is not None:
        with contextlib.suppress(Exception):  # a queue that is down shows as no gauge
            pending = await asyncio.to_thread(huey.pending_count)
            families.append(
                GaugeMetricFamily("clipsync_jobs_pending", "Jobs waiting in the queue.", pending)
            )
    return families
