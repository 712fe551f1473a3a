"""Segment requests per second: bare nginx, ClipSync alone, and ClipSync behind its front.

Run it with `.venv/bin/python bench/hls.py` (about 2 minutes; `--seconds 5` for less).
It needs Debian's `wrk` and `nginx` (`apt-get install wrk nginx-light`).

A real `clipsync serve` (`LiveServer` from tests/browser.py, local storage) gets a
clip uploaded and transcoded through the API; the first segment of its first
rendition is then replaced on disk by 369 KiB (377,856 bytes) of data, and its
signed URL, as the media playlist handed it out (clipsync/delivery.py), is the URL
every run asks for. `[delivery] segment_url_seconds = 3600` keeps that URL valid for
the whole bench. `wrk -t2 -c<connections> -d<seconds>` asks for it, keep-alive, in:

- *bare nginx*: nginx (1 worker) serving the same file straight from disk, sendfile on;
- *ClipSync, N workers*: the signed URL to ClipSync itself, 1 then 2 workers (the
  signature checked, the file sent with sendfile, no database);
- *ClipSync, session-checked*: the same file by its unsigned URL with a bearer token
  (the token, the session and the visibility rule checked on each request), 1 worker;
- *shipped nginx front*: deploy/nginx/clipsync-front.conf (1 nginx worker) in front
  of ClipSync (1 worker) with `[delivery] accel_redirect_prefix`: ClipSync checks the
  signature and answers `X-Accel-Redirect`, nginx sends the bytes.

Each run first checks one answer (200, the right bytes; from nginx for the front)
and that wrk saw no errors or non-2xx answers. It prints requests/s and latency
(p50, p99) side by side with the machine's load average and the targets of issue 15:
ClipSync alone with 2 workers >= 3,500 req/s; the front >= 0.5 x bare nginx. wrk and
the servers share the machine's cores, as they would on one host. Exits 1 only when
something failed to run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from browser import LiveServer  # noqa: E402
from clients import PASSWORD, bearer  # noqa: E402
from clips import make_clip  # noqa: E402
from nginx_front import NginxServer, file_site, front_site  # noqa: E402
from services import free_port  # noqa: E402

SEGMENT_BYTES = 369 * 1024
BASE_TOML = """
[transcoder]
ladder = [{ height = 144, bitrate = 150 }]
[delivery]
segment_url_seconds = 3600
"""
ACCEL = 'accel_redirect_prefix = "/_clipsync_media/"\n'


class BenchServer(LiveServer):
    """`LiveServer` without the access log (a line per request is not what is measured)."""

    def _command(self, *args: str) -> list[str]:
        return super()._command(*(a for a in args if a != "--access-log"))


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Result:
    label: str
    requests: float
    p50_ms: float
    p99_ms: float


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> Result:
    extra = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failures:\n{out}")

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return Result("", rate, latency("50"), latency("99"))


def check(url: str, expected: bytes, headers: dict[str, str], served_by: str | None) -> None:
    answer = httpx.get(url, headers=headers, trust_env=False, timeout=30)
    if answer.status_code != 200 or answer.content != expected:
        raise RuntimeError(f"{url}: {answer.status_code}, {len(answer.content)} bytes")
    if served_by and answer.headers.get("x-served-by") != served_by:
        raise RuntimeError(f"{url}: not sent by {served_by}: {dict(answer.headers)}")


def configure(server: LiveServer, workers: int, accel: bool) -> None:
    server.extra_toml = BASE_TOML + (ACCEL if accel else "")
    server.write_config()
    text = server.config_path.read_text().replace("[server]\n", f"[server]\nworkers = {workers}\n")
    server.config_path.write_text(text)


def prepare(server: LiveServer) -> tuple[str, str, Path]:
    """(the signed segment path and query, a bearer token, the segment's file)."""
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=60) as http:
        token = http.post(
            "/api/auth/register", json={"email": "bench@example.org", "password": PASSWORD}
        ).json()["token"]
        with make_clip("landscape").open("rb") as fh:
            uploaded = http.post(
                "/api/videos/upload-local",
                files={"file": ("clip.mp4", fh, "video/mp4")},
                headers=bearer(token),
            )
        video_id = uploaded.json()["videoId"]
        http.post(
            "/api/videos/register", json={"videoId": video_id, "title": "Bench"},
            headers=bearer(token),
        ).raise_for_status()  # fmt: skip
        deadline = time.monotonic() + 300
        while http.get(f"/api/videos/{video_id}", headers=bearer(token)).json()["video"][
            "status"
        ] not in ("READY", "FAILED"):
            if time.monotonic() > deadline:
                raise RuntimeError("the clip did not transcode in 5 minutes")
            time.sleep(1)
        master = http.get(f"/hls/{video_id}/master.m3u8", headers=bearer(token)).text
        rendition = next(line for line in master.splitlines() if line.endswith("index.m3u8"))
        folder = rendition.rsplit("/", 1)[0]
        media = http.get(f"/hls/{video_id}/{rendition}", headers=bearer(token)).text
    uri = next(line for line in media.splitlines() if ".m4s?" in line)
    name = uri.split("?", 1)[0]
    segment = server.data_dir / "media" / "videos" / video_id / "hls" / folder / name
    segment.write_bytes(os.urandom(SEGMENT_BYTES))
    return f"/hls/{video_id}/{folder}/{uri}", token, segment


def run(seconds: int, connections: int) -> list[Result]:
    results: list[Result] = []

    def measure(label: str, url: str, headers: dict[str, str] | None = None) -> None:
        say(f"{label}: {url[:100]}")
        result = wrk(url, seconds, connections, headers or {})
        results.append(Result(label, result.requests, result.p50_ms, result.p99_ms))
        say(f"  {result.requests:,.0f} req/s (load average {load()})")

    workdir = Path(tempfile.mkdtemp(prefix="clipsync-bench-hls-"))
    try:
        # A loaded machine can take long to start two workers.
        server = BenchServer(workdir / "site", startup_timeout=180)
        configure(server, 1, accel=False)
        with server:
            path, token, segment = prepare(server)
        data = segment.read_bytes()

        # Bare nginx on the same file.
        port = free_port()
        with NginxServer(file_site(port, segment.parent), port=port) as nginx:
            url = f"{nginx.base_url}/{segment.name}"
            check(url, data, {}, None)
            measure("bare nginx, the file", url)

        for workers in (1, 2):
            configure(server, workers, accel=False)
            with server:
                url = server.url(path)
                check(url, data, {}, None)
                measure(f"ClipSync alone, {workers} worker{'s' if workers > 1 else ''}", url)
                if workers == 1:
                    unsigned = server.url(path.split("?", 1)[0])
                    auth = bearer(token)
                    check(unsigned, data, auth, None)
                    measure("ClipSync alone, 1 worker, session-checked", unsigned, auth)

        configure(server, 1, accel=True)
        with server:
            port = free_port()
            site = front_site(server.port, port, server.data_dir / "media")
            with NginxServer(site, port=port) as nginx:
                url = nginx.base_url + path
                check(url, data, {}, "nginx")
                measure("shipped nginx front (ClipSync 1 worker)", url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def report(results: list[Result], seconds: int, connections: int, before: str) -> None:
    by = {r.label: r for r in results}
    bare = by["bare nginx, the file"].requests
    print(
        f"\nOne {SEGMENT_BYTES // 1024} KiB segment, wrk -t2 -c{connections} -d{seconds}s, "
        f"{os.cpu_count()} cores; load average before {before}, after {load()}\n"
    )
    print("| server | req/s | p50 ms | p99 ms | / bare nginx |")
    print("|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.label} | {r.requests:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.requests / bare:.3f} |"
        )
    alone = by["ClipSync alone, 2 workers"].requests
    front = by["shipped nginx front (ClipSync 1 worker)"].requests
    print()
    print(f"- ClipSync alone, 2 workers: {alone:,.0f} req/s (target >= 3,500): "
          f"{'PASS' if alone >= 3500 else 'MISS'}")  # fmt: skip
    print(f"- front / bare nginx: {front / bare:.2f} (target >= 0.5): "
          f"{'PASS' if front / bare >= 0.5 else 'MISS'}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=50, help="keep-alive (default 50)")
    args = parser.parse_args()
    for program in ("wrk", "nginx"):
        if shutil.which(program) is None and not Path(f"/usr/sbin/{program}").exists():
            say(f"{program} is not installed: apt-get install wrk nginx-light")
            return 1
    before = load()
    try:
        results = run(args.seconds, args.connections)
    except Exception as exc:  # whatever failed to run: say so, exit 1
        say(f"bench/hls.py failed: {exc!r}")
        return 1
    report(results, args.seconds, args.connections, before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
