"""Who may fetch the HLS files of a video still PROCESSING (watch while it transcodes):
its uploader and those who may moderate it, with playlists that are never cached;
everyone else gets the same 404 as before, and so does everyone once it FAILED.

The early files are written straight into storage, as services/early_playback.py
stores them; tests/test_early_playback.py makes them with a real transcode.
"""

from __future__ import annotations

import httpx
import pytest
from clients import PASSWORD, bearer
from test_hls_access import people, stored_video  # noqa: F401 (a fixture)

from clipsync.context import ClipSyncApp
from clipsync.media.playlists import Segment
from clipsync.media.progressive import event_playlist
from clipsync.models import Role, User, VideoStatus
from clipsync.storage import keys

FILES = ("master.m3u8", "360p/index.m3u8", "360p/seg_00001.m4s", "poster.jpg")


async def processing_video(app: ClipSyncApp, owner: User):
    video = await stored_video(app, owner, VideoStatus.PROCESSING)
    text = event_playlist([Segment("seg_00001.m4s", 4.0)], 4)

    async def body():
        yield text.encode()

    await app.ctx.backends.storage.put_stream(keys.hls_key(video.id, "360p/index.m3u8"), body())
    return video


@pytest.fixture
async def editor(app: ClipSyncApp, people) -> str:  # noqa: F811
    owner = people["owner"][0]
    user = await app.ctx.accounts.create_user(
        "editor@example.org", PASSWORD, role=Role.EDITOR, category=owner.category
    )
    return app.ctx.accounts.start_session(user).token


@pytest.mark.parametrize(
    ("who", "allowed"),
    [("owner", True), ("admin", True), ("editor", True), ("colleague", False), ("outsider", False)],
)
async def test_only_the_uploader_and_moderators_fetch_a_video_while_it_transcodes(
    app: ClipSyncApp,
    client: httpx.AsyncClient,
    people,  # noqa: F811
    editor: str,
    who: str,
    allowed: bool,
) -> None:
    video = await processing_video(app, people["owner"][0])
    token = editor if who == "editor" else people[who][1]
    for path in FILES:
        response = await client.get(f"/hls/{video.id}/{path}", headers=bearer(token))
        assert response.status_code == (200 if allowed else 404), (who, path, response.text)


async def test_the_growing_playlists_are_never_cached_and_their_segments_signed(
    app: ClipSyncApp,
    client: httpx.AsyncClient,
    people,  # noqa: F811
) -> None:
    video = await processing_video(app, people["owner"][0])
    auth = bearer(people["owner"][1])
    master = await client.get(f"/hls/{video.id}/master.m3u8", headers=auth)
    assert master.status_code == 200
    assert "no-cache" in master.headers["cache-control"]
    media = await client.get(f"/hls/{video.id}/360p/index.m3u8", headers=auth)
    assert media.status_code == 200
    assert "no-cache" in media.headers["cache-control"]
    assert "no-store" in media.headers["cache-control"]  # it carries signed URLs
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in media.text
    segment = next(line for line in media.text.splitlines() if line.startswith("seg_"))
    assert "sig=" in segment
    signed = await client.get(f"/hls/{video.id}/360p/{segment}")  # no session: the URL says
    assert signed.status_code == 200


async def test_a_failed_video_is_not_played_even_by_its_uploader(
    app: ClipSyncApp,
    client: httpx.AsyncClient,
    people,  # noqa: F811
) -> None:
    video = await processing_video(app, people["owner"][0])
    video.status = VideoStatus.FAILED
    await video.save()
    for path in FILES:
        response = await client.get(f"/hls/{video.id}/{path}", headers=bearer(people["owner"][1]))
        assert response.status_code == 404, path
