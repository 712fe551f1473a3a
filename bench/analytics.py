"""How many watch events ClipSync takes per second, and how fast it reads the overview.

Run it with `.venv/bin/python bench/analytics.py` (about 3 minutes on 2 cores). For
each analytics backend, SQLite then ClickHouse, it measures from one run:

ingest    events per second accepted by `POST /api/analytics/event` from 50 concurrent
          clients, each sending batches of 50 events (one viewing session's PLAY and
          PROGRESS events) as fast as the server answers, for 12 s after 2 s of warm-up
          (in which the clients connect, 10 ms apart). The server is a real `clipsync
          serve` (`LiveServer` from tests/browser.py, without its access log, which
          production does not turn on either), run once with `[server] workers = 1` and
          once with `workers = 2`; the better run is the result. Setting up is done as
          an administrator would: the admin account with `clipsync user create`, a 30 s
          clip uploaded, transcoded and approved through the API, and 50 viewers
          registered through the API. Afterwards the admin's overview must count every
          accepted event (checked, not timed).
overview  the median time of 5 calls of the backend's `overview()` over the last 30
          days, every video in scope (what an admin's dashboard asks), after 1 million
          events (SQLite) or 10 million (ClickHouse) were written to it. The events
          are realistic sessions: 500 videos of 30 s to 20 min (a few much more popular
          than the rest), 20 000 users, sessions spread over the last 35 days, a PLAY,
          a PROGRESS every 5 s, the odd SEEK and rebuffering, then PAUSE where the
          viewer left or COMPLETE. They are written with the backend's own `record()`
          and `flush()`, not through HTTP. For ClickHouse only the first 500 000 go
          that way (its rate is printed): the remaining 9.5 million are made inside
          ClickHouse by one `INSERT ... SELECT` from `numbers()` with the same kind of
          sessions (no seeks; rebuffering as BUFFER_END only), which fills the same
          materialized views as any insert, because making 10 million events in
          Python and writing them through the backend would take several minutes.
          The queries are timed once ClickHouse has finished merging the new parts.
          The time of each figure query is printed too (timing wrappers only).

ClickHouse is a throwaway `ClickHouseServer` from tests/services.py (Debian's 18.16).
Targets on this 2-core machine: SQLite >= 5 000 events/s and overview < 1 s;
ClickHouse >= 20 000 events/s and overview < 300 ms. The load generator runs on the
same two cores as the server (and ClickHouse), so the CPU time each used is printed,
with the load average. Exits 1 only when something failed to run; a missed target is
printed, not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import LiveServer, LiveServerError
from clickhouse_driver import errors as clickhouse_errors
from clipsync_analytics_clickhouse import ClickHouseAnalytics
from clipsync_analytics_clickhouse import schema as clickhouse_schema
from clipsync_analytics_clickhouse.queries import ClickHouseFigures
from clipsync_analytics_sqlite import SqliteAnalytics
from clipsync_analytics_sqlite.store import SqliteFigures
from services import ClickHouseServer, ServiceUnavailable

from clipsync.analytics.backend import BufferedBackend
from clipsync.analytics.events import Period, Scope, WatchEvent

PASSWORD = "correct horse battery"
ADMIN_EMAIL = "admin@example.org"

CLIENTS = 50
BATCH = 50
BODIES_PER_CLIENT = 8  # distinct batches each client cycles through
WARM_UP_SECONDS = 2.0
CONNECT_SPACING = 0.01  # seconds between two clients' first connections (see `hammer`)
INGEST_SECONDS = 12.0
CLIP_SECONDS = 30
STORED_TIMEOUT = 30.0  # seconds to wait for the accepted events to be counted

QUERY_RUNS = 5
MERGE_TIMEOUT = 120.0  # seconds to wait for ClickHouse's merges before timing queries
PERIOD_DAYS = 30
SPAN_DAYS = 35  # sessions start within this many days before now
VIDEOS = 500
USERS = 20_000
CATEGORIES = ("general", "science", "art", "sport", "music")
PROGRESS_EVERY = 5
# Video n is drawn as floor(u ** POPULARITY * VIDEOS), u uniform in [0, 1): the first
# videos are the most watched (video 0 has about 4 % of the sessions).
POPULARITY = 2.0
CHUNK = 100_000  # events made and recorded at a time
CLICKHOUSE_THROUGH_BACKEND = 500_000

TARGETS = {
    # backend: (events/s at least, overview seconds below)
    "sqlite": (5_000, 1.0),
    "clickhouse": (20_000, 0.3),
}
QUERY_EVENTS = {"sqlite": 1_000_000, "clickhouse": 10_000_000}

# One rung and short segments: the clip is ready seconds after it is uploaded.
SERVER_TOML = """
[transcoder]
ladder = [{ height = 144, bitrate = 150 }]
segment_seconds = 2
max_attempts = 1
"""
CLICKHOUSE_TOML = """
[analytics]
backend = "clickhouse"

[plugins.analytics_clickhouse]
host = "{host}"
port = {port}
database = "bench_ingest"
"""


class BenchFailed(Exception):
    """Something could not be run; the message says what."""


def say(message: str) -> None:
    print(f"  {message}", flush=True)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


# --- processes and their CPU time -----------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def pid_running(*argv_part: str) -> int:
    """The pid of the process whose command line contains `argv_part`, in order."""
    wanted = list(argv_part)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except (OSError, UnicodeDecodeError):
            continue
        if any(argv[i : i + len(wanted)] == wanted for i in range(len(argv))):
            return int(entry.name)
    raise BenchFailed(f"no process runs {' '.join(wanted)}")


def group_cpu(pgid: int) -> float:
    """User + system seconds of the live processes of process group `pgid`."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # After "(comm)": state ppid pgrp ... utime (12th) stime (13th).
        if len(fields) > 12 and int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


# --- the live server --------------------------------------------------------------------------


class BenchServer(LiveServer):
    """`LiveServer` with `[server] workers` set, and without the access log."""

    def __init__(self, workdir: Path, extra_toml: str, workers: int = 1) -> None:
        super().__init__(workdir, extra_toml, startup_timeout=120)
        self.workers = workers

    def write_config(self) -> None:
        super().write_config()
        text = self.config_path.read_text()
        self.config_path.write_text(
            text.replace("[server]\n", f"[server]\nworkers = {self.workers}\n", 1)
        )

    def _command(self, *args: str) -> list[str]:
        return super()._command(*(a for a in args if a != "--access-log"))

    def restart(self, workers: int) -> None:
        self.stop()
        self.workers = workers
        self.write_config()
        self.start()

    def pgid(self) -> int:
        # setpriv exec()s Python in a session of its own: its pid is the group's id.
        return pid_running("--config", str(self.config_path), "serve")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def expect_status(response: httpx.Response, status: int, what: str) -> dict[str, Any]:
    if response.status_code != status:
        raise BenchFailed(f"{what} answered {response.status_code}: {response.text[:300]}")
    return response.json()


MAKE_CLIP = [
    "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=10:duration={CLIP_SECONDS}",
    "-f", "lavfi", "-i", f"sine=frequency=440:duration={CLIP_SECONDS}",
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
    "-c:a", "aac", "-b:a", "64k", "-shortest",
]  # fmt: skip


def make_clip(path: Path) -> None:
    done = subprocess.run([*MAKE_CLIP, str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchFailed(f"ffmpeg could not make the test clip: {done.stderr.strip()}")


@dataclass
class Site:
    admin_token: str
    video_id: str
    duration: float
    viewer_tokens: list[str]


def set_up_site(server: BenchServer, clip: Path) -> Site:
    """The admin (CLI), one approved video (API) and the viewers (API)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")}
    created = subprocess.run(
        [
            *(sys.executable, "-m", "clipsync", "--config", str(server.config_path)),
            *("user", "create", "--email", ADMIN_EMAIL, "--role", "admin", "--password-stdin"),
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=server.workdir,
        check=False,
    )
    if created.returncode != 0:
        raise BenchFailed(f"clipsync user create failed: {created.stderr.strip()}")
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        login = {"email": ADMIN_EMAIL, "password": PASSWORD}
        admin = expect_status(http.post("/api/auth/login", json=login), 200, "login")["token"]
        with clip.open("rb") as fh:
            sent = http.post(
                "/api/videos/upload-local",
                files={"file": (clip.name, fh, "video/mp4")},
                headers=bearer(admin),
            )
        video_id = expect_status(sent, 201, "the upload")["videoId"]
        registered = http.post(
            "/api/videos/register",
            json={"videoId": video_id, "title": "Benchmark clip", "description": ""},
            headers=bearer(admin),
        )
        expect_status(registered, 201, "registering the video")
        deadline = time.monotonic() + 120
        while True:
            video = expect_status(
                http.get(f"/api/videos/{video_id}", headers=bearer(admin)), 200, "the video"
            )["video"]
            if video["status"] == "READY":
                break
            if video["status"] == "FAILED" or time.monotonic() > deadline:
                raise BenchFailed(f"the clip is {video['status']}: {video.get('error')}")
            time.sleep(0.2)
        approved = http.post(f"/api/admin/videos/{video_id}/approve", headers=bearer(admin))
        duration = float(expect_status(approved, 200, "approving")["video"]["duration"])
        tokens = []
        for n in range(CLIENTS):
            body = {"email": f"viewer{n}@example.org", "password": PASSWORD}
            tokens.append(
                expect_status(http.post("/api/auth/register", json=body), 201, "registering")[
                    "token"
                ]
            )
    return Site(admin, video_id, duration, tokens)


# --- ingest -----------------------------------------------------------------------------------


def batch_body(video_id: str, duration: float, session: str, first: int) -> bytes:
    """A batch as the player sends it: PLAY, then PROGRESS every 5 s (wrapping around)."""
    events = []
    for n in range(first, first + BATCH):
        position = (n * PROGRESS_EVERY) % max(1, int(duration))
        kind = "PLAY" if n % 6 == 0 else "PROGRESS"
        events.append(
            {
                "type": kind,
                "videoId": video_id,
                "sessionId": session,
                "position": float(position),
                "rendition": "144p",
                "played": 0.0 if kind == "PLAY" else float(PROGRESS_EVERY),
            }
        )
    return json.dumps(events).encode()


@dataclass
class IngestRun:
    workers: int
    events_per_second: float = 0.0
    requests: int = 0
    accepted_total: int = 0  # warm-up included
    failures: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    clickhouse_cpu: float | None = None
    wall: float = 0.0

    def latency(self, quantile: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


class Connection:
    """One keep-alive HTTP/1.1 connection that sends prepared requests.

    The load generator shares the server's two cores, so it is kept lean: each
    request is encoded once, before the clock starts (headers and body as bytes), and
    an answer is read as a status line, headers and a Content-Length body. httpx
    cost 0.35 to 0.5 cores here at 12 000 events/s, time taken from the server.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await self.reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            raise
        if b"connection: close" in head.lower():
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def prepared_request(host: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST /api/analytics/event HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def hammer(base_url: str, site: Site, run: IngestRun) -> None:
    """50 clients, each posting its batches one after another, until the time is up."""
    url = httpx.URL(base_url)
    host, port = url.host, url.port or 80
    requests = [
        [
            prepared_request(
                f"{host}:{port}",
                site.viewer_tokens[c],
                batch_body(
                    site.video_id, site.duration, f"bench-{c}-{k}-{uuid.uuid4().hex[:8]}", k
                ),
            )
            for k in range(BODIES_PER_CLIENT)
        ]
        for c in range(CLIENTS)
    ]
    connections = [Connection(host, port) for _ in requests]
    cpu = time.process_time()
    started = time.perf_counter()
    counted_from = started + WARM_UP_SECONDS
    ends = counted_from + INGEST_SECONDS
    counted = 0

    async def client(number: int) -> None:
        nonlocal counted
        http = connections[number]
        # Viewers arrive one after another, not in the same millisecond: asyncio
        # accepts every pending connection (up to the listen backlog) each time a
        # worker wakes, so 50 connections opened at once all land on one Sanic worker
        # and the other idles for the whole run. Spread over the warm-up, they are
        # shared between the workers as real arrivals are.
        await asyncio.sleep(number * CONNECT_SPACING)
        for request in itertools.cycle(requests[number]):
            sent = time.perf_counter()
            if sent >= ends:
                return
            try:
                status, body = await http.post(request)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                key = type(exc).__name__
                run.failures[key] = run.failures.get(key, 0) + 1
                continue
            done = time.perf_counter()
            if status != 200:
                key = f"HTTP {status}"
                run.failures[key] = run.failures.get(key, 0) + 1
                continue
            accepted = json.loads(body)["accepted"]
            run.accepted_total += accepted
            if counted_from <= done <= ends:
                counted += accepted
                run.requests += 1
                run.latencies.append(done - sent)

    try:
        await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    finally:
        for http in connections:
            http.close()
    run.wall = time.perf_counter() - started
    run.client_cpu = time.process_time() - cpu
    run.events_per_second = counted / INGEST_SECONDS


def stored_events(server: BenchServer, site: Site, expected: int) -> int:
    """The overview's event count, once it reaches `expected` (or the wait is over)."""
    deadline = time.monotonic() + STORED_TIMEOUT
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        while True:
            figures = expect_status(
                http.get("/api/admin/analytics/overview", headers=bearer(site.admin_token)),
                200,
                "the overview",
            )
            if figures["totalEvents"] >= expected or time.monotonic() > deadline:
                return int(figures["totalEvents"])
            time.sleep(0.5)


@dataclass
class IngestResult:
    runs: list[IngestRun]
    stored: int
    accepted: int

    @property
    def best(self) -> IngestRun:
        return max(self.runs, key=lambda r: r.events_per_second)


def measure_ingest(
    tmp: Path, kind: str, extra_toml: str, clip: Path, clickhouse: ClickHouseServer | None
) -> IngestResult:
    server = BenchServer(tmp / f"live-{kind}", SERVER_TOML + extra_toml, workers=1)
    say(f"starting clipsync serve ({kind} analytics), setting up the admin, clip, viewers ...")
    with server:
        site = set_up_site(server, clip)
        runs = []
        accepted = 0
        for workers in (1, 2):
            if workers != server.workers:
                say(f"restarting clipsync serve with workers = {workers} ...")
                server.restart(workers)
            run = IngestRun(workers)
            say(
                f"{CLIENTS} clients x {BATCH}-event batches for {WARM_UP_SECONDS:g} + "
                f"{INGEST_SECONDS:g} s, workers = {workers} ..."
            )
            pgid = server.pgid()
            clickhouse_pgid = (
                pid_running(f"--config-file={clickhouse.config_path}") if clickhouse else None
            )
            server_cpu = group_cpu(pgid)
            clickhouse_cpu = group_cpu(clickhouse_pgid) if clickhouse_pgid else 0.0
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(hammer(server.base_url, site, run))
            run.server_cpu = group_cpu(pgid) - server_cpu
            if clickhouse_pgid:
                run.clickhouse_cpu = group_cpu(clickhouse_pgid) - clickhouse_cpu
            accepted += run.accepted_total
            say(
                f"  {run.events_per_second:,.0f} events/s, {run.requests} requests counted, "
                f"failures {run.failures or 'none'}"
            )
            runs.append(run)
            stored = stored_events(server, site, accepted)  # before the restart
            if stored < accepted:
                break
    return IngestResult(runs, stored, accepted)


# --- the data set -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchVideo:
    id: str
    category: str
    duration: float


def video_id(number: int) -> str:
    # The same ids as the INSERT ... SELECT below makes.
    return f"00000000-0000-4000-8000-{100_000_000_000 + number}"


def catalogue(rnd: random.Random) -> list[BenchVideo]:
    return [
        BenchVideo(video_id(n), CATEGORIES[n % len(CATEGORIES)], float(rnd.randrange(30, 1200)))
        for n in range(VIDEOS)
    ]


def one_session(
    rnd: random.Random, video: BenchVideo, user: int, session: str, clock: datetime
) -> Iterator[WatchEvent]:
    """PLAY, a PROGRESS every 5 s (the odd SEEK or rebuffering), then PAUSE or COMPLETE."""
    ids = itertools.count()

    def event(kind: str, position: float, played: float = 0.0, **extra: Any) -> WatchEvent:
        return WatchEvent(
            event_id=f"{session}-{next(ids)}",
            ts=clock,
            type=kind,
            video_id=video.id,
            user_id=user,
            category=video.category,
            session_id=session,
            position=position,
            duration=video.duration,
            played=played,
            rendition="720p",
            **extra,
        )

    # How far they watch: most leave early, some reach the end.
    watched = min(video.duration, rnd.expovariate(1 / 0.45) * video.duration)
    yield event("PLAY", 0.0)
    position = 0.0
    stalls = rnd.random() < 0.05
    while position + PROGRESS_EVERY <= watched:
        position += PROGRESS_EVERY
        clock += timedelta(seconds=PROGRESS_EVERY)
        yield event("PROGRESS", position, float(PROGRESS_EVERY))
        if stalls and rnd.random() < 0.1:
            yield event("BUFFER_START", position)
            clock += timedelta(seconds=1.5)
            yield event("BUFFER_END", position, stalled=1.5)
        elif rnd.random() < 0.01 and position + 30 < watched:
            yield event("SEEK", position, seek_from=position, seek_to=position + 30)
            position += 30
    rest = watched - position
    clock += timedelta(seconds=rest)
    if watched >= video.duration:
        yield event("COMPLETE", video.duration, rest)
    else:
        yield event("PAUSE", watched, rest)


def sessions(rnd: random.Random, videos: list[BenchVideo], now: datetime) -> Iterator[WatchEvent]:
    """Events of one plausible viewing session after another, without end."""
    span = SPAN_DAYS * 86_400 - 3_600
    for n in itertools.count():
        # A few videos are far more popular than the rest.
        video = videos[int(rnd.random() ** POPULARITY * VIDEOS)]
        clock = now - timedelta(seconds=span) + timedelta(seconds=rnd.uniform(0, span))
        yield from one_session(rnd, video, rnd.randrange(1, USERS + 1), f"py-{n}", clock)


@dataclass
class Loaded:
    events: int
    seconds: float  # inside record() and flush()
    generate_seconds: float


async def load_through_backend(backend: BufferedBackend, count: int, seed: int) -> Loaded:
    """Write `count` session events with `record()` and `flush()`, a chunk at a time."""
    rnd = random.Random(seed)
    stream = sessions(rnd, catalogue(random.Random(1)), datetime.now(UTC))
    written = 0
    writing = generating = 0.0
    next_report = time.monotonic() + 10
    while written < count:
        started = time.perf_counter()
        chunk = list(itertools.islice(stream, min(CHUNK, count - written)))
        generating += time.perf_counter() - started
        started = time.perf_counter()
        await backend.record(chunk)
        await backend.flush()
        writing += time.perf_counter() - started
        written += len(chunk)
        if time.monotonic() >= next_report:
            say(f"  {written:,} of {count:,} events written ...")
            next_report = time.monotonic() + 10
    return Loaded(written, writing, generating)


# Sessions like `sessions()`, made by ClickHouse: one row per session from `numbers()`,
# then one row per event with arrayJoin(range(...)): event 0 is PLAY, events 1 to
# `progress` are PROGRESS every 5 s (in one session of 20, 2 % of them a BUFFER_END of
# 1.5 s instead), the last is PAUSE where the viewer left, or COMPLETE.
BULK_INSERT = """
INSERT INTO {db}.events_raw (event_id, ts, day, type, video_id, user_id, category, session_id,
    position_ms, duration_ms, played_ms, stalled_ms, rendition, seek_from_ms, seek_to_ms, detail)
SELECT concat(session_id, '-', toString(i)), ts, toDate(ts), CAST(kind AS {event_type}),
    video_id, user_id, category, session_id, position_ms, duration_ms, played_ms, stalled_ms,
    '720p', CAST(NULL AS Nullable(Int64)), CAST(NULL AS Nullable(Int64)), ''
FROM (
    SELECT *,
        toDateTime(start + i * 5, 'UTC') AS ts,
        multiIf(i = 0, 'PLAY', i <= progress,
                if(stalls AND cityHash64(s, i) % 100 < 2, 'BUFFER_END', 'PROGRESS'),
                watched_ms >= duration_ms, 'COMPLETE', 'PAUSE') AS kind,
        if(i <= progress, toInt64(i * 5000), watched_ms) AS position_ms,
        multiIf(i = 0, toInt64(0), i <= progress, toInt64(5000),
                watched_ms - toInt64(progress * 5000)) AS played_ms,
        if(kind = 'BUFFER_END', toInt64(1500), toInt64(0)) AS stalled_ms
    FROM (
        SELECT *, arrayJoin(range(toUInt64(progress + 2))) AS i
        FROM (
            SELECT
                number AS s,
                toUInt64(floor(pow((cityHash64(s, 1) % 1000000) / 1000000, {popularity})
                               * {videos})) AS v,
                concat('00000000-0000-4000-8000-', toString(100000000000 + v)) AS video_id,
                toInt64(30 + cityHash64(v, 2) % 1170) * 1000 AS duration_ms,
                toUInt64(1 + cityHash64(s, 3) % {users}) AS user_id,
                [{categories}][1 + v % {category_count}] AS category,
                concat('ch-', toString(s)) AS session_id,
                {start} + cityHash64(s, 4) % {span} AS start,
                least(duration_ms, toInt64(-log((cityHash64(s, 5) % 1000000 + 1) / 1000001)
                    * 0.45 * duration_ms)) AS watched_ms,
                toUInt64(intDiv(watched_ms, 5000)) AS progress,
                cityHash64(s, 6) % 20 = 0 AS stalls
            FROM numbers({sessions})
        )
    )
    LIMIT {limit}
)
"""
# Sessions average about 50 events: ask for enough and cut at the count wanted.
EVENTS_PER_SESSION_AT_LEAST = 25


def bulk_insert(backend: ClickHouseAnalytics, count: int) -> float:
    """Make `count` events inside ClickHouse; returns the seconds it took."""
    query = BULK_INSERT.format(
        db=backend.database,
        event_type=clickhouse_schema.EVENT_TYPE,
        popularity=POPULARITY,
        videos=VIDEOS,
        users=USERS,
        categories=", ".join(f"'{c}'" for c in CATEGORIES),
        category_count=len(CATEGORIES),
        start=int(datetime.now(UTC).timestamp()) - SPAN_DAYS * 86_400,
        span=SPAN_DAYS * 86_400 - 3_600,
        sessions=count // EVENTS_PER_SESSION_AT_LEAST,
        limit=count,
    )
    client = backend.connect()
    try:
        started = time.perf_counter()
        client.execute(query, settings={"max_execution_time": 600})
        seconds = time.perf_counter() - started
        [(stored,)] = client.execute(
            f"SELECT count() FROM {backend.database}.events_raw WHERE event_id LIKE 'ch-%'"
        )
    finally:
        client.disconnect()
    if stored != count:
        raise BenchFailed(f"the bulk insert made {stored} events, not {count}")
    return seconds


# --- the overview -----------------------------------------------------------------------------


@dataclass
class QueryResult:
    kind: str
    loaded: Loaded
    bulk_events: int = 0
    bulk_seconds: float = 0.0
    settle_seconds: float = 0.0
    times: list[float] = field(default_factory=list)
    # (method, grouping) -> seconds over all timed runs
    breakdown: dict[str, list[float]] = field(default_factory=dict)
    cold: float = 0.0  # the first call, which opens the read connection
    figures: dict[str, int] = field(default_factory=dict)
    parts: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)


@contextlib.contextmanager
def timing(source_class: type, breakdown: dict[str, list[float]]) -> Iterator[None]:
    """Times every `event_sums` / `view_sums(_by)` call of `source_class` (timing only)."""
    names = ("event_sums", "view_sums", "view_sums_by")
    originals = {name: getattr(source_class, name) for name in names}

    def wrap(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(self: Any, period: Period, scope: Scope, by: Any = None, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(self, period, scope, by, **kw)
            finally:
                if isinstance(by, list):  # view_sums_by's groupings
                    by = "+".join(str(group) for group, _ in by)
                breakdown.setdefault(f"{name}(by={by})", []).append(time.perf_counter() - started)

        return timed

    for name, method in originals.items():
        setattr(source_class, name, wrap(name, method))
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(source_class, name, method)


async def time_overview(backend: BufferedBackend, source_class: type, result: QueryResult) -> None:
    today = datetime.now(UTC).date()
    period = Period(today - timedelta(days=PERIOD_DAYS - 1), today)
    started = time.perf_counter()
    figures = await backend.overview(period, Scope())
    result.cold = time.perf_counter() - started
    result.figures = {
        "events in the period": figures.total_events,
        "views": figures.views,
        "active users": figures.active_users,
    }
    with timing(source_class, result.breakdown):
        for _ in range(QUERY_RUNS):
            started = time.perf_counter()
            await backend.overview(period, Scope())
            result.times.append(time.perf_counter() - started)


async def measure_sqlite_overview(tmp: Path) -> QueryResult:
    count = QUERY_EVENTS["sqlite"]
    backend = SqliteAnalytics(tmp / "query-analytics.sqlite3", spool_dir=tmp / "spool-sqlite")
    await backend.start()
    try:
        say(f"writing {count:,} events with record() and flush() ...")
        loaded = await load_through_backend(backend, count, seed=11)
        result = QueryResult("sqlite", loaded)
        say(f"timing overview() over {PERIOD_DAYS} days, {QUERY_RUNS} runs ...")
        await time_overview(backend, SqliteFigures, result)
        size = backend.path.stat().st_size / 1e6
        result.parts = f"database file {size:.0f} MB"
    finally:
        await backend.close()
    return result


def wait_for_merges(backend: ClickHouseAnalytics, timeout: float = MERGE_TIMEOUT) -> float:
    """Seconds until ClickHouse runs no merge (at most `timeout`).

    Ten million events written in half a minute leave ClickHouse merging their parts
    for a while, on the same two cores the query needs. A dashboard is read from a
    database at rest, not one still digesting a bulk load written a second ago.
    """
    client = backend.connect()
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            if not client.execute("SELECT count() FROM system.merges")[0][0]:
                break
            time.sleep(0.5)
    finally:
        client.disconnect()
    return time.perf_counter() - started


async def measure_clickhouse_overview(tmp: Path, clickhouse: ClickHouseServer) -> QueryResult:
    count = QUERY_EVENTS["clickhouse"]
    backend = ClickHouseAnalytics(
        host=clickhouse.host,
        port=clickhouse.port,
        database="bench_query",
        spool_dir=tmp / "spool-clickhouse",
    )
    await backend.start()
    try:
        first = min(count, CLICKHOUSE_THROUGH_BACKEND)
        say(f"writing {first:,} events with record() and flush() ...")
        loaded = await load_through_backend(backend, first, seed=12)
        result = QueryResult("clickhouse", loaded)
        rate = loaded.events / loaded.seconds
        say(
            f"  {rate:,.0f} events/s through the backend: {count:,} would take "
            f"{count / rate / 60:.1f} min (+ making them in Python)"
        )
        if count > first:
            result.bulk_events = count - first
            say(f"making the other {result.bulk_events:,} with INSERT ... SELECT ...")
            result.bulk_seconds = await asyncio.to_thread(bulk_insert, backend, count - first)
        say("waiting for ClickHouse to finish merging what was just written ...")
        result.settle_seconds = await asyncio.to_thread(wait_for_merges, backend)
        say(f"timing overview() over {PERIOD_DAYS} days, {QUERY_RUNS} runs ...")
        await time_overview(backend, ClickHouseFigures, result)
        client = backend.connect()
        try:
            rows = client.execute(
                "SELECT table, sum(rows), count() FROM system.parts WHERE database = "
                "'bench_query' AND active AND table != 'schema_version' "
                "GROUP BY table ORDER BY table"
            )
        finally:
            client.disconnect()
        result.parts = "; ".join(f"{t} {r:,} rows in {p} parts" for t, r, p in rows)
    finally:
        await backend.close()
    return result


# --- report -----------------------------------------------------------------------------------


def report(
    kinds: list[str], ingest: dict[str, IngestResult], queries: dict[str, QueryResult]
) -> None:
    print()
    print(
        f"Ingest: {CLIENTS} concurrent clients, {BATCH}-event batches, POST "
        f"/api/analytics/event on a real clipsync serve, {INGEST_SECONDS:g} s counted"
    )
    header = (
        f"{'backend':<11} {'workers':>7} {'events/s':>9} {'req/s':>6} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'server':>7} {'client':>7} {'CH':>6} {'ev/server CPU s':>16}"
    )
    print(header)
    for kind, result in ingest.items():
        for run in result.runs:
            best = " <- best" if run is result.best and len(result.runs) > 1 else ""
            cores = [run.server_cpu / run.wall, run.client_cpu / run.wall]
            ch = "     -"
            if run.clickhouse_cpu is not None:
                ch = f"{run.clickhouse_cpu / run.wall:6.2f}"
            print(
                f"{kind:<11} {run.workers:>7} {run.events_per_second:>9,.0f} "
                f"{run.requests / INGEST_SECONDS:>6.0f} {run.latency(0.5) * 1000:>7.0f} "
                f"{run.latency(0.99) * 1000:>7.0f} {cores[0]:>7.2f} {cores[1]:>7.2f} {ch} "
                f"{run.events_per_second / cores[0] if cores[0] else 0:>16,.0f}{best}"
            )
            if run.failures:
                print(f"{'':<11} failed requests: {run.failures}")
        print(
            f"{'':<11} server, client, CH: CPU cores used by clipsync serve (all its processes), "
            "this script, ClickHouse"
        )
        check = "all" if result.stored >= result.accepted else "ONLY"
        print(
            f"{'':<11} the overview then counted {result.stored:,} events: {check} of the "
            f"{result.accepted:,} accepted"
        )

    print()
    print(f"Overview over the last {PERIOD_DAYS} days, every video (admin), median of {QUERY_RUNS}")
    print(
        f"{'backend':<11} {'events':>11} {'written at':>14} {'median ms':>10} {'min ms':>7} "
        f"{'max ms':>7}"
    )
    for kind, q in queries.items():
        rate = q.loaded.events / q.loaded.seconds
        total = q.loaded.events + q.bulk_events
        print(
            f"{kind:<11} {total:>11,} {rate:>9,.0f} ev/s {q.median * 1000:>10.0f} "
            f"{min(q.times) * 1000:>7.0f} {max(q.times) * 1000:>7.0f}"
        )
        if q.bulk_events:
            print(
                f"{'':<11} {q.loaded.events:,} through record()/flush() "
                f"({q.loaded.seconds:.1f} s), {q.bulk_events:,} by INSERT ... SELECT "
                f"({q.bulk_seconds:.1f} s), then {q.settle_seconds:.1f} s until no merge ran"
            )
        else:
            print(
                f"{'':<11} all through record()/flush(): {q.loaded.seconds:.1f} s writing, "
                f"{q.loaded.generate_seconds:.1f} s making them in Python"
            )
        numbers = ", ".join(f"{k} {v:,}" for k, v in q.figures.items())
        print(f"{'':<11} {numbers}")
        print(f"{'':<11} {q.parts}")
        print(f"{'':<11} first (cold) run {q.cold * 1000:.0f} ms")
        print(f"{'':<11} time per overview, by figure query (median of {QUERY_RUNS}):")
        for name, seconds in sorted(q.breakdown.items()):
            per_run = len(seconds) / QUERY_RUNS
            each = statistics.median(seconds) * 1000
            print(f"{'':<13} {name:<28} {per_run:>3.0f} x {each:7.1f} ms")

    print()
    print(f"{'target':<44} {'value':>10} {'target':>10}  result")
    for kind in kinds:
        rate_target, query_target = TARGETS[kind]
        if kind in ingest:
            best = ingest[kind].best
            label = f"{kind} ingest (workers = {best.workers})"
            value = best.events_per_second
            verdict = "PASS" if value >= rate_target else "MISS"
            print(f"{label:<44} {value:>10,.0f} {'>= ' + format(rate_target, ','):>10}  {verdict}")
        if kind in queries:
            value = queries[kind].median
            verdict = "PASS" if value < query_target else "MISS"
            label = f"{kind} overview, {QUERY_EVENTS[kind] // 1_000_000} M events"
            print(
                f"{label:<44} {value * 1000:>8.0f}ms {'< ' + format(query_target * 1000, '.0f'):>8}"
                f"ms  {verdict}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backend",
        choices=["sqlite", "clickhouse", "both"],
        default="both",
        help="which backends to measure (default both)",
    )
    args = parser.parse_args()
    kinds = ["sqlite", "clickhouse"] if args.backend == "both" else [args.backend]
    print(
        f"ClipSync analytics benchmark: {os.cpu_count()} CPUs, load average "
        f"{load_average()} (1 / 5 / 15 min)"
    )
    began = time.perf_counter()
    ingest: dict[str, IngestResult] = {}
    queries: dict[str, QueryResult] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="clipsync-bench-") as folder:
            tmp = Path(folder)
            clip = tmp / "clip.mp4"
            make_clip(clip)
            if "sqlite" in kinds:
                print("SQLite", flush=True)
                ingest["sqlite"] = measure_ingest(tmp, "sqlite", "", clip, None)
                say(f"load average {load_average()}")
                queries["sqlite"] = asyncio.run(measure_sqlite_overview(tmp))
                say(f"load average {load_average()}")
            if "clickhouse" in kinds:
                print("ClickHouse", flush=True)
                say("starting a throwaway ClickHouse ...")
                with ClickHouseServer() as clickhouse:
                    extra = CLICKHOUSE_TOML.format(host=clickhouse.host, port=clickhouse.port)
                    ingest["clickhouse"] = measure_ingest(
                        tmp, "clickhouse", extra, clip, clickhouse
                    )
                    say(f"load average {load_average()}")
                    queries["clickhouse"] = asyncio.run(
                        measure_clickhouse_overview(tmp, clickhouse)
                    )
                    say(f"load average {load_average()}")
    except (
        BenchFailed,
        LiveServerError,
        ServiceUnavailable,
        httpx.HTTPError,
        clickhouse_errors.Error,
    ) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    report(kinds, ingest, queries)
    print(
        f"load average now {load_average()} (1 / 5 / 15 min); whole benchmark "
        f"{time.perf_counter() - began:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
