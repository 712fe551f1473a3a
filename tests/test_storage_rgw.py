"""The `s3` storage plugin against Ceph's radosgw: S3 that checks what AWS checks.

moto (tests/test_storage_s3.py and the other S3 modules) checks neither a presigned
URL's signature nor its expiry, and lets any origin read cross-origin; there,
botocore's verifier stands in for the store. radosgw, a production S3
implementation, checks them all: here a tampered or expired URL, an unsigned read and
a page on another origin are refused by the store itself.

The cluster starts once per session (about 20 s, `rgw_server`), so only what needs
a real store's behaviour runs here. The storage contract tests of the moto module run
here too, unchanged: `s3_server` is radosgw in this module.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import clipsync_storage_s3 as s3
import httpx
import pytest
import test_storage_s3 as moto_suite
from clients import bearer, register
from clips import make_clip
from clipsync_storage_s3 import cors
from services import RadosGwServer
from test_direct_upload import presign, put
from test_s3_playback import FILES, media_uris, people, s3_app, stored_video
from test_storage_s3 import boto, chunked, collect, new_bucket, probe, s3_config

from clipsync import doctor
from clipsync.models import Video, VideoStatus
from clipsync.settings import Secret, Settings

MiB = 1024 * 1024
SITE = "http://clipsync.test"  # the origin of `make_settings`' public_url
ELSEWHERE = "http://elsewhere.test"
SettingsFactory = Callable[..., Settings]


@pytest.fixture
def s3_server(rgw_server: RadosGwServer) -> RadosGwServer:
    """The moto module's tests below take `s3_server`: here it is radosgw."""
    return rgw_server


@pytest.fixture
def base_settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
def storage(rgw_server: RadosGwServer, tmp_path: Path, base_settings: Settings) -> Any:
    """A backend on a fresh bucket (created by its probe), 5 MiB parts, prefix `clipsync/`."""
    config = s3_config(rgw_server, new_bucket(), part_size=5 * MiB)
    assert probe(config, tmp_path, base_settings).ok
    return s3.S3Storage(config, tmp_path / "scratch")


async def fetch(method: str, url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.request(method, url, **kwargs)


def error_code(response: httpx.Response) -> str:
    """The S3 error code of a refusal, e.g. "SignatureDoesNotMatch"."""
    found = re.search(r"<Code>([^<]*)</Code>", response.text)
    return found.group(1) if found else ""


# --- the storage contract, as on moto ------------------------------------------------------

test_contract_round_trip = moto_suite.test_contract_round_trip
test_a_small_and_an_empty_stream = moto_suite.test_a_small_and_an_empty_stream
test_a_failed_stream_leaves_nothing_behind = moto_suite.test_a_failed_stream_leaves_nothing_behind
test_probe_creates_a_missing_bucket = moto_suite.test_probe_creates_a_missing_bucket
test_probe_says_when_the_keys_are_wrong = moto_suite.test_probe_says_when_the_keys_are_wrong


async def test_a_multipart_upload_sent_part_by_part(
    storage: Any, rgw_server: RadosGwServer, tmp_path: Path
) -> None:
    """What resumable uploads use: parts sent one at a time, then joined or dropped."""
    first, last = tmp_path / "part1", tmp_path / "part2"
    first.write_bytes(b"a" * (5 * MiB))
    last.write_bytes(b"the end")
    upload_id = await storage.create_multipart("videos/m/source.mp4", "video/mp4")
    etags = [
        (1, await storage.upload_part("videos/m/source.mp4", upload_id, 1, first)),
        (2, await storage.upload_part("videos/m/source.mp4", upload_id, 2, last)),
    ]
    await storage.complete_multipart("videos/m/source.mp4", upload_id, list(reversed(etags)))
    assert await storage.size("videos/m/source.mp4") == 5 * MiB + 7
    assert (await collect(storage.read("videos/m/source.mp4", 5 * MiB))) == b"the end"

    dropped = await storage.create_multipart("videos/n/source.mp4")
    await storage.upload_part("videos/n/source.mp4", dropped, 1, first)
    await storage.abort_multipart("videos/n/source.mp4", dropped)
    await storage.abort_multipart("videos/n/source.mp4", dropped)  # already gone: harmless
    assert await storage.size("videos/n/source.mp4") is None
    uploads = boto(rgw_server).list_multipart_uploads(Bucket=storage.bucket)
    assert uploads.get("Uploads", []) == []


# --- presigned URLs, checked by the store itself ------------------------------------------


async def test_a_tampered_presigned_url_is_refused(storage: Any, rgw_server: RadosGwServer) -> None:
    for name in ("seg_001", "seg_002"):
        await storage.put_stream(f"videos/c/hls/360p/{name}.m4s", chunked(name.encode(), 3))
    url = storage.presigned_get("videos/c/hls/360p/seg_001.m4s", 60)
    answer = await fetch("GET", url)
    assert answer.status_code == 200 and answer.content == b"seg_001"

    other_object = url.replace("seg_001", "seg_002")
    longer = re.sub(r"X-Amz-Expires=\d+", "X-Amz-Expires=604800", url)
    wrong_secret = s3.S3Storage(
        s3_config(rgw_server, storage.bucket, secret_key=Secret("not-the-secret")),
        storage.scratch,
    ).presigned_get("videos/c/hls/360p/seg_001.m4s", 60)
    for tampered in (other_object, longer, wrong_secret):
        assert tampered != url
        refused = await fetch("GET", tampered)
        assert refused.status_code == 403, tampered
        assert error_code(refused) == "SignatureDoesNotMatch"


async def test_objects_are_private(storage: Any) -> None:
    await storage.put_stream("videos/p/hls/poster.jpg", chunked(b"a poster", 3))
    url = storage.presigned_get("videos/p/hls/poster.jpg", 60)
    unsigned = url.split("?", 1)[0]
    assert unsigned.endswith(f"/{storage.bucket}/clipsync/videos/p/hls/poster.jpg")
    for method in ("GET", "HEAD"):
        assert (await fetch(method, unsigned)).status_code == 403
    listing = await fetch("GET", unsigned.split("/clipsync/", 1)[0])
    assert listing.status_code == 403 and error_code(listing) == "AccessDenied"
    assert (await fetch("GET", url)).status_code == 200


async def test_expired_presigned_urls_are_refused(storage: Any) -> None:
    await storage.put_stream("videos/e/source.mp4", chunked(b"source", 3))
    signed_at = time.monotonic()
    get = storage.presigned_get("videos/e/source.mp4", 2)
    upload = storage.presigned_put("videos/f/source.mp4", 2, content_type="video/mp4")
    assert (await fetch("GET", get)).status_code == 200
    # X-Amz-Date has whole seconds: wait until the URLs are surely past their 2 s.
    await asyncio.sleep(max(0.0, 3.1 - (time.monotonic() - signed_at)))
    assert (await fetch("GET", get)).status_code == 403
    late = await fetch("PUT", upload, content=b"late", headers={"Content-Type": "video/mp4"})
    assert late.status_code == 403
    assert await storage.size("videos/f/source.mp4") is None


async def test_a_presigned_put_takes_the_declared_content_type_only(storage: Any) -> None:
    url = storage.presigned_put("videos/d/source.mp4", 600, content_type="video/mp4")
    for content_type in ("text/html", "video/mp4; charset=x"):
        refused = await fetch(
            "PUT", url, content=b"<script>", headers={"Content-Type": content_type}
        )
        assert refused.status_code == 403 and error_code(refused) == "SignatureDoesNotMatch"
    assert await storage.size("videos/d/source.mp4") is None
    elsewhere = url.replace("videos/d/", "videos/x/")
    assert (
        await fetch("PUT", elsewhere, content=b"x", headers={"Content-Type": "video/mp4"})
    ).status_code == 403

    stored = await fetch(
        "PUT", url, content=b"direct upload", headers={"Content-Type": "video/mp4"}
    )
    assert stored.status_code == 200, stored.text
    stat = storage.client.stat_object(storage.bucket, "clipsync/videos/d/source.mp4")
    assert stat.content_type == "video/mp4"
    assert await collect(storage.read("videos/d/source.mp4")) == b"direct upload"


# --- CORS: what a browser on the site's pages may read -------------------------------------


def browser_may_read(response: httpx.Response, origin: str) -> bool:
    return response.headers.get("access-control-allow-origin") in (origin, "*")


async def preflight(url: str, origin: str) -> httpx.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": "GET"}
    return await fetch("OPTIONS", url, headers=headers)


async def test_cross_origin_reads_need_the_buckets_cors_rule(
    rgw_server: RadosGwServer, tmp_path: Path, make_settings: SettingsFactory
) -> None:
    config = s3_config(rgw_server, new_bucket())
    proxied = probe(config, tmp_path, make_settings(storage={"playback": "proxy"}))
    assert proxied.ok and "CORS" not in proxied.reason
    storage = s3.S3Storage(config, tmp_path / "scratch")
    await storage.put_stream("videos/o/hls/360p/seg_001.m4s", chunked(b"segment", 3))
    url = storage.presigned_get("videos/o/hls/360p/seg_001.m4s", 60)

    # No rule: the bytes come, but without the header a browser needs to hand them over.
    answer = await fetch("GET", url, headers={"Origin": SITE})
    assert answer.status_code == 200 and not browser_may_read(answer, SITE)
    assert (await preflight(url, SITE)).status_code == 403
    problem = storage.cross_origin_problem(SITE)
    assert problem is not None and SITE in problem and 'playback = "proxy"' in problem

    # With presigned playback the probe sets ClipSync's rule, for the site's origin only.
    result = probe(config, tmp_path, make_settings())
    assert result.ok and f"CORS rule 'clipsync-playback' set: pages on {SITE}" in result.reason
    answer = await fetch("GET", url, headers={"Origin": SITE})
    assert answer.status_code == 200 and browser_may_read(answer, SITE)
    allowed = await preflight(url, SITE)
    assert allowed.status_code == 200 and browser_may_read(allowed, SITE)
    assert "GET" in allowed.headers["access-control-allow-methods"]
    assert not browser_may_read(await fetch("GET", url, headers={"Origin": ELSEWHERE}), ELSEWHERE)
    assert storage.cross_origin_problem(SITE) is None
    assert storage.cross_origin_problem(ELSEWHERE) is not None

    again = probe(config, tmp_path, make_settings())
    assert again.ok and f"its CORS rule lets pages on {SITE}" in again.reason


def test_the_probe_keeps_the_buckets_own_cors_rules(
    rgw_server: RadosGwServer, tmp_path: Path, make_settings: SettingsFactory
) -> None:
    bucket = new_bucket()
    client = boto(rgw_server)
    client.create_bucket(Bucket=bucket)
    theirs = {
        "ID": "uploads",
        "AllowedOrigins": ["https://uploads.example"],
        "AllowedMethods": ["PUT"],
    }
    client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [theirs]})
    config = s3_config(rgw_server, bucket)

    assert probe(config, tmp_path, make_settings()).ok
    rules = {rule.get("ID"): rule for rule in client.get_bucket_cors(Bucket=bucket)["CORSRules"]}
    assert set(rules) == {"uploads", "clipsync-playback"}
    assert rules["uploads"]["AllowedOrigins"] == ["https://uploads.example"]
    assert rules["clipsync-playback"]["AllowedOrigins"] == [SITE]
    assert sorted(rules["clipsync-playback"]["AllowedMethods"]) == ["GET", "HEAD"]

    # A new public URL: ClipSync's own rule follows it, theirs stays.
    moved = make_settings(server={"public_url": "https://videos.example.org"})
    assert probe(config, tmp_path, moved).ok
    rules = {rule.get("ID"): rule for rule in client.get_bucket_cors(Bucket=bucket)["CORSRules"]}
    assert rules["clipsync-playback"]["AllowedOrigins"] == ["https://videos.example.org"]
    assert rules["uploads"]["AllowedOrigins"] == ["https://uploads.example"]

    # Rules that already let the site read: nothing is added.
    other = new_bucket()
    client.create_bucket(Bucket=other)
    anyone = {"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "HEAD"]}
    client.put_bucket_cors(Bucket=other, CORSConfiguration={"CORSRules": [anyone]})
    result = probe(s3_config(rgw_server, other), tmp_path, make_settings())
    assert result.ok and "the bucket's CORS rules let pages on" in result.reason
    assert len(client.get_bucket_cors(Bucket=other)["CORSRules"]) == 1


@pytest.mark.parametrize(
    ("allowed", "origin", "method", "expected"),
    [
        ("http://clipsync.test", "http://clipsync.test", "GET", True),
        ("http://clipsync.test", "http://clipsync.test:8000", "GET", False),
        ("http://clipsync.test", "https://clipsync.test", "GET", False),
        ("http://clipsync.test", "http://clipsync.test", "PUT", False),
        ("*", "https://anywhere.example", "GET", True),
        ("https://*.example.org", "https://videos.example.org", "GET", True),
        ("https://*.example.org", "https://example.org.evil.test", "GET", False),
    ],
)
def test_a_cors_rule_matches_origins_as_s3_does(
    allowed: str, origin: str, method: str, expected: bool
) -> None:
    rule = cors.CorsRule(origins=(allowed,), methods=("GET", "HEAD"))
    assert rule.allows(origin, method) is expected
    # What is written is read back the same.
    configuration = cors.CorsConfiguration((cors.playback_rule(SITE), rule))
    assert cors.parse(cors.serialize(configuration)) == configuration


# --- through the app -------------------------------------------------------------------------


async def test_playback_from_radosgw_is_signed_private_and_allowed_for_the_site(
    start_app: Any, make_settings: SettingsFactory, migrated_sqlite: Path, rgw_server: RadosGwServer
) -> None:
    app, client, bucket = await s3_app(start_app, make_settings, migrated_sqlite, rgw_server)
    probed = app.ctx.backends.selections["storage"].probes["s3"]
    assert f"CORS rule 'clipsync-playback' set: pages on {SITE}" in probed.reason
    who = await people(app, client)
    video = await stored_video(app, who["owner"][0])
    viewer = bearer(who["colleague"][1])

    media = await client.get(f"/hls/{video.id}/360p/index.m3u8", headers=viewer)
    assert media.status_code == 200, media.text
    expected = ["360p/init.mp4", "360p/seg_00001.m4s", "360p/seg_00002.m4s"]
    for uri, path in zip(media_uris(media.text), expected, strict=True):
        assert uri.startswith(f"{rgw_server.url}/{bucket}/media/videos/{video.id}/hls/{path}?")
        fetched = await fetch("GET", uri, headers={"Origin": SITE})
        assert fetched.status_code == 200 and fetched.content == FILES[path]
        assert browser_may_read(fetched, SITE)
        assert (await fetch("GET", uri.split("?", 1)[0])).status_code == 403
    segment = media_uris(media.text)[1]
    assert (await fetch("GET", segment.replace("seg_00001", "seg_00002"))).status_code == 403

    poster = await client.get(f"/hls/{video.id}/poster.jpg", headers=viewer)
    assert poster.status_code == 302
    assert (await fetch("GET", poster.headers["location"])).content == FILES["poster.jpg"]
    # Someone who may not watch it gets no URL at all.
    outsider = bearer(who["outsider"][1])
    assert (
        await client.get(f"/hls/{video.id}/360p/index.m3u8", headers=outsider)
    ).status_code == 404


async def test_a_direct_upload_to_radosgw_must_send_the_declared_type(
    start_app: Any, make_settings: SettingsFactory, migrated_sqlite: Path, rgw_server: RadosGwServer
) -> None:
    _, client, _ = await s3_app(start_app, make_settings, migrated_sqlite, rgw_server)
    token = (await register(client, "direct@example.org"))["token"]
    clip = make_clip("landscape")
    answer = (await presign(client, token, clip)).json()
    url, file_key = answer["uploadUrl"], answer["fileKey"]
    assert parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"] == ["content-type;host"]

    assert (await put(url, b"<html>", content_type="text/html")).status_code == 403
    assert (await put(url, clip.read_bytes())).status_code == 200
    registered = await client.post(
        "/api/videos/register",
        json={"fileKey": file_key, "title": "Straight in"},
        headers=bearer(token),
    )
    assert registered.status_code == 201, registered.text
    video = await Video.get(id=uuid.UUID(file_key.split("/")[1]))
    assert video.status == VideoStatus.PROCESSING and (video.width, video.height) == (640, 360)


def test_the_doctor_says_when_browsers_would_be_refused_presigned_media(
    rgw_server: RadosGwServer, tmp_path: Path, make_settings: SettingsFactory
) -> None:
    config = s3_config(rgw_server, new_bucket())
    assert probe(config, tmp_path, make_settings(storage={"playback": "proxy"})).ok
    selection = SimpleNamespace(instance=s3.S3Storage(config, tmp_path / "scratch"))
    refused = doctor.check_cross_origin(selection, make_settings())
    assert refused is not None and refused.failed
    assert "browsers on http://clipsync.test are refused" in refused.detail
    proxied = make_settings(storage={"playback": "proxy"})
    assert doctor.check_cross_origin(selection, proxied) is None
    assert probe(config, tmp_path, make_settings()).ok  # what start-up does: the rule is set
    allowed = doctor.check_cross_origin(selection, make_settings())
    assert allowed is not None and allowed.ok
