"""The `s3` storage plugin against a real S3 endpoint (moto's server, signatures enforced)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import clipsync_storage_s3 as s3
import httpx
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from clients import register, upload, upload_and_register
from clips import make_clip
from services import S3Server, free_port

from clipsync.backends import Availability, BackendContext
from clipsync.models import Video, VideoStatus
from clipsync.settings import Secret, Settings

MiB = 1024 * 1024
SettingsFactory = Callable[..., Settings]
AppFactory = Callable[..., Awaitable[tuple[Any, httpx.AsyncClient]]]


# --- helpers ------------------------------------------------------------------------------


def new_bucket() -> str:
    return f"test-{uuid.uuid4().hex[:16]}"


def s3_config(server: S3Server, bucket: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "endpoint": server.endpoint,
        "bucket": bucket,
        "region": server.region,
        "access_key": Secret(server.access_key),
        "secret_key": Secret(server.secret_key),
        "secure": False,
        "prefix": "clipsync/",
    }
    values.update(overrides)
    return s3.S3Settings(**values)


def probe(config: Any, tmp_path: Path, settings: Settings) -> Availability:
    return s3.S3Storage.probe(BackendContext(settings=settings, config=config))


def boto(server: S3Server) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
    )


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


@pytest.fixture
def base_settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
def storage(s3_server: S3Server, tmp_path: Path, base_settings: Settings) -> Any:
    """A backend on a fresh bucket (created by its probe), 5 MiB parts, prefix `clipsync/`."""
    config = s3_config(s3_server, new_bucket(), part_size=5 * MiB)
    assert probe(config, tmp_path, base_settings).ok
    return s3.S3Storage(config, tmp_path / "scratch")


# --- the storage contract ------------------------------------------------------------------


async def test_contract_round_trip(storage: Any, s3_server: S3Server, tmp_path: Path) -> None:
    data = os.urandom(12 * MiB + 12345)
    key = "videos/v1/source.mp4"

    # A multi-part stream in small chunks: 3 parts of 5, 5 and ~2 MiB.
    written = await storage.put_stream(key, chunked(data, 64 * 1024), "video/mp4")
    assert written == len(data)
    assert await storage.size(key) == len(data)
    stat = storage.client.stat_object(storage.bucket, "clipsync/" + key)
    assert stat.content_type == "video/mp4"
    assert stat.etag.endswith("-3"), "a stream of 12 MiB in 5 MiB parts is a 3-part upload"
    assert hashlib.sha256(await collect(storage.read(key))).digest() == (
        hashlib.sha256(data).digest()
    )

    # Byte ranges: `end` is inclusive; a part boundary is crossed.
    assert await collect(storage.read(key, 0, 0)) == data[:1]
    assert (
        await collect(storage.read(key, 5 * MiB - 3, 5 * MiB + 3))
        == (data[5 * MiB - 3 : 5 * MiB + 4])
    )
    assert await collect(storage.read(key, len(data) - 10)) == data[-10:]
    assert await collect(storage.read(key, 100, 2 * MiB + 7)) == data[100 : 2 * MiB + 8]

    # put_file, with its content type.
    playlist = tmp_path / "master.m3u8"
    playlist.write_text("#EXTM3U\n")
    await storage.put_file("videos/v1/hls/master.m3u8", playlist, "application/vnd.apple.mpegurl")
    await storage.put_file("videos/v1/hls/360p/seg_001.m4s", playlist)
    await storage.put_stream("videos/v10/source.mp4", chunked(b"other video", 4))
    assert await collect(storage.read("videos/v1/hls/master.m3u8")) == b"#EXTM3U\n"
    stat = storage.client.stat_object(storage.bucket, "clipsync/videos/v1/hls/master.m3u8")
    assert stat.content_type == "application/vnd.apple.mpegurl"

    # list: keys without the configured prefix, sorted; a sibling `v10` is not under `v1`.
    assert await storage.list("videos/v1") == [
        "videos/v1/hls/360p/seg_001.m4s",
        "videos/v1/hls/master.m3u8",
        "videos/v1/source.mp4",
    ]
    assert await storage.list("videos/v1/hls/master.m3u8") == ["videos/v1/hls/master.m3u8"]
    assert await storage.list("videos/none") == []
    raw = sorted(o.object_name for o in storage.client.list_objects(storage.bucket, recursive=True))
    assert all(name.startswith("clipsync/videos/") for name in raw)

    # open_local: a scratch copy that is gone afterwards, even after an error.
    async with storage.open_local(key) as local:
        assert local.parent == tmp_path / "scratch" and local.suffix == ".mp4"
        assert local.read_bytes() == data
    assert not local.exists()
    with pytest.raises(RuntimeError):
        async with storage.open_local("videos/v1/hls/master.m3u8") as local:
            assert local.exists()
            raise RuntimeError("ffprobe failed")
    assert not local.exists()
    assert list((tmp_path / "scratch").iterdir()) == []
    with pytest.raises(FileNotFoundError):
        async with storage.open_local("videos/v1/missing.mp4"):
            pass
    assert list((tmp_path / "scratch").iterdir()) == []
    # Downloads a killed process left behind go after a day; nothing else is touched.
    scratch = tmp_path / "scratch"
    left, recent, other = (
        scratch / "download-0a1b.mp4",
        scratch / "download-2c3d.mp4",
        scratch / "notes.txt",
    )
    for path in (left, recent, other):
        path.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 86400
    os.utime(left, (two_days_ago, two_days_ago))
    os.utime(other, (two_days_ago, two_days_ago))
    assert storage.sweep_scratch() == 1
    assert sorted(p.name for p in scratch.iterdir()) == [recent.name, other.name]

    # delete_prefix counts what it deleted and leaves siblings alone.
    assert await storage.delete_prefix("videos/v1") == 3
    assert await storage.list("videos/v1") == []
    assert await storage.size(key) is None
    assert await storage.list("videos/v10") == ["videos/v10/source.mp4"]
    assert await storage.delete_prefix("videos/v1") == 0
    with pytest.raises(FileNotFoundError):
        await collect(storage.read(key))


async def test_a_small_and_an_empty_stream(storage: Any) -> None:
    assert await storage.put_stream("videos/a/one.bin", chunked(b"x" * 1000, 7)) == 1000
    assert await collect(storage.read("videos/a/one.bin")) == b"x" * 1000
    assert await storage.put_stream("videos/a/empty.bin", chunked(b"", 7)) == 0
    assert await storage.size("videos/a/empty.bin") == 0


async def test_a_failed_stream_leaves_nothing_behind(storage: Any, s3_server: S3Server) -> None:
    class TooLarge(Exception):
        pass

    async def failing() -> AsyncIterator[bytes]:
        async for chunk in chunked(os.urandom(7 * MiB), 256 * 1024):
            yield chunk
        raise TooLarge("the upload is over the limit")

    with pytest.raises(TooLarge):
        await storage.put_stream("videos/b/source.mp4", failing())
    assert await storage.size("videos/b/source.mp4") is None
    # The multipart upload that had one part stored was aborted.
    uploads = boto(s3_server).list_multipart_uploads(Bucket=storage.bucket)
    assert uploads.get("Uploads", []) == []


@pytest.mark.parametrize("key", ["", "../etc/passwd", "/abs", "a//b", "videos/../x", ".hidden"])
async def test_keys_outside_the_key_rules_are_refused(storage: Any, key: str) -> None:
    with pytest.raises(ValueError):
        await storage.put_stream(key, chunked(b"x", 1))
    with pytest.raises(ValueError):
        await storage.size(key)
    with pytest.raises(ValueError):
        await collect(storage.read(key))
    with pytest.raises(ValueError):
        await storage.list(key)
    with pytest.raises(ValueError):
        await storage.delete_prefix(key)
    with pytest.raises(ValueError):
        storage.presigned_get(key, 60)


# --- the probe ---------------------------------------------------------------------------


def test_probe_creates_a_missing_bucket(
    s3_server: S3Server, tmp_path: Path, base_settings: Settings
) -> None:
    bucket = new_bucket()
    config = s3_config(s3_server, bucket)
    first = probe(config, tmp_path, base_settings)
    assert first.ok and "created" in first.reason and bucket in first.reason
    assert boto(s3_server).head_bucket(Bucket=bucket)
    again = probe(config, tmp_path, base_settings)
    assert again.ok and "created" not in again.reason
    # The probe cleans up after itself.
    assert boto(s3_server).list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_probe_says_when_the_endpoint_is_unreachable(
    s3_server: S3Server, tmp_path: Path, base_settings: Settings
) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = probe(s3_config(s3_server, new_bucket(), endpoint=endpoint), tmp_path, base_settings)
    assert not result.ok
    assert f"cannot reach the S3 endpoint {endpoint}" in result.reason
    assert "refused" in result.reason.lower()
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("which", ["secret", "access"])
def test_probe_says_when_the_keys_are_wrong(
    s3_server: S3Server, tmp_path: Path, base_settings: Settings, which: str
) -> None:
    wrong = Secret("wrong-" + uuid.uuid4().hex)
    field = "secret_key" if which == "secret" else "access_key"
    result = probe(s3_config(s3_server, new_bucket(), **{field: wrong}), tmp_path, base_settings)
    assert not result.ok
    assert "the access key or secret key is wrong" in result.reason
    for secret in (wrong.reveal(), s3_server.secret_key, s3_server.access_key):
        assert secret not in result.reason


def test_probe_says_when_the_key_lacks_permission(
    s3_server: S3Server, tmp_path: Path, base_settings: Settings
) -> None:
    config = s3_config(
        s3_server,
        new_bucket(),
        access_key=Secret(s3_server.denied_access_key),
        secret_key=Secret(s3_server.denied_secret_key),
    )
    result = probe(config, tmp_path, base_settings)
    assert not result.ok
    assert "AccessDenied" in result.reason and config.bucket in result.reason
    assert s3_server.denied_access_key not in result.reason


def test_probe_wants_keys(s3_server: S3Server, tmp_path: Path, base_settings: Settings) -> None:
    config = s3_config(s3_server, new_bucket(), secret_key=Secret())
    result = probe(config, tmp_path, base_settings)
    assert not result.ok and "secret_key" in result.reason


# --- presigned URLs --------------------------------------------------------------------------
#
# moto 5.2 does not check a presigned URL's signature or expiry, and with signatures
# enforced it answers presigned requests with HTTP 500. So presigned URLs are fetched
# from a second, open moto server (they must really work against an S3 endpoint), and
# their signature and expiry are checked the way S3 and MinIO check them, by botocore's
# independent SigV4 implementation (`verify_presigned`).


@pytest.fixture(scope="module")
def open_s3_server() -> Iterator[S3Server]:
    with S3Server(enforce_auth=False) as server:
        yield server


@pytest.fixture
def open_storage(open_s3_server: S3Server, tmp_path: Path, base_settings: Settings) -> Any:
    config = s3_config(open_s3_server, new_bucket())
    assert probe(config, tmp_path, base_settings).ok
    return s3.S3Storage(config, tmp_path / "scratch")


def verify_presigned(
    url: str, secret_key: str, method: str, headers: dict[str, str] | None = None
) -> str:
    """Check a SigV4 presigned URL as S3 would: "ok", "expired" or "signature mismatch"."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    given = query.pop("X-Amz-Signature")
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if datetime.now(UTC) > signed_at + timedelta(seconds=int(query["X-Amz-Expires"])):
        return "expired"
    access_key, _day, region, service, _ = query["X-Amz-Credential"].split("/")
    request_headers = {"host": parts.netloc, **(headers or {})}
    names = query["X-Amz-SignedHeaders"].split(";")
    request = AWSRequest(
        method=method,
        url=urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), "")),
        headers={name: request_headers.get(name, "") for name in names},
    )
    request.context["timestamp"] = query["X-Amz-Date"]
    signer = S3SigV4QueryAuth(Credentials(access_key, secret_key), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return "ok" if hmac.compare_digest(expected, given) else "signature mismatch"


async def test_presigned_get_works_and_unsigned_reads_are_refused(
    open_storage: Any, storage: Any
) -> None:
    key = "videos/c/hls/360p/seg_001.m4s"
    await open_storage.put_stream(key, chunked(b"segment bytes", 5), "video/iso.segment")
    await storage.put_stream(key, chunked(b"segment bytes", 5), "video/iso.segment")
    async with httpx.AsyncClient(trust_env=False) as http:
        url = open_storage.presigned_get(key, 60)
        response = await http.get(url)
        assert response.status_code == 200 and response.content == b"segment bytes"
        # Nothing stored is public by path: the object, unsigned, is refused.
        for backend in (open_storage, storage):
            unsigned = backend.presigned_get(key, 60).split("?", 1)[0]
            assert unsigned.endswith(f"/{backend.bucket}/clipsync/{key}")
            assert (await http.get(unsigned)).status_code == 403

    url = storage.presigned_get(key, 3600)
    assert "X-Amz-Expires=3600" in url
    assert verify_presigned(url, s3_server_secret(storage), "GET") == "ok"
    assert verify_presigned(url, "not-the-secret", "GET") == "signature mismatch"
    tampered = url.replace("seg_001", "seg_002")
    assert verify_presigned(tampered, s3_server_secret(storage), "GET") == "signature mismatch"
    with pytest.raises(ValueError):
        storage.presigned_get(key, expires=8 * 24 * 3600)


async def test_an_expired_presigned_url_is_refused(storage: Any) -> None:
    short = storage.presigned_get("videos/c/source.mp4", expires=1)
    assert "X-Amz-Expires=1&" in short or short.endswith("X-Amz-Expires=1")
    assert verify_presigned(short, s3_server_secret(storage), "GET") == "ok"
    await asyncio.sleep(2.1)
    assert verify_presigned(short, s3_server_secret(storage), "GET") == "expired"


async def test_presigned_put_lets_a_client_upload(open_storage: Any) -> None:
    secret = s3_server_secret(open_storage)
    async with httpx.AsyncClient(trust_env=False) as http:
        url = open_storage.presigned_put("videos/d/source.mp4", 600)
        assert verify_presigned(url, secret, "PUT") == "ok"
        response = await http.put(url, content=b"direct upload")
        assert response.status_code == 200, response.text
        assert await collect(open_storage.read("videos/d/source.mp4")) == b"direct upload"

        # With a content type, the signature covers the Content-Type header.
        typed = open_storage.presigned_put("videos/e/source.mp4", 600, content_type="video/mp4")
        assert "X-Amz-SignedHeaders=content-type%3Bhost" in typed
        assert verify_presigned(typed, secret, "PUT", {"content-type": "video/mp4"}) == "ok"
        assert verify_presigned(typed, secret, "PUT", {"content-type": "text/html"}) == (
            "signature mismatch"
        )
        assert verify_presigned(typed, secret, "GET", {"content-type": "video/mp4"}) == (
            "signature mismatch"
        )
        response = await http.put(typed, content=b"typed", headers={"Content-Type": "video/mp4"})
        assert response.status_code == 200, response.text
    stat = open_storage.client.stat_object(open_storage.bucket, "clipsync/videos/e/source.mp4")
    assert stat.content_type == "video/mp4"
    assert await collect(open_storage.read("videos/e/source.mp4")) == b"typed"


def s3_server_secret(storage: Any) -> str:
    return storage.config.secret_key.reveal()


# --- the real app ---------------------------------------------------------------------------


async def test_the_app_stores_uploads_in_the_bucket(
    s3_server: S3Server,
    make_settings: SettingsFactory,
    migrated_sqlite: Path,
    start_app: AppFactory,
) -> None:
    bucket = new_bucket()
    settings = make_settings(
        storage={"backend": "s3"},
        plugins={"storage_s3": s3_server.plugin_table(bucket=bucket, prefix="media")},
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    app, client = await start_app(settings)

    selection = app.ctx.backends.selections["storage"]
    assert selection.chosen.name == "s3" and selection.reason == "named in the configuration"
    assert "created" in selection.probes["s3"].reason
    for value in (s3_server.access_key, s3_server.secret_key):
        assert value not in str(app.ctx.backends.describe())

    token = (await register(client, "s3@example.org"))["token"]
    clip = make_clip("landscape")
    uploaded = await upload(client, token, clip)
    assert uploaded.status_code == 201, uploaded.text
    video = await Video.get(id=uploaded.json()["videoId"])
    assert video.source_key == f"videos/{video.id}/source.mp4"
    stored = app.ctx.backends.storage.client.get_object(bucket, f"media/{video.source_key}")
    try:
        assert stored.read() == clip.read_bytes()
    finally:
        stored.close()
        stored.release_conn()

    # Registering probes the source through open_local (a scratch copy, then removed).
    registered = await upload_and_register(client, token, clip, title="From the bucket")
    assert registered.status_code == 201, registered.text
    video = await Video.get(id=registered.json()["video"]["id"])
    assert video.status == VideoStatus.PROCESSING
    assert (video.width, video.height) == (640, 360)
    scratch = settings.data_dir / "scratch"
    assert not scratch.exists() or list(scratch.iterdir()) == []


async def test_a_stream_is_uploaded_in_bounded_memory(storage: Any) -> None:
    """40 MiB through 5 MiB parts never holds much more than a few parts at once."""
    import tracemalloc

    async def generated() -> AsyncIterator[bytes]:
        for _ in range(40 * 4):
            yield os.urandom(256 * 1024)

    tracemalloc.start()
    try:
        written = await storage.put_stream("videos/big/source.mp4", generated())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == 40 * MiB
    assert await storage.size("videos/big/source.mp4") == 40 * MiB
    assert peak < 30 * MiB, f"peak {peak / MiB:.1f} MiB for a 40 MiB stream"
