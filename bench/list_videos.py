"""What listing and search cost as the library grows: the same requests before and after
the indexed, keyset list.

Run it with `.venv/bin/python bench/list_videos.py` (about 5 minutes on 2 cores;
`--quick` for about 2, `--postgres` to run both trees on a throwaway PostgreSQL
instead of SQLite). For each tree and each library size (10k and 100k videos) it
starts a real `clipsync serve` (`LiveServer` from tests/browser.py, one worker as by
default) on a fresh database, fills it straight through SQL, and measures:

- *first page*: `GET /api/videos?pageSize=20`;
- *deep page*: the 201st page of 20, as `?page=201` on both trees, and after it, as
  `?after=<cursor>` at the same place on the new one (the old one has no cursor);
- *search*: `GET /api/videos?q=sunset`, a word in about 15 % of the titles.

Each is asked by two viewers: an admin (sees everything) and a user of one of five
categories (sees the approved videos of it, 60 % of its videos, and their own).
`--connections` keep-alive clients (raw HTTP/1.1 on asyncio; wrk is not installed
here) send the request in a loop for `--seconds`; it prints requests per second, p50
and p99 side by side, and the after / before ratio of p50.

The trees:

- *before*: the commit given by `--before` (the one before the indexed list), unpacked
  with `git archive` into the temporary folder and imported from there (PYTHONPATH on
  a folder of links named as the installed packages), with the same virtual
  environment; its migrations make its own schema (no list indexes).
- *after*: this working tree (`--after COMMIT` unpacks a commit instead).

There are no targets; it exits 1 only when something failed to run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import commit_tree  # noqa: E402
from browser import LiveServerError  # noqa: E402
from clients import PASSWORD, bearer  # noqa: E402
from commit_tree import BenchFailed, unpack  # noqa: E402
from services import PostgresServer  # noqa: E402

BEFORE = "ec743f1"
CATEGORIES = [f"team{n}" for n in range(5)]
OWNERS = 200
PAGE_SIZE = 20
DEEP_PAGE = 201
# The viewer uploads too, as one of the owners: their own videos are a branch of the rule.
OWNERS_SQL = (
    "SELECT id, category FROM users WHERE email LIKE 'owner%' OR email = 'viewer@example.org'"
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class BenchServer(commit_tree.BenchServer):
    """The commit's server, migrated without starting it (to fill its database first)."""

    def migrate(self) -> None:
        self.write_config()
        self._migrate()


# --- the library ----------------------------------------------------------------------------


def rows(count: int, owners: list[tuple[int, str]]) -> list[tuple]:
    """`count` videos of `owners` (id, category): 60 % approved, 15 % about sunsets."""
    chance = random.Random(15)
    statuses = ["APPROVED"] * 6 + ["READY", "PROCESSING", "FAILED", "REJECTED"]
    words = ["harbour", "meeting", "review", "launch", "demo", "garden", "river", "city"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    made = []
    for n in range(count):
        owner, category = chance.choice(owners)
        title = " ".join(chance.sample(words, 3))
        if chance.random() < 0.15:
            title += " sunset"
        created = start + timedelta(seconds=n * 60, microseconds=chance.randrange(1, 999_999))
        made.append((uuid.UUID(int=chance.getrandbits(128), version=4), owner, title, category,
                     chance.choice(statuses), created))  # fmt: skip
    return made


def fill_sqlite(path: Path, count: int) -> None:
    db = sqlite3.connect(path)
    owners = db.execute(OWNERS_SQL).fetchall()
    db.executemany(
        "INSERT INTO videos (id, owner_id, title, original_filename, description, category,"
        " status, progress, attempts, duration, created_at, updated_at)"
        " VALUES (?, ?, ?, 'clip.mp4', 'A clip of the bench.', ?, ?, 100, 1, 60.0, ?, ?)",
        (
            (str(i), o, t, c, s, at.isoformat(" "), at.isoformat(" "))
            for i, o, t, c, s, at in rows(count, owners)
        ),
    )
    db.commit()
    db.close()


async def fill_postgres(dsn: str, count: int) -> None:
    import asyncpg

    db = await asyncpg.connect(dsn)
    try:
        owners = [(r["id"], r["category"]) for r in await db.fetch(OWNERS_SQL)]
        await db.copy_records_to_table(
            "videos",
            columns=["id", "owner_id", "title", "original_filename", "description", "category",
                     "status", "progress", "attempts", "duration", "created_at", "updated_at"],
            records=[
                (i, o, t, "clip.mp4", "A clip of the bench.", c, s, 100, 1, 60.0, at, at)
                for i, o, t, c, s, at in rows(count, owners)
            ],
        )  # fmt: skip
        await db.execute("ANALYZE")
    finally:
        await db.close()


def accounts(server: BenchServer) -> None:
    """The two viewers, registered through the API (the owners are copies of them)."""
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        for name in ("admin", "viewer"):
            body = {"email": f"{name}@example.org", "password": PASSWORD}
            answer = http.post("/api/auth/register", json=body)
            if answer.status_code != 201:
                raise BenchFailed(f"register answered {answer.status_code}: {answer.text[:200]}")


def login(server: BenchServer) -> dict[str, str]:
    tokens = {}
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        for name in ("admin", "viewer"):
            body = {"email": f"{name}@example.org", "password": PASSWORD}
            answer = http.post("/api/auth/login", json=body)
            if answer.status_code != 200:
                raise BenchFailed(f"login answered {answer.status_code}: {answer.text[:200]}")
            tokens[name] = answer.json()["token"]
    return tokens


def people_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE users SET role = 'admin' WHERE email = 'admin@example.org'")
    db.execute("UPDATE users SET role = 'user', category = ? WHERE email = 'viewer@example.org'",
               (CATEGORIES[0],))  # fmt: skip
    columns = [row[1] for row in db.execute("PRAGMA table_info(users)") if row[1] != "id"]
    listed = ", ".join(f'"{c}"' for c in columns)
    for n in range(OWNERS):
        picked = [
            f"'owner{n}@example.org'" if c == "email" else
            f"'{CATEGORIES[n % 5]}'" if c == "category" else f'"{c}"'
            for c in columns
        ]  # fmt: skip
        db.execute(
            f"INSERT INTO users ({listed}) SELECT {', '.join(picked)} FROM users"
            " WHERE email = 'viewer@example.org'"
        )
    db.commit()
    db.close()


async def people_postgres(dsn: str) -> None:
    import asyncpg

    db = await asyncpg.connect(dsn)
    try:
        await db.execute("UPDATE users SET role = 'admin' WHERE email = 'admin@example.org'")
        await db.execute(
            "UPDATE users SET role = 'user', category = $1 WHERE email = 'viewer@example.org'",
            CATEGORIES[0],
        )
        columns = [
            r["column_name"]
            for r in await db.fetch(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'users' AND column_name <> 'id'"
            )
        ]
        listed = ", ".join(f'"{c}"' for c in columns)
        for n in range(OWNERS):
            picked = [
                f"'owner{n}@example.org'" if c == "email" else
                f"'{CATEGORIES[n % 5]}'" if c == "category" else f'"{c}"'
                for c in columns
            ]  # fmt: skip
            await db.execute(
                f"INSERT INTO users ({listed}) SELECT {', '.join(picked)} FROM users"
                " WHERE email = 'viewer@example.org'"
            )
    finally:
        await db.close()


# --- the load ------------------------------------------------------------------------------


@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q * 100) - 1]


async def client_loop(host: str, port: int, request: bytes, until: float, into: Figures) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < until:
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            if status == 200:
                into.latencies.append(time.perf_counter() - began)
            else:
                into.errors += 1
    finally:
        writer.close()


async def load(server: BenchServer, path: str, token: str, seconds: float, conns: int) -> Figures:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {server.base_url[7:]}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    figures = Figures()
    # A short warm-up first, not counted.
    await client_loop("127.0.0.1", server.port, request, time.monotonic() + 0.5, Figures())
    began = time.monotonic()
    until = began + seconds
    await asyncio.gather(
        *(client_loop("127.0.0.1", server.port, request, until, figures) for _ in range(conns))
    )
    figures.seconds = time.monotonic() - began
    return figures


def deep_cursor(server: BenchServer, token: str) -> str | None:
    """The cursor at the end of page DEEP_PAGE - 1, or None on a tree without cursors."""
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        page = http.get(
            f"/api/videos?page={DEEP_PAGE - 1}&pageSize={PAGE_SIZE}", headers=bearer(token)
        ).json()
        probe = http.get("/api/videos?after=&pageSize=1", headers=bearer(token)).json()
    if "next" not in probe or not page["items"]:
        return None
    last = page["items"][-1]
    data = json.dumps({"t": last["createdAt"], "id": last["id"]}).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def requests_of(cursor: str | None) -> list[tuple[str, str]]:
    asked = [
        ("first page", f"/api/videos?pageSize={PAGE_SIZE}"),
        (f"page {DEEP_PAGE}", f"/api/videos?page={DEEP_PAGE}&pageSize={PAGE_SIZE}"),
        ("search", "/api/videos?q=sunset&pageSize=20"),
    ]
    if cursor:
        asked.insert(2, (f"after cursor (= page {DEEP_PAGE})",
                         f"/api/videos?after={cursor}&pageSize={PAGE_SIZE}"))  # fmt: skip
    return asked


# --- one tree ----------------------------------------------------------------------------


def measure_tree(
    name: str, pythonpath: Path | None, size: int, folder: Path, postgres: PostgresServer | None,
    seconds: float, conns: int,
) -> dict[tuple[str, str], Figures]:  # fmt: skip
    extra = "".join(
        f'[[category]]\nname = "{c}"\nlabel = "{c}"\nself_select = true\n'
        + ("default = true\n" if c == CATEGORIES[0] else "")
        for c in CATEGORIES
    )
    dsn = None
    if postgres is not None:
        dsn = postgres.create_database(f"{name}_{size}")
        extra += f'[database]\nurl = "{dsn}"\n'
    server = BenchServer(folder / f"{name}-{size}", extra, pythonpath)
    say(f"{name}, {size} videos: migrating and filling")
    server.migrate()
    server.start()
    try:
        accounts(server)
        server.stop()
        began = time.monotonic()
        if dsn:
            asyncio.run(people_postgres(dsn))
            asyncio.run(fill_postgres(dsn, size))
        else:
            people_sqlite(server.data_dir / "clipsync.sqlite3")
            fill_sqlite(server.data_dir / "clipsync.sqlite3", size)
        say(f"  filled in {time.monotonic() - began:.0f} s; serving")
        server.start()
        tokens = login(server)
        results = {}
        for viewer, token in tokens.items():
            for label, path in requests_of(deep_cursor(server, token)):
                figures = asyncio.run(load(server, path, token, seconds, conns))
                if figures.errors and not figures.latencies:
                    raise BenchFailed(f"{name}: {path} answered only errors")
                results[(viewer, label)] = figures
                say(f"  {viewer:6} {label:28} {figures.rate:7.1f} req/s"
                    f"  p50 {figures.quantile(0.5) * 1000:7.1f} ms")  # fmt: skip
        return results
    finally:
        server.stop()


def report(sizes: list[int], runs: dict, seconds: float, conns: int, dialect: str) -> None:
    print(f"\nGET /api/videos, {dialect}, {conns} keep-alive connections, {seconds:.0f} s each,"
          f" one worker; req/s, p50 / p99 in ms\n")  # fmt: skip
    print("| videos | viewer | request | before req/s | before p50 / p99 | after req/s"
          " | after p50 / p99 | p50 after / before |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for size in sizes:
        before, after = runs[("before", size)], runs[("after", size)]
        for key in after:
            viewer, label = key
            old = before.get(key) or before.get((viewer, f"page {DEEP_PAGE}"))
            new = after[key]
            cells = []
            for figures in (old, new):
                if figures is None:
                    cells += ["—", "—"]
                else:
                    cells += [f"{figures.rate:.0f}", f"{figures.quantile(0.5) * 1000:.1f} / "
                              f"{figures.quantile(0.99) * 1000:.1f}"]  # fmt: skip
            ratio = new.quantile(0.5) / old.quantile(0.5) if old else float("nan")
            print(f"| {size:,} | {viewer} | {label} | {' | '.join(cells)} | {ratio:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=BEFORE, help="the commit before the change")
    parser.add_argument("--after", default=None, help="a commit instead of this working tree")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--quick", action="store_true", help="shorter windows (about 2 min)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-list-") as tmp:
            folder = Path(tmp)
            before = unpack(args.before, folder / "before")
            after = unpack(args.after, folder / "after") if args.after else None
            runs = {}
            postgres = PostgresServer().__enter__() if args.postgres else None
            try:
                for size in args.sizes:
                    for name, path in (("before", before), ("after", after)):
                        runs[(name, size)] = measure_tree(
                            name, path, size, folder, postgres, seconds, args.connections
                        )
            finally:
                if postgres is not None:
                    postgres.__exit__(None, None, None)
            print(f"\nbefore = {args.before}, after = {args.after or 'this working tree'};"
                  f" load average {os.getloadavg()[0]:.1f}")  # fmt: skip
            report(args.sizes, runs, seconds, args.connections,
                   "PostgreSQL" if args.postgres else "SQLite")  # fmt: skip
    except (BenchFailed, LiveServerError, httpx.HTTPError, OSError) as error:
        say(f"failed: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
