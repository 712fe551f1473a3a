"""How fast a resumable (tus) upload is next to a raw upload of the same bytes, and its memory.

Run it with `.venv/bin/python bench/upload.py` (a few minutes; `--size-mib 256` for a
quick look). In a temporary folder it writes a 1 GiB file (one random MiB repeated,
named `.mp4`: nothing probes it), then for each storage mode starts a real
`clipsync serve` (`LiveServer` from `tests/browser.py`), registers a user, makes a
1 MiB warm-up tus upload, and measures:

- local storage: the raw upload is the same file streamed to the existing
  `POST /api/videos/upload-local` (multipart/form-data, 1 MiB chunks from a
  generator), the way bytes reached local storage before tus; the tus upload is
  `POST /api/uploads/` and then one PATCH carrying the whole file, as tus-js-client
  sends it by default (a lean httpx client, 1 MiB chunks from a generator);
- S3 storage (moto's server, `S3Server` from `tests/services.py`, signatures
  enforced): the raw upload is the minio SDK's `fput_object` of the same file
  straight to the endpoint (16 MiB parts, the plugin's default `part_size`, as the
  server uses); the tus upload is as above, through ClipSync to the same bucket.

Each upload is timed from its first request to its last answer (for tus: creation
and the PATCH, until the video row exists), and the stored object's size is checked.
Memory: the RSS of the Sanic worker(s), sampled every 50 ms (see `upload_local.py`);
growth is the peak during the tus upload minus the value just before it.

Targets: tus / raw >= 0.7 for each mode, and worker growth < 100 MB (10^6 bytes).
Exits 1 only when something failed to run.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
sys.path.insert(0, str(BENCH))
from browser import LiveServer, LiveServerError  # noqa: E402
from clients import PASSWORD, bearer  # noqa: E402
from services import S3Server  # noqa: E402
from upload_local import (  # noqa: E402
    MB,
    MIB,
    BenchFailed,
    Sampler,
    make_file,
    sanic_workers,
    serve_pid,
    upload,
)

TARGET_RATIO = 0.7
TARGET_GROWTH = 100 * MB
PART_SIZE = 16 * MIB
TUS = {"Tus-Resumable": "1.0.0"}


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while block := fh.read(MIB):
            yield block


def tus_upload(http: httpx.Client, token: str, path: Path) -> str:
    """Create a tus upload and send the whole file in one PATCH; return its id."""
    name = base64.b64encode(path.name.encode()).decode()
    headers = {**TUS, **bearer(token)}
    size = path.stat().st_size
    created = http.post(
        "/api/uploads/",
        headers={**headers, "Upload-Length": str(size), "Upload-Metadata": f"filename {name}"},
    )
    if created.status_code != 201:
        raise BenchFailed(f"tus creation answered {created.status_code}: {created.text[:300]}")
    location = created.headers["location"]
    patched = http.patch(
        location,
        content=file_chunks(path),
        headers={
            **headers,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
            "Content-Length": str(size),
        },
    )
    if patched.status_code != 204 or patched.headers.get("upload-offset") != str(size):
        raise BenchFailed(f"tus PATCH answered {patched.status_code}: {patched.text[:300]}")
    return location.rsplit("/", 1)[1]


def timed(action) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def sign_up(http: httpx.Client) -> str:
    response = http.post(
        "/api/auth/register", json={"email": "bench@example.org", "password": PASSWORD}
    )
    if response.status_code != 201:
        raise BenchFailed(f"registration answered {response.status_code}: {response.text[:300]}")
    return response.json()["token"]


def s3_toml(s3: S3Server, bucket: str) -> str:
    return (
        '[storage]\nbackend = "s3"\n[plugins.storage_s3]\n'
        f'endpoint = "{s3.endpoint}"\nbucket = "{bucket}"\nregion = "{s3.region}"\n'
        f'access_key = "{s3.access_key}"\nsecret_key = "{s3.secret_key}"\n'
        f"secure = false\npart_size = {PART_SIZE}\n"
    )


def minio_client(s3: S3Server):
    from minio import Minio

    return Minio(
        s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        secure=False,
        region=s3.region,
    )


def measure(mode: str, folder: Path, big: Path, small: Path, s3: S3Server | None) -> dict:
    size = big.stat().st_size
    extra = f"[uploads]\nmax_size = {max(size, 2 * 1024**3)}\n"
    bucket = "bench-upload"
    if mode == "s3":
        assert s3 is not None
        extra += s3_toml(s3, bucket)
    server = LiveServer(folder / f"live-{mode}", extra)
    try:
        server.start()
    except LiveServerError as error:
        raise BenchFailed(str(error)) from error
    try:
        with httpx.Client(base_url=server.base_url, timeout=600) as http:
            token = sign_up(http)
            tus_upload(http, token, small)  # warm-up: first requests, imports, the bucket
            workers = sanic_workers(serve_pid(server))

            if mode == "local":
                raw_seconds, _ = timed(lambda: upload(http, token, big))
            else:
                client = minio_client(s3)
                raw_seconds, _ = timed(
                    lambda: client.fput_object(bucket, "raw/big.mp4", str(big), part_size=PART_SIZE)
                )
                client.remove_object(bucket, "raw/big.mp4")

            with Sampler({"worker": workers}) as sampler:
                tus_seconds, video_id = timed(lambda: tus_upload(http, token, big))
            video = http.get(f"/api/videos/{video_id}", headers=bearer(token)).json()["video"]
            if video.get("size") != size:
                raise BenchFailed(f"the tus upload stored {video.get('size')} bytes, not {size}")
    finally:
        server.stop()
    growth = sampler.peaks["worker"] - sampler.before["worker"]
    return {
        "raw": size / raw_seconds / MB,
        "tus": size / tus_seconds / MB,
        "ratio": raw_seconds / tus_seconds,
        "growth": growth,
        "before": sampler.before["worker"],
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--mode", choices=["local", "s3", "both"], default="both")
    args = parser.parse_args()
    modes = ["local", "s3"] if args.mode == "both" else [args.mode]
    with tempfile.TemporaryDirectory(prefix="clipsync-bench-upload-") as tmp:
        folder = Path(tmp)
        big, small = folder / "big.mp4", folder / "small.mp4"
        make_file(big, args.size_mib * MIB)
        make_file(small, MIB)
        results = {}
        try:
            s3 = S3Server().start() if "s3" in modes else None
            try:
                for mode in modes:
                    results[mode] = measure(mode, folder, big, small, s3)
            finally:
                if s3 is not None:
                    s3.stop()
        except BenchFailed as error:
            print(f"FAILED: {error}", file=sys.stderr)
            return 1
    print(f"tus upload of {args.size_mib} MiB against a raw upload of the same bytes")
    for mode, r in results.items():
        print(
            f"  {mode:5}  raw {r['raw']:7.1f} MB/s  tus {r['tus']:7.1f} MB/s  "
            f"tus/raw {r['ratio']:.2f} (target >= {TARGET_RATIO}): {verdict(r['ratio'] >= 0.7)}"
        )
        print(
            f"         worker RSS {r['before'] / MB:.0f} MB before, grew {r['growth'] / MB:.1f} MB "
            f"(target < {TARGET_GROWTH / MB:.0f} MB): {verdict(r['growth'] < TARGET_GROWTH)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
