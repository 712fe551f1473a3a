"""Private playback from object storage: authorised playlists, media from presigned URLs.

moto 5.2, which stands in for MinIO here, answers every presigned request with HTTP
500 once it enforces signatures (it looks for an Authorization header), and checks
neither a presigned URL's signature nor its expiry. So: presigned URLs are fetched
from an open moto server (`open_s3`), which refuses unsigned requests all the same;
the enforcing server (`s3_server`) shows that an unsigned URL is refused; and the
signature and expiry are checked the way S3 and MinIO check them, by botocore's own
SigV4 implementation (`verify_presigned` of tests/test_storage_s3.py).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from browser import LiveServer
from clients import PASSWORD, bearer, play_with_ffmpeg, register
from clips import make_clip
from services import S3Server
from test_storage_s3 import verify_presigned

from clipsync.context import ClipSyncApp
from clipsync.media.playlists import resolve_uri, sign_media_playlist
from clipsync.models import User, Video, VideoStatus
from clipsync.storage import keys

MASTER = (
    "#EXTM3U\n#EXT-X-VERSION:7\n"
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="audio",DEFAULT=YES,URI="audio/index.m3u8"\n'
    '#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=640x360,AUDIO="aud"\n360p/index.m3u8\n'
)
MEDIA = (
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    '#EXT-X-MAP:URI="init.mp4"\n'
    "#EXTINF:4.000000,\nseg_00001.m4s\n#EXTINF:2.500000,\nseg_00002.m4s\n#EXT-X-ENDLIST\n"
)
FILES = {
    "master.m3u8": MASTER.encode(),
    "360p/index.m3u8": MEDIA.encode(),
    "360p/init.mp4": b"init segment " * 10,
    "360p/seg_00001.m4s": bytes(range(256)) * 40,
    "360p/seg_00002.m4s": b"second segment",
    "poster.jpg": b"\xff\xd8 a poster",
}
DURATION = 6.5
SMALL_LADDER = """
[transcoder]
ladder = [{ height = 144, bitrate = 150 }, { height = 240, bitrate = 300 }]
"""


# --- the rewriting, a pure function -------------------------------------------------------


def test_sign_media_playlist_rewrites_segments_and_the_init_uri_only() -> None:
    signed = sign_media_playlist(MEDIA, lambda uri: f"https://s3.example/{uri}?sig=1&x=2")
    expected = (
        MEDIA.replace('URI="init.mp4"', 'URI="https://s3.example/init.mp4?sig=1&x=2"')
        .replace("\nseg_00001.m4s", "\nhttps://s3.example/seg_00001.m4s?sig=1&x=2")
        .replace("\nseg_00002.m4s", "\nhttps://s3.example/seg_00002.m4s?sig=1&x=2")
    )
    assert signed == expected
    # `sign` may leave a URI as it is; nothing else changes.
    assert sign_media_playlist(MEDIA, lambda uri: uri) == MEDIA
    crlf = MEDIA.replace("\n", "\r\n").rstrip("\r\n")
    assert sign_media_playlist(crlf, str.upper).count("SEG_0000") == 2


def test_sign_media_playlist_refuses_master_playlists_and_non_playlists() -> None:
    with pytest.raises(ValueError, match="master"):
        sign_media_playlist(MASTER, str.upper)
    with pytest.raises(ValueError, match="EXTM3U"):
        sign_media_playlist("seg_00001.m4s\n", str.upper)


@pytest.mark.parametrize(
    ("playlist", "uri", "expected"),
    [
        ("360p/index.m3u8", "seg_00001.m4s", "360p/seg_00001.m4s"),
        ("360p/index.m3u8", "init.mp4", "360p/init.mp4"),
        ("360p/index.m3u8", "../audio/init.mp4", "audio/init.mp4"),
        ("index.m3u8", "seg.m4s", "seg.m4s"),
        ("360p/index.m3u8", "../../secrets", None),
        ("360p/index.m3u8", "/etc/passwd", None),
        ("360p/index.m3u8", "https://cdn.example/seg.m4s", None),
        ("360p/index.m3u8", "seg.m4s?already=signed", None),
        ("360p/index.m3u8", "", None),
    ],
)
def test_resolve_uri_stays_inside_the_tree(playlist: str, uri: str, expected: str | None) -> None:
    assert resolve_uri(playlist, uri) == expected


# --- through the app ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_s3() -> Iterator[S3Server]:
    with S3Server(enforce_auth=False) as server:
        yield server


async def s3_app(
    start_app: Any, make_settings: Any, migrated_sqlite: Path, server: S3Server, **storage: Any
) -> tuple[ClipSyncApp, httpx.AsyncClient, str]:
    bucket = f"play-{uuid.uuid4().hex[:12]}"
    settings = make_settings(
        storage={"backend": "s3", **storage},
        plugins={"storage_s3": server.plugin_table(bucket=bucket, prefix="media")},
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    app, client = await start_app(settings)
    return app, client, bucket


async def people(app: ClipSyncApp, client: httpx.AsyncClient) -> dict[str, tuple[User, str]]:
    found = {}
    for name in ("owner", "colleague"):
        token = (await register(client, f"{name}@example.org"))["token"]
        found[name] = (await User.get(email=f"{name}@example.org"), token)
    outsider = await app.ctx.accounts.create_user("out@example.org", PASSWORD)
    await User.filter(id=outsider.id).update(category="elsewhere")
    await outsider.refresh_from_db()
    found["outsider"] = (outsider, app.ctx.accounts.start_session(outsider).token)
    return found


async def stored_video(app: ClipSyncApp, owner: User, duration: float | None = DURATION) -> Video:
    video = await Video.create(
        owner=owner,
        title="Clip",
        category=owner.category,
        status=VideoStatus.APPROVED,
        duration=duration,
    )

    async def body(data: bytes):
        yield data

    for path, data in FILES.items():
        await app.ctx.backends.storage.put_stream(keys.hls_key(video.id, path), body(data))
    return video


def media_uris(playlist: str) -> list[str]:
    init = playlist.split('#EXT-X-MAP:URI="', 1)[1].split('"', 1)[0]
    return [init] + [line for line in playlist.splitlines() if line and not line.startswith("#")]


async def test_an_allowed_viewer_gets_segments_straight_from_the_bucket(
    start_app, make_settings, migrated_sqlite: Path, open_s3: S3Server
) -> None:
    app, client, bucket = await s3_app(start_app, make_settings, migrated_sqlite, open_s3)
    who = await people(app, client)
    video = await stored_video(app, who["owner"][0])
    viewer = bearer(who["colleague"][1])
    base = f"/hls/{video.id}"

    # The master playlist keeps app-relative URIs: each media playlist comes back here.
    master = await client.get(f"{base}/master.m3u8", headers=viewer)
    assert master.status_code == 200 and master.text == MASTER
    assert master.headers["cache-control"] == "private, no-store"

    media = await client.get(f"{base}/360p/index.m3u8", headers=viewer)
    assert media.status_code == 200, media.text
    assert media.headers["cache-control"] == "private, no-store"
    assert media.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    uris = media_uris(media.text)
    assert len(uris) == 3 and "#EXTINF:2.500000," in media.text and "#EXT-X-ENDLIST" in media.text
    expected = ["360p/init.mp4", "360p/seg_00001.m4s", "360p/seg_00002.m4s"]
    async with httpx.AsyncClient(trust_env=False) as s3:
        for uri, path in zip(uris, expected, strict=True):
            assert uri.startswith(f"{open_s3.url}/{bucket}/media/videos/{video.id}/hls/{path}?")
            query = parse_qs(urlsplit(uri).query)
            # Valid for the video's duration plus [storage] playback_url_seconds (300).
            assert query["X-Amz-Expires"] == [str(300 + 7)]
            assert verify_presigned(uri, open_s3.secret_key, "GET") == "ok"
            fetched = await s3.get(uri, headers={"Origin": "http://clipsync.test"})
            assert fetched.status_code == 200 and fetched.content == FILES[path]
            # moto (flask-cors) allows any origin, as MinIO does by default.
            assert fetched.headers["access-control-allow-origin"] == "http://clipsync.test"

        # Anything else answers a redirect to a presigned URL, never cached.
        poster = await client.get(f"{base}/poster.jpg", headers=viewer)
        assert poster.status_code == 302
        assert poster.headers["cache-control"] == "private, no-store"
        location = poster.headers["location"]
        assert location.startswith(f"{open_s3.url}/{bucket}/media/videos/{video.id}/hls/poster")
        assert "X-Amz-Expires=300&" in location or location.endswith("X-Amz-Expires=300")
        assert (await s3.get(location)).content == FILES["poster.jpg"]

    # Someone who may not watch it gets what a missing video gets.
    outsider = bearer(who["outsider"][1])
    for path in ("master.m3u8", "360p/index.m3u8", "360p/seg_00001.m4s", "poster.jpg"):
        assert (await client.get(f"{base}/{path}", headers=outsider)).status_code == 404
        assert (await client.get(f"{base}/{path}")).status_code == 401
    missing = await client.get(f"{base}/360p/seg_09999.m4s", headers=viewer)
    assert missing.status_code == 404
    no_playlist = await client.get(f"{base}/2160p/index.m3u8", headers=viewer)
    assert no_playlist.status_code == 404


async def test_unsigned_and_expired_urls_are_refused_by_the_store(
    start_app, make_settings, migrated_sqlite: Path, s3_server: S3Server
) -> None:
    app, client, bucket = await s3_app(
        start_app, make_settings, migrated_sqlite, s3_server, playback_url_seconds=1
    )
    who = await people(app, client)
    video = await stored_video(app, who["owner"][0], duration=None)
    viewer = bearer(who["colleague"][1])
    media = await client.get(f"/hls/{video.id}/360p/index.m3u8", headers=viewer)
    assert media.status_code == 200
    segment = media_uris(media.text)[1]
    assert f"/{bucket}/media/videos/{video.id}/hls/360p/seg_00001.m4s?" in segment
    assert parse_qs(urlsplit(segment).query)["X-Amz-Expires"] == ["1"]
    assert verify_presigned(segment, s3_server.secret_key, "GET") == "ok"
    tampered = segment.replace("seg_00001", "seg_00002")
    assert verify_presigned(tampered, s3_server.secret_key, "GET") == "signature mismatch"

    async with httpx.AsyncClient(trust_env=False) as s3:
        unsigned = await s3.get(segment.split("?", 1)[0])
    assert unsigned.status_code == 403, "nothing in the bucket is public"

    await asyncio.sleep(2.1)
    assert verify_presigned(segment, s3_server.secret_key, "GET") == "expired"
    # A fresh request to the app signs afresh.
    again = media_uris((await client.get(f"/hls/{video.id}/360p/index.m3u8", headers=viewer)).text)
    assert verify_presigned(again[1], s3_server.secret_key, "GET") == "ok"


async def test_proxy_mode_keeps_playlists_and_streams_bytes_through_the_app(
    start_app, make_settings, migrated_sqlite: Path, s3_server: S3Server
) -> None:
    app, client, _ = await s3_app(
        start_app, make_settings, migrated_sqlite, s3_server, playback="proxy"
    )
    who = await people(app, client)
    video = await stored_video(app, who["owner"][0])
    viewer = bearer(who["colleague"][1])
    for path, data in FILES.items():
        response = await client.get(f"/hls/{video.id}/{path}", headers=viewer)
        assert response.status_code == 200, path
        if path == "360p/index.m3u8":
            # Proxied like local storage: the segments get the app's signed URLs
            # (clipsync/delivery.py), which need no credentials.
            assert response.text.replace("\n", "").count("?sub=") == 3
            for line in response.text.splitlines():
                if line.startswith("seg_00001.m4s?"):
                    signed = await client.get(f"/hls/{video.id}/360p/{line}")
                    assert signed.content == FILES["360p/seg_00001.m4s"]
        else:
            assert response.content == data, path
    ranged = await client.get(
        f"/hls/{video.id}/360p/seg_00001.m4s", headers={**viewer, "Range": "bytes=10-19"}
    )
    assert ranged.status_code == 206 and ranged.content == FILES["360p/seg_00001.m4s"][10:20]
    outsider = bearer(who["outsider"][1])
    assert (await client.get(f"/hls/{video.id}/master.m3u8", headers=outsider)).status_code == 404


def wait_until_ready(http: httpx.Client, video_id: str, token: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        video = http.get(f"/api/videos/{video_id}", headers=bearer(token)).json()["video"]
        if video["status"] in ("READY", "FAILED"):
            assert video["status"] == "READY", video
            return
        time.sleep(1)
    raise AssertionError(f"video {video_id} is still {video['status']}")


def test_ffmpeg_plays_the_whole_video_from_presigned_urls(
    tmp_path: Path, open_s3: S3Server
) -> None:
    bucket = f"ffmpeg-{uuid.uuid4().hex[:12]}"
    s3 = open_s3.plugin_table(bucket=bucket)
    plugin = "".join(f"{key} = {json.dumps(value)}\n" for key, value in s3.items())
    extra = f'{SMALL_LADDER}[storage]\nbackend = "s3"\n[plugins.storage_s3]\n{plugin}'
    with (
        LiveServer(tmp_path, extra_toml=extra) as server,
        httpx.Client(base_url=server.base_url, trust_env=False) as http,
    ):
        token = http.post(
            "/api/auth/register", json={"email": "f@example.org", "password": PASSWORD}
        ).json()["token"]
        with make_clip("landscape").open("rb") as fh:
            uploaded = http.post(
                "/api/videos/upload-local",
                files={"file": ("clip.mp4", fh, "video/mp4")},
                headers=bearer(token),
            )
        video_id = uploaded.json()["videoId"]
        http.post(
            "/api/videos/register", json={"videoId": video_id, "title": "S3"}, headers=bearer(token)
        ).raise_for_status()
        wait_until_ready(http, video_id, token)

        # The media playlists the players get point into the bucket.
        master = http.get(f"/hls/{video_id}/master.m3u8", headers=bearer(token)).text
        first = next(line for line in master.splitlines() if line.endswith("index.m3u8"))
        media = http.get(f"/hls/{video_id}/{first}", headers=bearer(token)).text
        assert f"{open_s3.url}/{bucket}/videos/{video_id}/hls/" in media

        url = f"{server.base_url}/hls/{video_id}/master.m3u8"
        played = play_with_ffmpeg(url, token)
        assert played.returncode == 0, played.stderr
        refused = play_with_ffmpeg(url)
        assert refused.returncode != 0 and "401" in refused.stderr
