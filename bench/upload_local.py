"""How much memory the server needs to receive a large upload, and how fast it takes it.

Run it with `.venv/bin/python bench/upload_local.py` (under a minute; `--size-gib 2` for
the 2 GiB of the requirement). In a temporary folder it writes a 1 GiB file (one random
MiB repeated; it need not be a video, as the upload stores the bytes before anything
probes them), starts a real `clipsync serve` with `tests/browser.py`'s `LiveServer`
(`[uploads] max_size` raised to fit), registers a user through the API, makes one 1 MiB
warm-up upload, then uploads the big file to `POST /api/videos/upload-local` as
multipart/form-data. The client streams the body from a generator (multipart framing
and 1 MiB chunks of the file), so it never holds the file in memory either.

Memory: a thread reads VmRSS from /proc/<pid>/status every 50 ms for the Sanic worker
(the child of `clipsync serve` started with SANIC_WORKER_NAME=Sanic-Server-*), for all
of the server's processes together, and for this client. Growth is the peak during the
upload minus the value just before it. The worker's VmHWM (the kernel's own peak,
reset through /proc/<pid>/clear_refs before the upload) is printed beside it, as a
check that sampling missed no short peak.

Speed: the upload's throughput next to `shutil.copyfileobj` copying the same file into
the server's data folder (same disk, no fsync in either; the faster of one copy before
and one after the upload), as a ratio.

Target: the worker grows by less than 100 MB (10^6 bytes) during the upload. Exits 1
only when something failed to run (the server, the upload, or a stored size mismatch).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import LiveServer, LiveServerError
from clients import PASSWORD, bearer

MB = 1_000_000
MIB = 1024 * 1024
TARGET_GROWTH = 100 * MB
SAMPLE_SECONDS = 0.05


class BenchFailed(Exception):
    """Something could not be run; the message says what."""


# --- processes and their memory -------------------------------------------------------------


def status(pid: int) -> dict[str, int]:
    """The memory lines of /proc/<pid>/status, in bytes ({} once the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "PPid"):
            number = int(value.split()[0])
            values[name] = number if name == "PPid" else number * 1024
    return values


def serve_pid(server: LiveServer) -> int:
    """The pid of this server's `clipsync serve` (its Sanic main process)."""
    wanted = ["--config", str(server.config_path), "serve"]
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except (OSError, UnicodeDecodeError):
            continue
        if any(argv[i : i + 3] == wanted for i in range(len(argv))):
            return int(entry.name)
    raise BenchFailed(f"no clipsync serve process runs with {server.config_path}")


def children(parent: int) -> list[int]:
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and status(int(entry.name)).get("PPid") == parent
    ]


def sanic_workers(server_pid: int) -> list[int]:
    """Children of `clipsync serve` that Sanic started as request workers."""
    workers = []
    for pid in children(server_pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(b"SANIC_WORKER_NAME=Sanic-Server-") for v in environ):
            workers.append(pid)
    return workers


def reset_peak(pid: int) -> bool:
    """Reset the kernel's VmHWM of `pid` to its current RSS (Linux 4.0+)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Sampler:
    """Samples the RSS of named groups of processes in a thread; keeps each group's peak."""

    groups: dict[str, list[int]]
    before: dict[str, int] = field(default_factory=dict)
    peaks: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def now(self) -> dict[str, int]:
        return {
            name: sum(status(pid).get("VmRSS", 0) for pid in pids)
            for name, pids in self.groups.items()
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, value in self.now().items():
                self.peaks[name] = max(self.peaks.get(name, 0), value)
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> Sampler:
        self.before = self.now()
        self.peaks = dict(self.before)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for name, value in self.now().items():
            self.peaks[name] = max(self.peaks[name], value)


# --- the upload ---------------------------------------------------------------------------


def make_file(path: Path, size: int) -> None:
    """`size` bytes (a whole number of MiB): one random MiB, written over and over."""
    block = os.urandom(MIB)
    with path.open("wb") as fh:
        for _ in range(size // MIB):
            fh.write(block)


def multipart(path: Path, boundary: str) -> tuple[int, Iterator[bytes]]:
    """The length and the chunks of a form with the file in field `file`, read as sent."""
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        with path.open("rb") as fh:
            while block := fh.read(MIB):
                yield block
        yield tail

    return len(head) + path.stat().st_size + len(tail), chunks()


def upload(http: httpx.Client, token: str, path: Path) -> str:
    """Stream `path` to the upload endpoint; return the new video's id."""
    boundary = uuid.uuid4().hex
    length, body = multipart(path, boundary)
    response = http.post(
        "/api/videos/upload-local",
        content=body,
        headers={
            **bearer(token),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(length),
        },
    )
    if response.status_code != 201:
        raise BenchFailed(f"upload answered {response.status_code}: {response.text[:300]}")
    return str(response.json()["videoId"])


def raw_copy(source: Path, target: Path) -> float:
    """Seconds to copy `source` to `target` with 1 MiB reads and writes; the copy is deleted."""
    started = time.perf_counter()
    with source.open("rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst, MIB)
    seconds = time.perf_counter() - started
    target.unlink()
    os.sync()
    return seconds


def stored_source(data_dir: Path, video_id: str) -> Path:
    found = list((data_dir / "media" / "videos" / video_id).glob("source*"))
    if len(found) != 1:
        raise BenchFailed(f"the upload of video {video_id} is not in storage")
    return found[0]


@dataclass
class Results:
    size: int
    copy_seconds: float
    upload_seconds: float
    worker_before: int
    worker_peak: int
    worker_hwm: int | None
    server_before: int
    server_peak: int
    client_before: int
    client_peak: int
    workers: int


def run(tmp: Path, size: int) -> Results:
    source = tmp / "big.mp4"
    warm_up = tmp / "small.mp4"
    print(f"  writing a {size / 2**30:g} GiB file ...", flush=True)
    make_file(source, size)
    make_file(warm_up, MIB)
    os.sync()

    extra = f"[uploads]\nmax_size = {size + MIB}\n"
    server = LiveServer(tmp / "live", extra, startup_timeout=120)
    print("  starting clipsync serve ...", flush=True)
    with server, httpx.Client(base_url=server.base_url, timeout=600) as http:
        print("  copying the file with shutil.copyfileobj ...", flush=True)
        copy_seconds = raw_copy(source, server.data_dir / "raw-copy.bin")

        answer = http.post(
            "/api/auth/register", json={"email": "bench@example.org", "password": PASSWORD}
        )
        if answer.status_code != 201:
            raise BenchFailed(f"registering answered {answer.status_code}: {answer.text[:300]}")
        token = answer.json()["token"]
        stored_source(server.data_dir, upload(http, token, warm_up)).unlink()

        main_pid = serve_pid(server)
        workers = sanic_workers(main_pid)
        if not workers:
            raise BenchFailed(f"no Sanic worker found among the children of {main_pid}")
        everything = [main_pid, *children(main_pid)]
        hwm_reset = all(reset_peak(pid) for pid in workers)
        groups = {"worker": workers, "server": everything, "client": [os.getpid()]}
        print(f"  uploading {size / 2**30:g} GiB ...", flush=True)
        with Sampler(groups) as sampler:
            started = time.perf_counter()
            video_id = upload(http, token, source)
            upload_seconds = time.perf_counter() - started
        hwm = sum(status(pid).get("VmHWM", 0) for pid in workers) if hwm_reset else None

        stored = stored_source(server.data_dir, video_id)
        if stored.stat().st_size != size:
            raise BenchFailed(f"stored {stored.stat().st_size} bytes of {size}")
        stored.unlink()
        os.sync()
        print("  copying the file with shutil.copyfileobj again ...", flush=True)
        copy_seconds = min(copy_seconds, raw_copy(source, server.data_dir / "raw-copy.bin"))
    return Results(
        size=size,
        copy_seconds=copy_seconds,
        upload_seconds=upload_seconds,
        worker_before=sampler.before["worker"],
        worker_peak=sampler.peaks["worker"],
        worker_hwm=hwm,
        server_before=sampler.before["server"],
        server_peak=sampler.peaks["server"],
        client_before=sampler.before["client"],
        client_peak=sampler.peaks["client"],
        workers=len(workers),
    )


def report(r: Results) -> None:
    def mb(value: int) -> str:
        return f"{value / MB:.1f} MB"

    growth = r.worker_peak - r.worker_before
    upload_rate = r.size / r.upload_seconds / MB
    copy_rate = r.size / r.copy_seconds / MB
    print()
    print(
        f"Upload of {r.size / 2**30:g} GiB ({r.size} bytes) to POST /api/videos/upload-local, "
        "streamed multipart"
    )
    print(f"{'memory (RSS, sampled every 50 ms)':<44} {'before':>9} {'peak':>9} {'growth':>9}")
    rows = [
        (
            "Sanic worker" if r.workers == 1 else f"Sanic workers ({r.workers})",
            r.worker_before,
            r.worker_peak,
        ),
        ("whole server (all its processes)", r.server_before, r.server_peak),
        ("client (this script)", r.client_before, r.client_peak),
    ]
    for label, before, peak in rows:
        print(f"{label:<44} {mb(before):>9} {mb(peak):>9} {mb(peak - before):>9}")
    if r.worker_hwm is not None:
        print(f"{'Sanic worker, kernel VmHWM after upload':<44} {'':>9} {mb(r.worker_hwm):>9}")
    print()
    print(f"{'speed':<44} {'seconds':>9} {'MB/s':>9}")
    print(f"{'upload':<44} {r.upload_seconds:9.2f} {upload_rate:9.0f}")
    copy_label = "raw copy (copyfileobj, same disk), best of 2"
    print(f"{copy_label:<44} {r.copy_seconds:9.2f} {copy_rate:9.0f}")
    print()
    print(f"{'result':<44} {'value':>9} {'target':>9}  result")
    verdict = "PASS" if growth < TARGET_GROWTH else "MISS"
    print(f"{'worker RSS growth':<44} {mb(growth):>9} {'< 100 MB':>9}  {verdict}")
    print(f"{'upload / raw copy throughput':<44} {upload_rate / copy_rate:9.2f} {'-':>9}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=int, default=1, help="upload size in GiB (default 1)")
    args = parser.parse_args()
    size = max(1, args.size_gib) * 2**30
    print(f"ClipSync upload benchmark, load average {os.getloadavg()[0]:.1f}")
    try:
        with tempfile.TemporaryDirectory(prefix="clipsync-bench-") as folder:
            results = run(Path(folder), size)
    except (BenchFailed, LiveServerError, httpx.HTTPError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
