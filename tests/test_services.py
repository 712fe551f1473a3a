"""Each harness in services.py starts a server that really works, and stops it for good.

Nothing here skips: a server that cannot start fails the run (install the services with
scripts/install-deps.sh test).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import clickhouse_driver
import pytest
import redis
from services import (
    LOOPBACK,
    ClickHouseServer,
    PostgresServer,
    RedisServer,
    ServiceUnavailable,
    free_ports,
)


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((LOOPBACK, port)) == 0


def test_free_ports_are_distinct_and_outside_the_ephemeral_range() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert all(port < 32768 or port > 60999 for port in ports)


def test_redis_server_answers_and_stops() -> None:
    with RedisServer() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        try:
            client.set("greeting", "hello")
            assert client.get("greeting") == b"hello"
        finally:
            client.close()
        workdir = server.workdir
    assert not server.running
    assert not port_is_open(server.port)
    assert not workdir.exists()


def test_postgres_server_creates_databases_and_stops() -> None:
    async def exercise(dsn: str) -> tuple[str, list[str]]:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE clip (title text NOT NULL)")
            await conn.executemany("INSERT INTO clip VALUES ($1)", [("b",), ("a",)])
            rows = await conn.fetch("SELECT title FROM clip ORDER BY title")
            return await conn.fetchval("SELECT current_database()"), [r["title"] for r in rows]
        finally:
            await conn.close()

    with PostgresServer() as server:
        dsn = server.create_database("clipsync_test")
        assert dsn == f"postgres://postgres@127.0.0.1:{server.port}/clipsync_test"
        assert asyncio.run(exercise(dsn)) == ("clipsync_test", ["a", "b"])
        # A second database is independent of the first: the table is not there.
        other = server.create_database("clipsync_other")
        assert asyncio.run(exercise(other)) == ("clipsync_other", ["a", "b"])
        with pytest.raises(RuntimeError, match="already exists"):
            server.create_database("clipsync_test")
        workdir = server.workdir
    assert not port_is_open(server.port)
    assert not workdir.exists()


def test_clickhouse_server_keeps_its_data_across_a_restart() -> None:
    rows = [(dt.datetime(2026, 1, 5, 12, 0), "view"), (dt.datetime(2026, 2, 1, 8, 30), "like")]

    def client(server: ClickHouseServer) -> clickhouse_driver.Client:
        return clickhouse_driver.Client(host=server.host, port=server.port)

    with ClickHouseServer() as server:
        ch = client(server)
        ch.execute(
            "CREATE TABLE events (ts DateTime, kind String) "
            "ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY ts"
        )
        ch.execute("INSERT INTO events (ts, kind) VALUES", rows)
        assert ch.execute("SELECT ts, kind FROM events ORDER BY ts") == rows
        ch.disconnect()

        server.stop(keep_data=True)
        assert not server.running
        assert not port_is_open(server.port)
        assert not port_is_open(server.http_port)

        server.start()
        ch = client(server)
        assert ch.execute("SELECT ts, kind FROM events ORDER BY ts") == rows
        ch.disconnect()
        workdir = server.workdir
    assert not port_is_open(server.port)
    assert not workdir.exists()


def test_a_missing_binary_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A PATH holding setpriv, which every harness needs, and no redis-server.
    (tmp_path / "setpriv").symlink_to(shutil.which("setpriv") or "/usr/bin/setpriv")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceUnavailable, match="apt-get install redis-server"):
        RedisServer()


def test_a_server_that_cannot_start_reports_its_log() -> None:
    server = RedisServer()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((LOOPBACK, server.port))
        with pytest.raises(ServiceUnavailable, match=r"(?s)exited with status.*in use"):
            server.start()
    assert not server.running
    with pytest.raises(RuntimeError, match="call start"):
        _ = server.workdir


def test_a_server_dies_with_the_process_that_started_it() -> None:
    # A child Python starts Redis and is then SIGKILLed, so no teardown of its runs.
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, services\n"
            "server = services.RedisServer().start()\n"
            "print(server.port, server.workdir, flush=True)\n"
            "sys.stdin.read()\n",
        ],
        cwd=Path(__file__).parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    port, workdir = starter.stdout.readline().split()
    try:
        assert port_is_open(int(port))
        starter.kill()
        starter.wait()
        deadline = time.monotonic() + 5
        while port_is_open(int(port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not port_is_open(int(port))
    finally:
        starter.kill()
        starter.communicate()
        shutil.rmtree(workdir)  # the killed starter could not remove it
