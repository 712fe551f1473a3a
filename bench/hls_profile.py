"""CPU per signed-segment request, in one process on one core, and where it goes.

Run it with `.venv/bin/python bench/hls_profile.py` (about 20 s; `--requests 5000`
for steadier figures, `--access-log` to keep the access line on).

bench/hls.py measures requests per second under wrk; this one says what a single
request costs the server and which functions spend it, without a load generator
competing for the cores. A ClipSync app (default settings, SQLite, local storage,
built as `create_app` builds it for `clipsync serve`, with its metrics folder as
`clipsync serve` sets it) serves HTTP/1.1 on loopback in a child process, one Sanic
server in one event loop. The parent asks it, one request at a time on one keep-alive
connection (`http.client`), for a 369 KiB segment by its signed URL (the fast path of
api/hls.py: signature checked, file sent with sendfile, no database). Two passes of
`--requests` each after a warm-up:

- the server's own CPU time (`time.process_time` in the child) per request, with no
  profiler attached: what bounds one worker's rate on a core of its own
  (1e6 / µs per request);
- the same under cProfile, whose top functions by own time are printed (the
  profiler's overhead inflates the many small calls; compare the shares, not the
  absolute figures, with the unprofiled pass).

The client's wall-clock rate is printed too; on a loaded machine it follows what the
load leaves, the CPU figures much less.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import http.client
import io
import multiprocessing
import os
import pstats
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEGMENT_BYTES = 369 * 1024
HOST = "clipsync.test"
PATH = "144p/seg_00001.m4s"


def settings_for(data_dir: Path, access_log: bool):  # type: ignore[no-untyped-def]
    from clipsync.settings import parse_settings

    tables = {
        "paths": {"data_dir": str(data_dir)},
        "server": {"public_url": f"http://{HOST}"},
        "logging": {"access_log": access_log},
    }
    return parse_settings(tables, where="bench")


def serve(data_dir: Path, access_log: bool, port: int, ready: multiprocessing.Event) -> None:
    """The child: one Sanic server; SIGUSR1 starts a pass, SIGUSR2 ends it and reports."""
    import uvloop

    from clipsync import db, metrics

    settings = settings_for(data_dir, access_log)
    metrics.prepare_run(settings, "serve")
    # Access lines (when on) go to a file, as to a journal, not to the terminal.
    sys.stderr = open(data_dir / "server.log", "w", buffering=1)  # noqa: SIM115
    asyncio.run(db.migrate(settings))
    # The event loop `clipsync serve` runs on (Sanic picks uvloop when installed).
    uvloop.run(_serve(settings, port, ready, data_dir))


async def _serve(settings, port: int, ready, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from clipsync.app import create_app

    app = create_app(settings, load_entry_points=False)
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    state: dict[str, object] = {}

    def begin() -> None:
        state["cpu"] = os.times()
        if state.get("profile"):
            profiler = cProfile.Profile()
            state["profiler"] = profiler
            profiler.enable()

    def end() -> None:
        now, then = os.times(), state["cpu"]
        cpu = f"{now.user - then.user} {now.system - then.system}"  # type: ignore[attr-defined]
        profiler = state.pop("profiler", None)
        if profiler is not None:
            profiler.disable()  # type: ignore[attr-defined]
            profiler.dump_stats(str(data_dir / "profile.pstats"))  # type: ignore[attr-defined]
        (data_dir / f"cpu-{'profiled' if state.get('profile') else 'plain'}").write_text(f"{cpu}")
        state["profile"] = True  # the second pass is profiled

    loop.add_signal_handler(signal.SIGUSR1, begin)
    loop.add_signal_handler(signal.SIGUSR2, end)
    loop.add_signal_handler(signal.SIGTERM, done.set)
    ready.set()
    await done.wait()
    await server.before_stop()
    server.close()
    await server.wait_closed()
    await server.after_stop()


def segment_url(data_dir: Path) -> str:
    from clipsync import delivery
    from clipsync.storage import keys

    settings = settings_for(data_dir, False)
    video_id = uuid.uuid4()
    file = data_dir / "media" / keys.hls_key(video_id, PATH)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(os.urandom(SEGMENT_BYTES))
    query = delivery.signer_for(settings).query(video_id, PATH, "u:1", int(time.time()) + 3600)
    return f"/hls/{video_id}/{PATH}?{query}"


def ask(connection: http.client.HTTPConnection, url: str, count: int) -> float:
    """`count` requests one after another; seconds they took."""
    started = time.perf_counter()
    for _ in range(count):
        connection.request("GET", url, headers={"Host": HOST})
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 200 or len(body) != SEGMENT_BYTES:
            raise RuntimeError(f"{answer.status}: {dict(answer.headers)}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--pstats", type=Path, help="keep the profile (for pstats, snakeviz)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="clipsync-hls-profile-") as folder:
        data_dir = Path(folder)
        url = segment_url(data_dir)
        with socket_port() as port:
            pass
        ready = multiprocessing.get_context("spawn").Event()
        child = multiprocessing.get_context("spawn").Process(
            target=serve, args=(data_dir, args.access_log, port, ready)
        )
        child.start()
        try:
            started = time.monotonic()
            while not ready.wait(0.5) and child.is_alive() and time.monotonic() - started < 120:
                pass
            if not ready.is_set():
                log = (data_dir / "server.log").read_text()[-3000:]
                raise RuntimeError(f"the server did not start:\n{log}")
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            ask(connection, url, 300)  # warm-up
            rates = []
            for _ in ("plain", "profiled"):
                os.kill(child.pid, signal.SIGUSR1)
                ask(connection, url, 1)  # the signal is handled before this answer
                seconds = ask(connection, url, args.requests)
                os.kill(child.pid, signal.SIGUSR2)
                ask(connection, url, 1)
                rates.append(args.requests / seconds)
            connection.close()
        finally:
            child.terminate()
            child.join(30)
        n = args.requests + 1
        user, system = (float(f) / n for f in (data_dir / "cpu-plain").read_text().split())
        plain = user + system
        profiled = sum(float(f) for f in (data_dir / "cpu-profiled").read_text().split()) / n
        print(f"access log {'on' if args.access_log else 'off'}, {args.requests} requests a pass")
        print(
            f"server CPU per request: {plain * 1e6:.0f} µs (user {user * 1e6:.0f}, "
            f"system {system * 1e6:.0f}); one core: {1 / plain:,.0f} req/s"
        )
        print(f"client wall rate, unprofiled pass: {rates[0]:,.0f} req/s")
        print(f"under cProfile: {profiled * 1e6:.0f} µs per request; top by own time:")
        out = io.StringIO()
        if args.pstats:
            shutil.copyfile(data_dir / "profile.pstats", args.pstats)
        stats = pstats.Stats(str(data_dir / "profile.pstats"), stream=out)
        stats.sort_stats("tottime").print_stats(args.top)
        print(out.getvalue().split("   ncalls", 1)[-1].join(["   ncalls", ""]))
        out = io.StringIO()
        stats.stream = out
        stats.sort_stats("cumulative").print_stats(40)
        print(out.getvalue().split("   ncalls", 1)[-1].join(["   ncalls", ""]))
    return 0


class socket_port:
    """A free loopback port."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


if __name__ == "__main__":
    sys.exit(main())
