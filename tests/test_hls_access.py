"""Who may fetch which HLS file: checked on every request, with no existence leak.

The files here are written straight into storage so the rule can be tested for
every status without transcoding; tests/test_video_path.py plays real streams.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from clients import PASSWORD, bearer, error_of, register

from clipsync.context import ClipSyncApp
from clipsync.models import Role, User, Video, VideoStatus
from clipsync.storage import keys

PLAYLIST = b"#EXTM3U\n#EXT-X-VERSION:7\n"
SEGMENT = bytes(range(256)) * 40  # 10 240 bytes


async def stored_video(
    app: ClipSyncApp, owner: User, status: VideoStatus, category: str | None = None
) -> Video:
    video = await Video.create(
        owner=owner, title="Clip", category=category or owner.category, status=status, duration=10.0
    )
    storage = app.ctx.backends.storage

    async def body(data: bytes):
        yield data

    await storage.put_stream(keys.hls_key(video.id, "master.m3u8"), body(PLAYLIST))
    await storage.put_stream(keys.hls_key(video.id, "360p/seg_00001.m4s"), body(SEGMENT))
    await storage.put_stream(keys.hls_key(video.id, "poster.jpg"), body(b"\xff\xd8jpeg"))
    return video


@pytest.fixture
async def people(app: ClipSyncApp, client: httpx.AsyncClient) -> dict[str, tuple[User, str]]:
    found = {}
    for name in ("owner", "colleague"):
        token = (await register(client, f"{name}@example.org"))["token"]
        found[name] = (await User.get(email=f"{name}@example.org"), token)
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    found["admin"] = (admin, app.ctx.accounts.start_session(admin).token)
    outsider = await app.ctx.accounts.create_user("out@example.org", PASSWORD)
    await User.filter(id=outsider.id).update(category="elsewhere")
    await outsider.refresh_from_db()
    found["outsider"] = (outsider, app.ctx.accounts.start_session(outsider).token)
    return found


async def test_no_credentials_is_401(app: ClipSyncApp, client: httpx.AsyncClient, people) -> None:
    video = await stored_video(app, people["owner"][0], VideoStatus.APPROVED)
    response = await client.get(f"/hls/{video.id}/master.m3u8")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("status", "who", "allowed"),
    [
        (VideoStatus.READY, "owner", True),
        (VideoStatus.READY, "colleague", False),
        (VideoStatus.READY, "admin", True),
        (VideoStatus.APPROVED, "colleague", True),
        (VideoStatus.APPROVED, "outsider", False),
        (VideoStatus.APPROVED, "admin", True),
        (VideoStatus.REJECTED, "colleague", False),
        # Watch while it transcodes (services/early_playback.py): its uploader only.
        (VideoStatus.PROCESSING, "owner", True),
        (VideoStatus.PROCESSING, "colleague", False),
    ],
)
async def test_hls_files_follow_the_visibility_rule(
    app: ClipSyncApp,
    client: httpx.AsyncClient,
    people,
    status: VideoStatus,
    who: str,
    allowed: bool,
) -> None:
    video = await stored_video(app, people["owner"][0], status)
    token = people[who][1]
    for path in ("master.m3u8", "360p/seg_00001.m4s", "poster.jpg"):
        response = await client.get(f"/hls/{video.id}/{path}", headers=bearer(token))
        assert response.status_code == (200 if allowed else 404), (path, response.text)


async def test_hidden_and_missing_videos_answer_the_same(app, client, people) -> None:
    hidden = await stored_video(app, people["owner"][0], VideoStatus.READY)
    token = people["colleague"][1]
    not_allowed = await client.get(f"/hls/{hidden.id}/master.m3u8", headers=bearer(token))
    missing = await client.get(f"/hls/{uuid.uuid4()}/master.m3u8", headers=bearer(token))
    assert not_allowed.status_code == missing.status_code == 404
    assert error_of(not_allowed) == error_of(missing)


async def test_content_types_and_cache_headers(app, client, people) -> None:
    video = await stored_video(app, people["owner"][0], VideoStatus.READY)
    token = people["owner"][1]
    playlist = await client.get(f"/hls/{video.id}/master.m3u8", headers=bearer(token))
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert playlist.headers["cache-control"] == "private, no-cache"
    assert playlist.content == PLAYLIST
    segment = await client.get(f"/hls/{video.id}/360p/seg_00001.m4s", headers=bearer(token))
    assert segment.headers["content-type"] == "video/iso.segment"
    assert segment.headers["cache-control"].startswith("private")
    assert segment.content == SEGMENT
    poster = await client.get(f"/hls/{video.id}/poster.jpg", headers=bearer(token))
    assert poster.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("header", "expected", "content_range"),
    [
        ("bytes=0-99", SEGMENT[:100], "bytes 0-99/10240"),
        ("bytes=10000-", SEGMENT[10000:], "bytes 10000-10239/10240"),
        ("bytes=-40", SEGMENT[-40:], "bytes 10200-10239/10240"),
        ("bytes=10200-99999", SEGMENT[10200:], "bytes 10200-10239/10240"),
    ],
)
async def test_byte_ranges(
    app, client, people, header: str, expected: bytes, content_range: str
) -> None:
    video = await stored_video(app, people["owner"][0], VideoStatus.READY)
    response = await client.get(
        f"/hls/{video.id}/360p/seg_00001.m4s",
        headers={**bearer(people["owner"][1]), "Range": header},
    )
    assert response.status_code == 206
    assert response.content == expected
    assert response.headers["content-range"] == content_range
    assert response.headers["content-length"] == str(len(expected))


async def test_a_range_past_the_end_is_416(app, client, people) -> None:
    video = await stored_video(app, people["owner"][0], VideoStatus.READY)
    response = await client.get(
        f"/hls/{video.id}/360p/seg_00001.m4s",
        headers={**bearer(people["owner"][1]), "Range": "bytes=99999-"},
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */10240"


@pytest.mark.parametrize(
    "path",
    [
        "../source.mp4",
        "%2e%2e/source.mp4",
        "360p/../../source.mp4",
        "..%2fsource.mp4",
        "missing.m3u8",
    ],
)
async def test_paths_cannot_leave_the_video_folder(app, client, people, path: str) -> None:
    video = await stored_video(app, people["owner"][0], VideoStatus.READY)

    async def body():
        yield b"the original upload"

    await app.ctx.backends.storage.put_stream(keys.source_key(video.id, "a.mp4"), body())
    response = await client.get(f"/hls/{video.id}/{path}", headers=bearer(people["owner"][1]))
    assert response.status_code == 404
    assert b"the original upload" not in response.content


async def test_the_session_cookie_authorises_hls_too(app, client, people) -> None:
    video = await stored_video(app, people["owner"][0], VideoStatus.READY)
    client.cookies.set("clipsync_session", people["owner"][1])
    assert (await client.get(f"/hls/{video.id}/master.m3u8")).status_code == 200
