"""What open live pages cost the database: the same pages before and after the event bus.

Run it with `.venv/bin/python bench/live_connections.py` (about 5 minutes; `--quick`
for 0 and 100 pages only, `--pages 0 100 1000 2000` for other counts, `--people` for
pages of different people). It starts a throwaway PostgreSQL (`PostgresServer` from
tests/services.py, with pg_stat_statements loaded) and, for each tree, a real
`clipsync serve` on it (`LiveServer` from tests/browser.py, `[server] workers = 1` as
by default):

- *before*: the tree at commit 17c2329 (`--before`), the last one before the event
  bus, unpacked with `git archive` into the temporary folder and imported from there
  (PYTHONPATH on a folder of links named as the installed packages), with the same
  virtual environment. Each "My videos" stream polled its owner's videos and the
  session once a second.
- *after*: this working tree (`--after COMMIT` unpacks a commit instead). Each process
  has one LISTEN connection; a stream reads the rows when the bus brings news of them,
  and checks the session at least every 15 s (`KEEPALIVE_SECONDS`).

Per tree it registers an uploader through the API, uploads and registers a small clip
and waits until its job is done. Then, for each page count N, it opens N "My videos"
pages (`GET /api/videos/events`, the live stream both trees have, raw HTTP/1.1 on
uvloop, 50 connecting at a time), waits until each has its opening state and 3 s
more, and measures two windows of `--window` seconds (15 by default: one session
check per stream in each window):

- *idle*: nothing happens;
- *1 event/s*: once a second the bench plays the job consumer reporting progress on
  the uploader's video: in one transaction, `UPDATE videos SET progress` (1, 2, 3...)
  and the `pg_notify` of the `video.status` event that `publish_video` sends (the
  same two statements on both trees; the old tree has no listener). Every page
  belongs to that uploader, so every page should show every change: the worst case
  for the bus, as each stream reads the row when told. The pages parse the
  `event: video` lines they get during the window and 3 s after it: how many, how
  many pages showed the last value, and how long each value took to show on each
  page (a page that skips to a later value shows the earlier one then).

With `--people` the pages are N people's instead, one page each (N - 1 more accounts
registered through the API): the changes concern the uploader's one page, and the
others' streams hear the news and drop it.

What is counted: the statements the server's database role (`postgres`) ran in the
server's database, from pg_stat_statements (`sum(calls)`), per second of the
window. pg_stat_statements counts each statement as it finishes, so a window's
figure is exact; the bench's own statements run as another role (`bench`) and are
left out. *Queries* leave out the four statements (`SELECT pg_advisory_unlock_all();
CLOSE ALL; UNLISTEN *; RESET ALL`) that asyncpg's pool sends in one message each
time a connection goes back to the pool; *all* counts them too.
`pg_stat_database.xact_commit` was not used: each backend reports it at most once a
second, an idle one only after up to 10 s, which blurs a 15 s window, and it cannot
tell the bench's transactions from the server's. Beside it: the CPU cores that the
server's processes and PostgreSQL's used (user + system time of each process group;
PostgreSQL's includes the bench's few statements) and, for the largest N, which
queries they were.

Prints the figures side by side; there are no targets. Exits 1 only when something
failed to run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import commit_tree
from browser import LiveServerError
from clients import PASSWORD, bearer
from clips import make_clip
from commit_tree import BenchFailed, unpack
from services import PostgresServer, ServiceUnavailable

from clipsync.events.bus import Event
from clipsync.events.postgres_notify import CHANNEL

REPO = Path(__file__).resolve().parent.parent
BEFORE_COMMIT = "17c2329"
EVENTS_PATH = "/api/videos/events"
PAGES = (0, 100, 1000)
QUICK_PAGES = (0, 100)
WINDOW_SECONDS = 15.0
SETTLE_SECONDS = 3.0
GRACE_SECONDS = 3.0
OPEN_AT_ONCE = 50
OPEN_TIMEOUT = 120.0
BENCH_ROLE = "bench"
SERVER_ROLE = PostgresServer.superuser

# One small rung: the clip's job is done a few seconds after it is registered.
SERVER_TOML = """
[transcoder]
ladder = [{ height = 144, bitrate = 150 }]
segment_seconds = 2
max_attempts = 1
"""


def say(message: str) -> None:
    print(f"  {message}", flush=True)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def raise_open_files() -> int:
    """Raise this process's soft limit on open files to the hard one (the server inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


TICKS = os.sysconf("SC_CLK_TCK")


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


def tree_cpu(parent: int) -> float:
    """User + system seconds of `parent` and its live children.

    For PostgreSQL: each backend leaves the postmaster's process group (setsid).
    """
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid = int(stat.parent.name)
            fields = stat.read_text().rpartition(")")[2].split()
        except (OSError, ValueError):
            continue
        # After "(comm)": state ppid pgrp ... utime (12th) stime (13th).
        if len(fields) > 12 and parent in (pid, int(fields[1])):
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


# --- the trees, the database and the server ---------------------------------------------------


def short(commit: str) -> str:
    """The abbreviated hash `commit` names."""
    named = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", commit],
        capture_output=True,
        text=True,
        check=False,
    )
    if named.returncode != 0:
        raise BenchFailed(f"no commit {commit!r}: {named.stderr.strip()}")
    return named.stdout.strip()


class StatsPostgres(PostgresServer):
    """`PostgresServer` with pg_stat_statements loaded, counting every statement."""

    def _command(self) -> list[str]:
        return [
            *super()._command(),
            *("-c", "shared_preload_libraries=pg_stat_statements"),
            *("-c", "pg_stat_statements.track=all"),
        ]

    def postmaster(self) -> int:
        # setpriv exec()s postgres: the process started is the postmaster.
        assert self._process is not None
        return self._process.pid

    def role_dsn(self, role: str, database: str) -> str:
        return f"postgres://{role}@{self.host}:{self.port}/{database}"


class BenchServer(commit_tree.BenchServer):
    """The commit's server, whose process group the CPU figures are read from."""

    def pgid(self) -> int:
        # LiveServer starts `clipsync serve` in a session of its own: its pid is the group.
        return self.pid


@dataclass
class Uploader:
    token: str
    user_id: int
    video_id: str
    category: str
    status: str


def expect(response: httpx.Response, status: int, what: str) -> dict:
    if response.status_code != status:
        raise BenchFailed(f"{what} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def set_up_uploader(server: BenchServer, clip: Path) -> Uploader:
    """An account made through the API, with one clip uploaded, registered and processed."""
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        body = {"email": "uploader@example.org", "password": PASSWORD}
        token = expect(http.post("/api/auth/register", json=body), 201, "register")["token"]
        with clip.open("rb") as fh:
            files = {"file": ("clip.mp4", fh, "video/mp4")}
            answer = http.post("/api/videos/upload-local", files=files, headers=bearer(token))
        video_id = expect(answer, 201, "upload-local")["videoId"]
        body = {"videoId": video_id, "title": "Live"}
        expect(http.post("/api/videos/register", json=body, headers=bearer(token)), 201, "register")
        deadline = time.monotonic() + 120
        while True:
            answer = http.get(f"/api/videos/{video_id}", headers=bearer(token))
            video = expect(answer, 200, "the video")["video"]
            if video["status"] in ("READY", "FAILED"):
                break
            if time.monotonic() > deadline:
                raise BenchFailed(f"the clip's job did not end in 120 s ({video['status']})")
            time.sleep(0.5)
    return Uploader(token, 0, video_id, "", video["status"])


# --- the open pages ---------------------------------------------------------------------------


@dataclass
class Pages:
    """N open "My videos" streams on raw sockets; what they show while counting."""

    host: str
    port: int
    # One token per page: the first `concerned` pages are the uploader's.
    tokens: list[str]
    concerned: int
    counting: bool = False
    delivered: int = 0
    # When each progress value of the current window was saved (monotonic seconds);
    # the last value each page showed; how long a page took to show each value (a
    # later value shows it too).
    saved: dict[int, float] = field(default_factory=dict)
    shown: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    stray: int = 0  # lines on pages the changes do not concern
    opened: int = 0
    ended: int = 0
    errors: list[str] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def request(self, page: int) -> bytes:
        return (
            f"GET {EVENTS_PATH} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.tokens[page]}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()

    def start_counting(self) -> None:
        self.delivered = 0
        self.saved = {}
        self.shown = [0] * len(self._tasks)
        self.delays = []
        self.stray = 0
        self.counting = True

    def show(self, page: int, progress: int) -> None:
        now = time.monotonic()
        for value in range(self.shown[page] + 1, progress + 1):
            if value in self.saved:
                self.delays.append(now - self.saved[value])
        self.shown[page] = max(self.shown[page], progress)

    async def _page(self, page: int, gate: asyncio.Semaphore) -> None:
        writer = None
        try:
            async with gate:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.write(self.request(page))
                status = await reader.readline()
                if b" 200 " not in status:
                    raise BenchFailed(f"the stream answered {status.decode().strip()!r}")
                # Open once it showed the uploader's one video (other people have none).
                opened = b"event: video" if page < self.concerned else b": connected"
                while not (await reader.readline()).startswith(opened):
                    pass
                self.opened += 1
            while line := await reader.readline():
                if not (self.counting and line.startswith(b"event: video")):
                    continue
                data = json.loads((await reader.readline()).removeprefix(b"data: "))
                if page < self.concerned:
                    self.delivered += 1
                    self.show(page, data["progress"])
                else:
                    self.stray += 1
            self.ended += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            if writer is not None:
                writer.close()

    async def open(self, count: int) -> float:
        """Open `count` pages; the seconds until each had its opening state."""
        began = time.monotonic()
        gate = asyncio.Semaphore(OPEN_AT_ONCE)
        self._tasks = [asyncio.create_task(self._page(page, gate)) for page in range(count)]
        deadline = began + OPEN_TIMEOUT
        while self.opened < count:
            if self.errors:
                raise BenchFailed(f"{len(self.errors)} pages failed: {self.errors[0]}")
            if time.monotonic() > deadline:
                raise BenchFailed(f"only {self.opened} of {count} pages opened in time")
            await asyncio.sleep(0.05)
        return time.monotonic() - began

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []


# --- counting the server's statements ---------------------------------------------------------


# What asyncpg's pool sends (one message, four statements) when a connection goes back.
POOL_RESET = ("SELECT pg_advisory_unlock_all()", "CLOSE ALL", "UNLISTEN *", "RESET ALL")


def label(query: str) -> str:
    """A short name for a statement: its verb and tables (`SELECT revoked_tokens, users`)."""
    text = " ".join(query.split())
    if text in POOL_RESET:
        return text
    verb = text.split(" ", 1)[0].upper()
    tables = sorted(set(re.findall(r'(?:FROM|UPDATE|INTO) "?(\w+)"?', text, re.IGNORECASE)))
    return f"{verb} {', '.join(tables)}" if tables else text[:40]


class Statements:
    """The server role's statements in one database, from pg_stat_statements."""

    def __init__(self, stats: asyncpg.Connection, database: str) -> None:
        self.stats = stats
        self.database = database

    async def snapshot(self) -> Counter[str]:
        rows = await self.stats.fetch(
            "SELECT s.query, s.calls FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid JOIN pg_roles r ON r.oid = s.userid"
            " WHERE d.datname = $1 AND r.rolname = $2",
            self.database,
            SERVER_ROLE,
        )
        counts: Counter[str] = Counter()
        for row in rows:
            counts[label(row["query"])] += row["calls"]
        return counts


@dataclass
class Window:
    seconds: float
    statements: Counter[str]
    cores: float  # the server's processes
    db_cores: float  # PostgreSQL's processes
    events: int = 0
    delivered: int = 0
    up_to_date: int = 0  # pages that showed the last change
    delays: list[float] = field(default_factory=list)
    stray: int = 0

    @property
    def queries(self) -> Counter[str]:
        """What the server asked for, without the pool's resets."""
        return Counter({k: v for k, v in self.statements.items() if k not in POOL_RESET})

    @property
    def queries_per_second(self) -> float:
        return sum(self.queries.values()) / self.seconds

    @property
    def statements_per_second(self) -> float:
        return sum(self.statements.values()) / self.seconds


@dataclass
class Run:
    tree: str
    pages: int
    open_seconds: float
    idle: Window
    busy: Window
    ended: int
    concerned: int  # pages of the uploader whose video changes


async def measure_window(
    statements: Statements,
    pages: Pages,
    server_pgid: int,
    postmaster: int,
    seconds: float,
    emit: asyncpg.Connection | None,
    uploader: Uploader,
) -> Window:
    """Count the server's statements for `seconds`, changing the video once a second if `emit`."""
    pages.start_counting()
    first = await statements.snapshot()
    cpu = (group_cpu(server_pgid), tree_cpu(postmaster))
    began = time.monotonic()
    events = 0
    if emit is not None:
        while (due := began + events) < began + seconds:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            events += 1
            pages.saved[events] = time.monotonic()
            await change_video(emit, uploader, progress=events)
    await asyncio.sleep(max(0.0, began + seconds - time.monotonic()))
    last = await statements.snapshot()
    elapsed = time.monotonic() - began
    cores = (
        (group_cpu(server_pgid) - cpu[0]) / elapsed,
        (tree_cpu(postmaster) - cpu[1]) / elapsed,
    )
    if emit is not None:
        await asyncio.sleep(GRACE_SECONDS)
    pages.counting = False
    concerned = pages.shown[: pages.concerned]
    up_to_date = sum(1 for shown in concerned if events and shown == events)
    return Window(
        elapsed,
        last - first,
        cores[0],
        cores[1],
        events,
        pages.delivered,
        up_to_date,
        sorted(pages.delays),
        pages.stray,
    )


async def change_video(conn: asyncpg.Connection, uploader: Uploader, progress: int) -> None:
    """What a job does when it reports progress: save it, then publish `video.status`."""
    news = Event(
        "video.status",
        {
            "videoId": uploader.video_id,
            "ownerId": uploader.user_id,
            "category": uploader.category,
            "status": uploader.status,
            "progress": progress,
        },
    )
    async with conn.transaction():
        await conn.execute(
            "UPDATE videos SET progress = $1 WHERE id = $2", progress, uuid.UUID(uploader.video_id)
        )
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, news.encode())


async def measure_tree(
    tree: str,
    server: BenchServer,
    postgres: StatsPostgres,
    database: str,
    uploader: Uploader,
    counts: list[int],
    seconds: float,
    people: list[str] | None,
) -> list[Run]:
    """Measure each page count; `people`: other people's tokens, one page each."""
    stats = await asyncpg.connect(postgres.role_dsn(BENCH_ROLE, "postgres"))
    emit = await asyncpg.connect(postgres.role_dsn(BENCH_ROLE, database))
    try:
        row = await emit.fetchrow(
            "SELECT owner_id, category, status FROM videos WHERE id = $1",
            uuid.UUID(uploader.video_id),
        )
        uploader.user_id, uploader.category, uploader.status = row
        statements = Statements(stats, database)
        pids = (server.pgid(), postgres.postmaster())
        runs = []
        for count in counts:
            tokens = [uploader.token] * count
            if people is not None and count:
                tokens = [uploader.token, *people[: count - 1]]
            pages = Pages("127.0.0.1", server.port, tokens, 1 if people is not None else count)
            try:
                opened = await pages.open(count)
                await asyncio.sleep(SETTLE_SECONDS)
                idle = await measure_window(statements, pages, *pids, seconds, None, uploader)
                busy = await measure_window(statements, pages, *pids, seconds, emit, uploader)
                ended = pages.ended
            finally:
                await pages.close()
            run = Run(tree, count, opened, idle, busy, ended, pages.concerned)
            runs.append(run)
            say(
                f"{tree}, {count} pages (open in {opened:.1f} s): idle "
                f"{idle.queries_per_second:,.1f} queries/s, 1 event/s "
                f"{busy.queries_per_second:,.1f} queries/s, "
                f"{busy.up_to_date} of {pages.concerned} pages showed the last change; server "
                f"{idle.cores:.2f} / {busy.cores:.2f} cores, PostgreSQL {idle.db_cores:.2f} / "
                f"{busy.db_cores:.2f}"
            )
            # The streams just closed end with their connections (Sanic cancels the handler).
            await asyncio.sleep(1.0)
        return runs
    finally:
        await stats.close()
        await emit.close()


async def register_people(server: BenchServer, count: int) -> list[str]:
    """`count` more accounts registered through the API, 20 at a time: their tokens."""
    gate = asyncio.Semaphore(20)
    limits = httpx.Limits(max_connections=20)

    async def one(http: httpx.AsyncClient, number: int) -> str:
        async with gate:
            body = {"email": f"person{number}@example.org", "password": PASSWORD}
            answer = await http.post("/api/auth/register", json=body)
        return expect(answer, 201, "register")["token"]

    async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as http:
        return list(await asyncio.gather(*(one(http, n) for n in range(count))))


async def prepare_postgres(postgres: StatsPostgres) -> None:
    conn = await asyncpg.connect(postgres.dsn())
    try:
        await conn.execute(f"CREATE ROLE {BENCH_ROLE} LOGIN SUPERUSER")
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    finally:
        await conn.close()


# --- the report -------------------------------------------------------------------------------


def per(value: float, count: int) -> str:
    return f"{value / count:.3f}" if count else "-"


def quantile(values: list[float], q: float) -> str:
    return f"{values[min(len(values) - 1, int(q * len(values)))]:.2f}" if values else "-"


def report(runs: list[Run], seconds: float, people: bool) -> None:
    runs = sorted(runs, key=lambda r: (r.pages, r.tree != "before"))
    whose = "one the uploader's, one each of other people" if people else "all the uploader's"
    print()
    print(
        f"Queries/s the server sent PostgreSQL with N 'My videos' pages open, {whose} "
        f"({seconds:g} s "
        "windows; 'all' adds the 4 statements of each asyncpg pool reset; app, db: CPU "
        "cores used by clipsync serve and by PostgreSQL):"
    )
    header = (
        f"{'pages':>5} {'tree':<6} | {'idle q/s':>8} {'per page':>8} {'all/s':>6} "
        f"{'app':>4} {'db':>4} | {'event q/s':>9} {'per page':>8} {'per event':>9} "
        f"{'all/s':>6} {'app':>4} {'db':>4}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        idle, busy = run.idle, run.busy
        extra = busy.queries_per_second - idle.queries_per_second
        per_event = extra * busy.seconds / max(busy.events, 1)
        print(
            f"{run.pages:>5} {run.tree:<6} | {idle.queries_per_second:>8,.1f} "
            f"{per(idle.queries_per_second, run.pages):>8} {idle.statements_per_second:>6,.0f} "
            f"{idle.cores:>4.2f} {idle.db_cores:>4.2f} | {busy.queries_per_second:>9,.1f} "
            f"{per(busy.queries_per_second, run.pages):>8} {per_event:>9,.1f} "
            f"{busy.statements_per_second:>6,.0f} {busy.cores:>4.2f} {busy.db_cores:>4.2f}"
        )
    print("(per event: the event window's queries/s minus the idle window's, per event)")
    print()
    print("What the uploader's pages showed of the changes to its video (1 a second):")
    header = (
        f"{'pages':>5} {'tree':<6} | {'lines':>13} {'last shown':>11} "
        f"{'delay p50 s':>11} {'p90 s':>5} {'max s':>5}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        if not run.pages:
            continue
        busy = run.busy
        print(
            f"{run.pages:>5} {run.tree:<6} | "
            f"{f'{busy.delivered}/{busy.events * run.concerned}':>13} "
            f"{f'{busy.up_to_date}/{run.concerned}':>11} {quantile(busy.delays, 0.5):>11} "
            f"{quantile(busy.delays, 0.9):>5} {quantile(busy.delays, 1.0):>5}"
        )
    print(
        "(lines: 'event: video' lines / changes x pages; a page polling or reading late "
        "may show two changes as one)"
    )
    most = max(run.pages for run in runs)
    print()
    print(f"What the queries were, with {most} pages open (per second):")
    for run in runs:
        if run.pages != most:
            continue
        for name, window in (("idle", run.idle), ("1 event/s", run.busy)):
            parts = [
                f"{calls / window.seconds:,.1f} {what}"
                for what, calls in window.queries.most_common(4)
            ]
            print(f"  {run.tree:<6} {name:<9}: {'; '.join(parts) or 'none'}")
    for run in runs:
        if run.idle.delivered:
            print(f"  note: {run.tree}, {run.pages} pages: {run.idle.delivered} changes while idle")
        if run.busy.stray:
            print(
                f"  note: {run.tree}, {run.pages} pages: {run.busy.stray} changes on others' pages"
            )
        if run.ended:
            print(f"  note: {run.tree}, {run.pages} pages: {run.ended} streams ended early")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, nargs="+", help=f"page counts (default {PAGES})")
    parser.add_argument("--quick", action="store_true", help=f"page counts {QUICK_PAGES}")
    parser.add_argument("--window", type=float, default=WINDOW_SECONDS, help="seconds (15)")
    parser.add_argument(
        "--people",
        action="store_true",
        help="each page another person's (the uploader has one); default: all the uploader's",
    )
    parser.add_argument("--before", default=BEFORE_COMMIT, help="commit before the bus")
    parser.add_argument("--after", default="", help="commit to measure (default: this tree)")
    args = parser.parse_args()
    counts = args.pages or list(QUICK_PAGES if args.quick else PAGES)
    files = raise_open_files()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "?",
    )  # fmt: skip
    print(
        f"ClipSync live pages benchmark: {os.cpu_count()} CPUs ({cpu}), open files "
        f"{files}, load average {load_average()} (1 / 5 / 15 min)"
    )
    began = time.perf_counter()
    runs: list[Run] = []
    try:
        with tempfile.TemporaryDirectory(prefix="clipsync-bench-") as folder:
            tmp = Path(folder)
            clip = make_clip("landscape", tmp)
            trees = [("before", short(args.before), unpack(args.before, tmp / "before"))]
            if args.after:
                trees.append(("after", short(args.after), unpack(args.after, tmp / "after")))
            else:
                trees.append(("after", "this working tree", None))
            say("starting a throwaway PostgreSQL with pg_stat_statements ...")
            with StatsPostgres() as postgres:
                asyncio.run(prepare_postgres(postgres))
                for tree, source, pythonpath in trees:
                    database = f"live_{tree}"
                    url = postgres.create_database(database)
                    toml = f'[database]\nurl = "{url}"\n{SERVER_TOML}'
                    say(f"{tree} ({source}): starting clipsync serve ...")
                    with BenchServer(tmp / f"live-{tree}", toml, pythonpath) as server:
                        uploader = set_up_uploader(server, clip)
                        people = None
                        if args.people:
                            others = max(max(counts) - 1, 0)
                            say(f"registering {others} more people ...")
                            people = uvloop.run(register_people(server, others))
                        runs += uvloop.run(
                            measure_tree(
                                tree,
                                server,
                                postgres,
                                database,
                                uploader,
                                counts,
                                args.window,
                                people,
                            )
                        )
                    say(f"load average {load_average()}")
    except (
        BenchFailed,
        LiveServerError,
        ServiceUnavailable,
        httpx.HTTPError,
        asyncpg.PostgresError,
        OSError,
    ) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    report(runs, args.window, args.people)
    print(
        f"load average now {load_average()} (1 / 5 / 15 min); whole benchmark "
        f"{time.perf_counter() - began:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
