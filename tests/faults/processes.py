"""Real ClipSync processes to break: `clipsync serve`, `clipsync worker`, their ffmpeg.

The fault tests run ClipSync as an operator does (`tests/browser.py`'s `LiveServer`
for `clipsync serve`, `Worker` here for `clipsync worker`), talk to it over HTTP,
and kill its processes with real signals. What they observe comes from outside the
processes: the API, the database file, the logs and `/proc`.

Settings are shortened so that a test takes seconds (`fast_jobs_toml`): a heartbeat
every second, leases and consumers gone after four, the reaper every second, one
small rendition.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from browser import LiveServer
from clients import PASSWORD
from services import find_binary

T = TypeVar("T")

#: How long a test waits for something that should happen within seconds.
PATIENCE = 90.0
#: What `clipsync worker` logs once its consumer runs.
STARTED = "job consumer started"
_POLL = 0.05


def fast_jobs_toml(*, queue: str = "", transcoder: str = "") -> str:
    """Config for a fault test: quick heartbeats, leases and reaper; one small rendition."""
    return (
        "[queue]\n"
        "heartbeat_seconds = 1\n"
        "lease_expiry_seconds = 4\n"
        "reaper_interval_seconds = 1\n"
        f"{queue}\n"
        "[transcoder]\n"
        'backend = "cpu"\n'
        "max_concurrent = 1\n"
        "retry_delay_seconds = 1\n"
        "ladder = [{ height = 144, bitrate = 150 }]\n"
        f"{transcoder}\n"
    )


def wait_for(what: str, check: Callable[[], T | None], timeout: float = PATIENCE) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:g}s")
        time.sleep(_POLL)


# --- processes ------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def in_server_consumers(server: LiveServer) -> list[int]:
    """Live job consumer processes of `clipsync serve`.

    Found by what Sanic's manager puts in the environment of each process it starts
    (SANIC_WORKER_NAME), so they are told apart from the web workers, which run the
    same command line, without relying on anything of ClipSync's own.
    """
    group = server.pid
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) != group or fields[0] == "Z":
                continue
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if any(v.startswith(b"SANIC_WORKER_NAME=Sanic-JobConsumer") for v in environ):
            found.append(int(stat.parent.name))
    return found


def one_consumer(server: LiveServer) -> int:
    """The pid of the one live consumer under `clipsync serve`, waiting for it to start."""
    consumers = wait_for(
        "the job consumer under clipsync serve", lambda: in_server_consumers(server)
    )
    assert len(consumers) == 1, consumers
    return consumers[0]


def ffmpeg_pids(marker: str) -> list[int]:
    """Live ffmpeg processes whose command line mentions `marker` (a video's id)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"ffmpeg") and marker.encode() in b" ".join(argv):
            pid = int(cmdline.parent.name)
            if alive(pid):
                pids.append(pid)
    return pids


@dataclass
class FfmpegWatch:
    """Samples the ffmpeg processes of one video in a thread, to see if two ever overlap."""

    marker: str
    seen: set[int] = field(default_factory=set)
    most_at_once: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> FfmpegWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            pids = ffmpeg_pids(self.marker)
            self.seen.update(pids)
            self.most_at_once = max(self.most_at_once, len(pids))


def freeze(pid: int) -> None:
    """SIGSTOP: the process stays exactly where it is until it gets SIGKILL (or SIGCONT).

    A frozen ffmpeg never finishes on its own, so whether it outlives its consumer
    shows however fast the machine is.
    """
    os.kill(pid, signal.SIGSTOP)


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Worker:
    """`clipsync worker` on a `LiveServer`'s config, in a process group of its own."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self._setpriv = find_binary("setpriv", "util-linux")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.server.workdir / "worker.log"

    def start(self) -> Worker:
        """Start it and wait until its consumer says it started."""
        assert self.process is None or self.process.poll() is not None
        before = self._starts()
        if not self.server.config_path.exists():
            self.server.write_config()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self._setpriv), "--pdeathsig", "KILL", "--",
                    sys.executable, "-m", "clipsync",
                    "--config", str(self.server.config_path), "worker",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.server.workdir,
                env={
                    **{k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")},
                    "PYTHONUNBUFFERED": "1",
                },
                start_new_session=True,
            )  # fmt: skip
        process = self.process
        wait_for(
            "clipsync worker's consumer to start",
            lambda: self._exited(process) or self._starts() > before,
        )
        return self

    def _starts(self) -> int:
        try:
            return self.log_path.read_text(errors="replace").count(STARTED)
        except FileNotFoundError:
            return 0

    def _exited(self, process: subprocess.Popen[bytes]) -> bool:
        if process.poll() is not None:
            raise AssertionError(f"clipsync worker exited with {process.returncode}:\n{self.log()}")
        return False

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = PATIENCE) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"


# --- the API and the database -----------------------------------------------------------


class Api:
    """A signed-in user of a live ClipSync, over HTTP."""

    def __init__(self, server: LiveServer, email: str = "faults@example.org") -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url, timeout=30)
        answer = self.http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
        assert answer.status_code == 201, answer.text
        self.http.headers["Authorization"] = f"Bearer {answer.json()['token']}"

    def close(self) -> None:
        self.http.close()

    def upload(self, clip: Path) -> str:
        with clip.open("rb") as fh:
            answer = self.http.post(
                "/api/videos/upload-local", files={"file": (clip.name, fh, "video/mp4")}
            )
        assert answer.status_code == 201, answer.text
        return answer.json()["videoId"]

    def register(self, video_id: str) -> httpx.Response:
        return self.http.post(
            "/api/videos/register", json={"videoId": video_id, "title": "Fault test"}
        )

    def upload_and_register(self, clip: Path) -> str:
        video_id = self.upload(clip)
        answer = self.register(video_id)
        assert answer.status_code == 201, answer.text
        return video_id

    def video(self, video_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/api/videos/{video_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()["video"]

    def wait_until_ready(self, video_id: str, timeout: float = PATIENCE) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            video = self.video(video_id)
            assert video["status"] not in ("FAILED", "REJECTED"), video
            return video if video["status"] == "READY" else None

        try:
            return wait_for(f"video {video_id} to be READY", ready, timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}{self.server.log_tail()}") from None

    def health(self) -> httpx.Response:
        return self.http.get("/healthz")


def database_row(data_dir: Path, video_id: str) -> dict[str, Any] | None:
    """The video's row, read straight from the SQLite file."""
    with contextlib.closing(sqlite3.connect(data_dir / "clipsync.sqlite3", timeout=10)) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM videos WHERE id = ?", (video_id,)).fetchone()
    return dict(row) if row else None


@contextlib.contextmanager
def running(server: LiveServer) -> Iterator[LiveServer]:
    """Start `server`, and stop it (and anything of its group) afterwards."""
    try:
        yield server.start()
    finally:
        server.stop()


class Timeline:
    """Moments of a fault test, printed at its end for docs/operations.md."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.start = time.monotonic()
        self.marks: list[tuple[str, float]] = []

    def mark(self, what: str) -> float:
        now = time.monotonic()
        self.marks.append((what, now))
        return now

    def since(self, what: str) -> float:
        moment = next(t for name, t in self.marks if name == what)
        return time.monotonic() - moment

    def between(self, first: str, last: str) -> float:
        times = dict(self.marks)
        return times[last] - times[first]

    def report(self, **figures: float) -> None:
        text = ", ".join(f"{k}={v:.1f}s" for k, v in figures.items())
        print(f"\n[fault-timing] {self.name}: {text}")
