"""The page around the player: uploader, views (as the analytics count them), the
description as sanitised HTML whose times seek, `?t=`, share and embed code, the
original's download and the framable embed page. In-process app on SQLite."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import pytest
from clients import PASSWORD, bearer

from clipsync.context import ClipSyncApp
from clipsync.errors import AnalyticsUnavailable, ConfigError
from clipsync.models import Role, User, Video, VideoStatus
from clipsync.settings import parse_settings
from clipsync.storage import keys
from clipsync.web.sharing_pages import content_disposition

CATEGORIES = [
    {"name": "staff", "label": "Staff room", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]
SOURCE = b"the original upload, as it was sent"
ANCESTORS = ["'self'", "https://intranet.example.org"]


async def make_site(start_app, make_settings, migrated_sqlite: Path, **sharing):
    settings = make_settings(
        category=CATEGORIES,
        sharing={"embed_frame_ancestors": ANCESTORS, **sharing},
        server={"public_url": "https://videos.example.org", "allowed_hosts": ["clipsync.test"]},
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    # An administrator exists: otherwise every page leads to /setup.
    await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    people = {}
    for name, category, display in [
        ("uploader", "staff", "Ada Lovelace"),
        ("viewer", "staff", ""),
        ("dealer", "dealers", ""),
    ]:
        user = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=Role.USER, category=category
        )
        if display:
            user.display_name = display
            await user.save(update_fields=["display_name"])
        people[name] = (user, app.ctx.accounts.start_session(user).token)
    return app, client, people


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    return await make_site(start_app, make_settings, migrated_sqlite)


@pytest.fixture
async def downloading_site(start_app, make_settings, migrated_sqlite: Path):
    return await make_site(start_app, make_settings, migrated_sqlite, allow_download=True)


async def clip(app: ClipSyncApp, owner: User, description: str = "", **fields) -> Video:
    """A playable video with its source stored (the HLS files are not needed here)."""
    row = await Video.create(
        owner=owner,
        title=fields.pop("title", "Quarterly <review>"),
        description=description,
        category=owner.category,
        status=VideoStatus.APPROVED,
        duration=120.0,
        original_filename=fields.pop("original_filename", 'Résumé "final".mov'),
        **fields,
    )

    async def body():
        yield SOURCE

    row.source_key = keys.source_key(row.id, "a.mov")
    row.hls_key = keys.hls_key(row.id, "master.m3u8")
    await app.ctx.backends.storage.put_stream(row.source_key, body())
    await row.save()
    return row


def frame_ancestors(response: httpx.Response) -> str:
    policy = response.headers["content-security-policy"]
    return re.search(r"frame-ancestors ([^;]+)", policy).group(1)


def video_tag(page: str) -> str:
    return re.search(r"<video [^>]*>", page, re.S).group(0)


async def watch_events(
    client: httpx.AsyncClient, token: str, video: Video, session: str, played: float
):
    response = await client.post(
        "/api/analytics/event",
        json=[
            {
                "type": "PLAY",
                "videoId": str(video.id),
                "sessionId": session,
                "position": 0,
                "played": 0,
            },
            {
                "type": "PROGRESS",
                "videoId": str(video.id),
                "sessionId": session,
                "position": played,
                "played": played,
            },
        ],
        headers=bearer(token),
    )
    assert response.json()["accepted"] == 2, response.text


async def test_the_page_names_the_uploader_category_date_and_views(site) -> None:
    app, client, people = site
    video = await clip(app, people["uploader"][0])
    viewer = people["viewer"][1]
    await watch_events(client, viewer, video, "s1", 10)
    await watch_events(client, people["uploader"][1], video, "s2", 5)
    await watch_events(client, viewer, video, "s3", 1)  # under min_view_seconds: no view
    await app.ctx.analytics.backend.flush()

    page = await client.get(f"/watch/{video.id}", headers=bearer(viewer))
    assert page.status_code == 200
    assert '<span id="video-uploader">Ada Lovelace</span>' in page.text
    assert 'class="watch-category">Staff room</span>' in page.text
    assert '<li id="video-views">2 views</li>' in page.text
    assert '<h1 id="video-title">Quarterly &lt;review&gt;</h1>' in page.text
    # Without a display name, the part of the email before the @.
    own = await clip(app, people["viewer"][0])
    page = await client.get(f"/watch/{own.id}", headers=bearer(viewer))
    assert '<span id="video-uploader">viewer</span>' in page.text
    assert '<li id="video-views">0 views</li>' in page.text


async def test_no_view_count_when_the_analytics_cannot_say(site, monkeypatch) -> None:
    app, client, people = site
    video = await clip(app, people["uploader"][0])

    async def unavailable(*_args):
        raise AnalyticsUnavailable()

    monkeypatch.setattr(app.ctx.analytics.backend, "video_stats", unavailable)
    page = await client.get(f"/watch/{video.id}", headers=bearer(people["viewer"][1]))
    assert page.status_code == 200 and 'id="video-views"' not in page.text


async def test_the_description_is_sanitised_markdown_with_seek_links(site) -> None:
    app, client, people = site
    text = "**Agenda**\n\n1:23 numbers\n\n<script>alert(1)</script> [x](javascript:alert(1))"
    video = await clip(app, people["uploader"][0], description=text)
    page = await client.get(f"/watch/{video.id}", headers=bearer(people["viewer"][1]))
    section = re.search(r'<section class="watch-description".*?</section>', page.text, re.S).group(
        0
    )
    assert "<strong>Agenda</strong>" in section
    assert '<a href="?t=83" class="timestamp" data-seek="83">1:23</a> numbers' in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "<script" not in section and 'href="javascript' not in section


async def test_one_set_of_controls_and_t_starts_there(site) -> None:
    app, client, people = site
    video = await clip(app, people["uploader"][0])
    viewer = people["viewer"][1]
    tag = video_tag((await client.get(f"/watch/{video.id}", headers=bearer(viewer))).text)
    assert not re.search(r"\scontrols[\s>=]", tag) and 'data-start-at=""' in tag
    for query, start in [("83", "83"), ("1m23s", "83"), ("1h", "3600"), ("nope", ""), ("-5", "")]:
        page = await client.get(f"/watch/{video.id}?t={query}", headers=bearer(viewer))
        assert f'data-start-at="{start}"' in video_tag(page.text), query


async def test_share_link_and_embed_code_use_the_public_url(site) -> None:
    app, client, people = site
    video = await clip(app, people["uploader"][0], title='Say "hi" <now>')
    page = await client.get(f"/watch/{video.id}", headers=bearer(people["viewer"][1]))
    assert f'value="https://videos.example.org/watch/{video.id}"' in page.text
    code = re.search(r'<textarea id="embed-code"[^>]*>(.*?)</textarea>', page.text, re.S).group(1)
    assert html.unescape(code) == (
        f'<iframe src="https://videos.example.org/embed/{video.id}" width="640" height="360" '
        'title="Say &quot;hi&quot; &lt;now&gt;" allow="fullscreen; picture-in-picture" '
        "allowfullscreen></iframe>"
    )
    # Downloads are off by default: no button, no file.
    assert 'id="download"' not in page.text
    answer = await client.get(f"/videos/{video.id}/download", headers=bearer(people["viewer"][1]))
    assert answer.status_code == 404


async def test_the_original_downloads_when_the_site_and_the_video_allow_it(
    downloading_site,
) -> None:
    app, client, people = downloading_site
    video = await clip(app, people["uploader"][0])
    viewer = people["viewer"][1]
    page = await client.get(f"/watch/{video.id}", headers=bearer(viewer))
    assert f'id="download" href="/videos/{video.id}/download" download>' in page.text

    answer = await client.get(f"/videos/{video.id}/download", headers=bearer(viewer))
    assert answer.status_code == 200 and answer.content == SOURCE
    assert answer.headers["content-disposition"] == (
        "attachment; filename=\"R_sum_ final.mov\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20final.mov"
    )
    assert answer.headers["content-type"] == "application/octet-stream"

    # Someone who may not see the video, or no one signed in: as if it did not exist.
    assert (
        await client.get(f"/videos/{video.id}/download", headers=bearer(people["dealer"][1]))
    ).status_code == 404
    signed_out = await client.get(f"/videos/{video.id}/download")
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login")

    # The uploader turned it off for this video.
    video.download_allowed = False
    await video.save(update_fields=["download_allowed"])
    assert (
        await client.get(f"/videos/{video.id}/download", headers=bearer(viewer))
    ).status_code == 404
    page = await client.get(f"/watch/{video.id}", headers=bearer(viewer))
    assert 'id="download"' not in page.text


async def test_only_the_embed_page_may_be_framed_and_only_where_configured(site) -> None:
    app, client, people = site
    video = await clip(app, people["uploader"][0])
    viewer = people["viewer"][1]
    embed = await client.get(f"/embed/{video.id}?t=5", headers=bearer(viewer))
    assert embed.status_code == 200
    assert frame_ancestors(embed) == "'self' https://intranet.example.org"
    tag = video_tag(embed.text)
    assert f'data-video-id="{video.id}"' in tag and 'data-start-at="5"' in tag
    assert not re.search(r"\scontrols[\s>=]", tag)
    assert "site-header" not in embed.text  # the player alone

    watch = await client.get(f"/watch/{video.id}", headers=bearer(viewer))
    assert frame_ancestors(watch) == "'none'"
    for path in ("/", "/login", f"/videos/{video.id}/download", "/nowhere"):
        assert frame_ancestors(await client.get(path, headers=bearer(viewer))) == "'none'", path

    # Signed out: a sign-in link that leaves the frame; still framable, so it shows.
    signed_out = await client.get(f"/embed/{video.id}")
    assert signed_out.status_code == 401 and frame_ancestors(signed_out) != "'none'"
    assert f'href="/login?next=/watch/{video.id}" target="_blank"' in signed_out.text
    assert "<video" not in signed_out.text
    # Someone who may not see it: the same answer as for a video that does not exist.
    hidden = await client.get(f"/embed/{video.id}", headers=bearer(people["dealer"][1]))
    assert hidden.status_code == 404 and "<video" not in hidden.text
    assert "There is no such video." in hidden.text


def test_frame_ancestors_must_be_single_sources() -> None:
    for bad in ["'self'; script-src *", "https://a.example https://b.example", ""]:
        with pytest.raises(ConfigError, match="embed_frame_ancestors"):
            parse_settings({"sharing": {"embed_frame_ancestors": [bad]}}, where="test")
    ok = parse_settings({"sharing": {"embed_frame_ancestors": ANCESTORS}}, where="test")
    assert ok.sharing.embed_frame_ancestors == ANCESTORS and not ok.sharing.allow_download


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("clip.mp4", "attachment; filename=\"clip.mp4\"; filename*=UTF-8''clip.mp4"),
        ('a"b\\c/d.mp4', "attachment; filename=\"abcd.mp4\"; filename*=UTF-8''abcd.mp4"),
        (
            "x\r\nSet-Cookie: a=b",
            "attachment; filename=\"xSet-Cookie: a=b\"; filename*=UTF-8''xSet-Cookie%3A%20a%3Db",
        ),
        ("\x00\n", "attachment; filename=\"video\"; filename*=UTF-8''video"),
    ],
)
def test_a_download_name_cannot_break_the_header(name: str, header: str) -> None:
    assert content_disposition(name) == header
