"""The API and the home page under load as the library grows: list, search, detail
and `GET /` on 10k, 100k and 1M videos, SQLite and PostgreSQL, 1 and 2 workers.

Run it with `.venv/bin/python bench/api.py`. The default (10k and 100k videos, both
databases, workers 1 and 2, 10 s per request, and the cache-off rows at 100k) took 15
minutes on this 2-core machine. `--sizes 10k,100k,1M` adds the million: filling it
took 236 s on SQLite; on PostgreSQL the search trigger runs a query per row (100k took
62 s, so about 10 minutes), so the whole matrix with 1M takes 40 minutes or more;
`--sizes 10k,1M --backends sqlite --workers 2 --cache-off-at none` is the short way to
the 1M comparison (about 12 minutes).
Other options: `--backends sqlite,postgres`, `--workers 1,2`, `--duration 10` (seconds
per request), `--connections 100`, `--cache-off-at 100k` (`none` to skip),
`--viewer user|admin`, `--before COMMIT`: that commit's code (`git archive`, see
bench/commit_tree.py) measured too, on the same library, just before this tree's at
each worker count, so the two are compared under the same load (the rows say which
code ran: the commit, or `tree`).

For each database and size it makes a fresh install (`clipsync migrate`; PostgreSQL
is a throwaway `PostgresServer` from tests/services.py), registers the viewer through
the API, then writes 1,000 people of the default category and the videos straight
into the database (bench/api_library.py: one transaction, the search index filled by
its triggers) and says how long that took. Every video is APPROVED and in the default
category, so the viewer, a plain user of that category (`--viewer user`, the default
install's everyday viewer; `admin` for an administrator), may see every one. Then for
each worker count it runs `clipsync serve` (the cache on, as by default: `[cache]
backend = "memory"`), signs in, and points wrk (2 threads, `--connections` keep-alive
connections, a timeout of 30 s so slow answers are measured, not dropped) at:

- *list*: `GET /api/videos` (the first page, 20 videos and the count);
- *search*: `GET /api/videos?q=<word>`, a word in about 15 % of the videos (the
  share found is printed);
- *detail*: `GET /api/videos/<id>`, each request one of 10,000 videos spread over the
  library, picked at random;
- *home*: `GET /` (the HTML feed, 24 videos).

Each gets 2 s of warm-up that are not counted. Once per database, at `--cache-off-at`
and the largest worker count, it runs again with `[cache] backend = "off"`. It prints
req/s, p50 and p99 of each, the CPU time `clipsync serve` (all its processes) and
PostgreSQL spent per request (from /proc, less what they use idle: what a request
costs, whatever share of the machine the server got), and the targets beside the
figures (PASS / MISS): at 100k with 2 workers list p99 < 100 ms, search p99 < 150 ms,
detail p99 < 50 ms; and for each request, p99 at 1M within 1.5 times p99 at 10k. wrk
and the server share the machine, as does anyone else's work: the load average is
printed with each row. It never asserts a timing; it exits 1 only when something
failed to run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

import api_library  # noqa: E402
import commit_tree  # noqa: E402
from browser import LiveServerError  # noqa: E402
from clients import PASSWORD, bearer  # noqa: E402
from commit_tree import BenchFailed  # noqa: E402
from services import PostgresServer  # noqa: E402

VIEWER = "viewer@bench.test"
REQUESTS = ("list", "search", "detail", "home")
WARM_UP = 2
IDLE = 3  # seconds of an idle server measured, to take its background work out
WRK_THREADS = 2
# p99 targets at 100k videos and 2 workers, in ms; and the 1M / 10k bound.
TARGETS = {"list": 100.0, "search": 150.0, "detail": 50.0}
TARGET_SIZE, TARGET_WORKERS = 100_000, 2
GROWTH = 1.5
SUFFIXES = {"k": 1_000, "m": 1_000_000}
TICKS = os.sysconf("SC_CLK_TCK")

# wrk prints one line of figures (latencies in µs); each thread picks paths at random.
LUA = """
local paths = {%(paths)s}
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Accept"] = "%(accept)s"
local counter = 1
function setup(thread)
  thread:set("seed", counter)
  counter = counter + 1
end
function init(args)
  math.randomseed(seed or 1)
end
function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("FIGURES %%d %%d %%d %%d %%d %%d\\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def size_of(text: str) -> int:
    text = text.strip().lower()
    factor = SUFFIXES.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in SUFFIXES else text
    return int(float(number) * factor)


def label(size: int) -> str:
    return f"{size // 1_000_000}M" if size >= 1_000_000 else f"{size // 1_000}k"


def load_average() -> float:
    return os.getloadavg()[0]


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds used so far by the processes under `roots`, themselves included.

    On a shared machine req/s and latency say how much CPU the server was given; the
    CPU it spent per request says what each request costs.
    """
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # After the command's name: state, ppid, ... utime and stime (fields 14, 15).
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


@dataclass
class Figures:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    load: float
    server_cpu: float  # CPU seconds of `clipsync serve` (all its processes)
    database_cpu: float | None  # of PostgreSQL; None on SQLite (inside the server)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def per_request(self, seconds: float | None) -> str:
        if seconds is None or not self.requests:
            return "—"
        return f"{seconds * 1000 / self.requests:.1f}"


class ApiServer(commit_tree.BenchServer):
    """This tree's `clipsync serve` with a chosen worker count and cache backend."""

    def __init__(self, workdir: Path, extra_toml: str) -> None:
        super().__init__(workdir, extra_toml, pythonpath=None)  # `--before` sets one
        self.base_toml = extra_toml
        self.workers = 1

    def configure(self, workers: int, cache: str) -> None:
        self.workers = workers
        self.extra_toml = f'{self.base_toml}[cache]\nbackend = "{cache}"\n'
        self.write_config()

    def write_config(self) -> None:
        super().write_config()
        text = self.config_path.read_text()
        self.config_path.write_text(
            text.replace("[server]\n", f"[server]\nworkers = {self.workers}\n", 1)
        )

    def migrate(self) -> None:
        self.write_config()
        self._migrate()


def register_viewer(server: ApiServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        answer = http.post("/api/auth/register", json={"email": VIEWER, "password": PASSWORD})
        if answer.status_code != 201:
            raise BenchFailed(f"register answered {answer.status_code}: {answer.text[:200]}")


def sign_in(server: ApiServer) -> str:
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        answer = http.post("/api/auth/login", json={"email": VIEWER, "password": PASSWORD})
        if answer.status_code != 200:
            raise BenchFailed(f"login answered {answer.status_code}: {answer.text[:200]}")
        return answer.json()["token"]


def paths_of(library: api_library.Library) -> dict[str, list[str]]:
    return {
        "list": ["/api/videos"],
        "search": [f"/api/videos?q={library.word}"],
        "detail": [f"/api/videos/{video_id}" for video_id in library.detail_ids],
        "home": ["/"],
    }


def check(server: ApiServer, token: str, paths: dict[str, list[str]], size: int) -> int:
    """Each request answers 200 with what it should; returns the search's total."""
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        for listed in paths.values():
            answer = http.get(listed[0], headers=bearer(token))
            if answer.status_code != 200:
                raise BenchFailed(f"{listed[0]} answered {answer.status_code}: {answer.text[:200]}")
        listed = http.get(paths["list"][0], headers=bearer(token)).json()
        if len(listed["items"]) != 20 or (size > 1_000 and not listed["totalIsLowerBound"]):
            raise BenchFailed(f"the list is not what was written: {str(listed)[:300]}")
        found = http.get(paths["search"][0], headers=bearer(token)).json()
        return int(found["total"])


def processes(server: ApiServer, postgres: PostgresServer | None) -> tuple[list[int], list[int]]:
    database = [postgres._process.pid] if postgres and postgres._process else []
    return [server.pid], database


def idle_cpu(server: ApiServer, postgres: PostgresServer | None) -> tuple[float, float]:
    """CPU seconds per second the idle server (its job consumer, the event bus's
    reader, Sanic's manager) and PostgreSQL use: taken out of each run's CPU time."""
    ours, database = processes(server, postgres)
    before = tree_cpu(ours), tree_cpu(database)
    time.sleep(IDLE)
    return (tree_cpu(ours) - before[0]) / IDLE, (tree_cpu(database) - before[1]) / IDLE


def wrk(server: ApiServer, token: str, paths: list[str], kind: str, seconds: float,
        connections: int, folder: Path, postgres: PostgresServer | None,
        idle: tuple[float, float]) -> Figures:  # fmt: skip
    script = folder / f"{kind}.lua"
    script.write_text(LUA % {
        "paths": ", ".join(f'"{p}"' for p in paths),
        "token": token,
        "accept": "text/html" if kind == "home" else "application/json",
    })  # fmt: skip
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", "--timeout", "30s", "-s",
               str(script)]  # fmt: skip
    subprocess.run([*command, f"-d{WARM_UP}s", server.base_url], capture_output=True, check=False)
    load = load_average()
    ours, database = processes(server, postgres)
    server_before, database_before = tree_cpu(ours), tree_cpu(database)
    ran = subprocess.run([*command, f"-d{seconds:g}s", server.base_url], capture_output=True,
                         text=True, check=False)  # fmt: skip
    server_cpu = max(0.0, tree_cpu(ours) - server_before - idle[0] * seconds)
    database_cpu = None
    if database:
        database_cpu = max(0.0, tree_cpu(database) - database_before - idle[1] * seconds)
    line = next((x for x in ran.stdout.splitlines() if x.startswith("FIGURES ")), None)
    if ran.returncode != 0 or line is None:
        raise BenchFailed(f"wrk failed ({ran.returncode}): {ran.stdout[-500:]} {ran.stderr[-500:]}")
    requests, micros, errors, status, p50, p99 = (int(x) for x in line.split()[1:])
    if not requests:  # none answered within the window: slower than it, not 0 ms
        p50 = p99 = int(seconds * 1e6)
    return Figures(requests, micros / 1e6, errors + status, p50 / 1000, p99 / 1000, load,
                   server_cpu, database_cpu)  # fmt: skip


@dataclass(frozen=True)
class Run:
    backend: str
    size: int
    workers: int
    cache: str
    kind: str
    code: str = "tree"  # this tree, or the `--before` commit


def measure_library(backend: str, size: int, args: argparse.Namespace, folder: Path,
                    postgres: PostgresServer | None, found: dict) -> None:  # fmt: skip
    """Fill one install with `size` videos and measure it with each worker count."""
    extra = ""
    dsn = None
    if postgres is not None:
        dsn = postgres.create_database(f"api_{size}")
        extra = f'[database]\nurl = "{dsn}"\n'
    server = ApiServer(folder / f"{backend}-{size}", extra)
    try:
        say(f"{backend}, {label(size)} videos: migrating, registering the viewer")
        server.configure(1, "memory")
        server.migrate()
        server.start()
        try:
            register_viewer(server)
        finally:
            server.stop()
        began = time.monotonic()
        if dsn:
            library = asyncio.run(api_library.fill_postgres(dsn, VIEWER, args.viewer, size))
        else:
            database = str(server.data_dir / "clipsync.sqlite3")
            library = api_library.fill_sqlite(database, VIEWER, args.viewer, size)
        filled = time.monotonic() - began
        found["fills"][(backend, size)] = (filled, library)
        say(f"  filled in {filled:.0f} s ({size / filled:,.0f} videos/s);"
            f" '{library.word}' is in {library.share:.1%} of the videos")  # fmt: skip
        codes: list[tuple[str, Path | None]] = [("tree", None)]
        if args.before:
            codes.insert(0, (args.before, args.before_path))
        plans = [(w, "memory", c) for w in args.workers for c in codes]
        if size == args.cache_off_at:
            plans += [(max(args.workers), "off", c) for c in codes]
        for workers, cache, (code, pythonpath) in plans:
            server.pythonpath = pythonpath
            server.configure(workers, cache)
            server.start()
            try:
                token = sign_in(server)
                paths = paths_of(library)
                total = check(server, token, paths, size)
                idle = idle_cpu(server, postgres)
                found["search_totals"][(backend, size)] = total
                for kind in REQUESTS:
                    figures = wrk(server, token, paths[kind], kind, args.duration,
                                  args.connections, folder, postgres, idle)  # fmt: skip
                    found["runs"][Run(backend, size, workers, cache, kind, code)] = figures
                    say(f"  {code:8} {workers} worker(s), cache {cache:6} {kind:6}"
                        f" {figures.rate:8.1f} req/s  p50 {figures.p50_ms:8.1f} ms"
                        f"  p99 {figures.p99_ms:8.1f} ms  errors {figures.errors}"
                        f"  CPU ms/req {figures.per_request(figures.server_cpu)}"
                        f" + {figures.per_request(figures.database_cpu)}"
                        f"  load {figures.load:.1f}")  # fmt: skip
            finally:
                server.stop()
    finally:
        shutil.rmtree(server.workdir, ignore_errors=True)
        if postgres is not None:
            subprocess.run([str(postgres.bindir / "dropdb"), *postgres._client_args(),
                            f"api_{size}"], capture_output=True, check=False)  # fmt: skip


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(found: dict, args: argparse.Namespace, began_load: float) -> None:
    viewer = ("a user of the one category that holds every video (all approved)"
              if args.viewer == "user" else "an admin")  # fmt: skip
    print(f"\nwrk, {WRK_THREADS} threads, {args.connections} keep-alive connections,"
          f" {args.duration:g} s per request after {WARM_UP} s of warm-up; signed in as"
          f" {viewer}. {os.cpu_count()} CPUs; load average {began_load:.1f} at the start,"
          f" {load_average():.1f} at the end; load = the 1-minute load average as the row"
          " began.\n")  # fmt: skip
    for (backend, size), (seconds, library) in found["fills"].items():
        total = found["search_totals"].get((backend, size), 0)
        print(f"- {backend}, {size:,} videos: filled in {seconds:.0f} s; search word"
              f" '{library.word}' in {library.share:.1%} written, {total:,} found")  # fmt: skip
    print("\n| database | videos | workers | cache | code | request | req/s | p50 ms | p99 ms"
          " | errors | server CPU ms/req | PostgreSQL CPU ms/req | load |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run, f in found["runs"].items():
        latency = f"{f.p50_ms:.1f} | {f.p99_ms:.1f}" if f.requests else "> window | > window"
        print(f"| {run.backend} | {run.size:,} | {run.workers} | {run.cache} | {run.code}"
              f" | {run.kind}"
              f" | {f.rate:,.0f} | {latency} | {f.errors}"
              f" | {f.per_request(f.server_cpu)} | {f.per_request(f.database_cpu)}"
              f" | {f.load:.1f} |")  # fmt: skip
    rows = []
    runs = found["runs"]
    for backend in args.backends:
        for kind, target in TARGETS.items():
            got = runs.get(Run(backend, TARGET_SIZE, TARGET_WORKERS, "memory", kind))
            if got:
                rows.append((backend, f"{kind} p99, 100k, 2 workers", f"{got.p99_ms:.1f} ms",
                             f"< {target:g} ms", verdict(got.p99_ms < target)))  # fmt: skip
        workers = max(args.workers)
        for kind in REQUESTS:
            small = runs.get(Run(backend, 10_000, workers, "memory", kind))
            large = runs.get(Run(backend, 1_000_000, workers, "memory", kind))
            if small and large:
                ratio = large.p99_ms / small.p99_ms
                rows.append((backend, f"{kind} p99 1M / 10k, {workers} worker(s)",
                             f"{ratio:.2f} (p50 {large.p50_ms / small.p50_ms:.2f},"
                             f" req/s {large.rate / small.rate:.2f})",
                             f"≤ {GROWTH:g}", verdict(ratio <= GROWTH)))  # fmt: skip
    if rows:
        print("\n| database | target | measured | wanted | verdict |")
        print("|---|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k", help="e.g. 10k,100k,1M")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per request")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--cache-off-at", default="100k", help="a size, or none")
    parser.add_argument("--viewer", choices=("user", "admin"), default="user")
    parser.add_argument("--before", default=None, help="a commit to measure beside this tree")
    args = parser.parse_args()
    # A plain `kill` still stops the servers and removes the temporary folder.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sizes = [size_of(s) for s in args.sizes.split(",")]
    args.backends = [b.strip() for b in args.backends.split(",")]
    args.workers = [int(w) for w in args.workers.split(",")]
    args.cache_off_at = None if args.cache_off_at == "none" else size_of(args.cache_off_at)
    if shutil.which("wrk") is None:
        say("wrk is not installed: apt-get install wrk")
        return 1
    began_load = load_average()
    say(f"{os.cpu_count()} CPUs, load average {began_load:.1f}")
    found: dict = {"runs": {}, "fills": {}, "search_totals": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
            if args.before:
                args.before_path = commit_tree.unpack(args.before, Path(tmp) / "before")
            for backend in args.backends:
                postgres = PostgresServer().__enter__() if backend == "postgres" else None
                try:
                    for size in sizes:
                        measure_library(backend, size, args, Path(tmp), postgres, found)
                finally:
                    if postgres is not None:
                        postgres.__exit__(None, None, None)
    except (BenchFailed, LiveServerError, httpx.HTTPError, OSError) as error:
        say(f"failed: {error}")
        report(found, args, began_load)
        return 1
    report(found, args, began_load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
