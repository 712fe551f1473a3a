"""The hooks that change what pages and answers show, and the comment event hook.

Each plugin is written to a folder as a third-party plugin would be, loaded by a real
app (SQLite), and seen through HTTP: `filter_video_json` in the API's answers and on
the pages, `watch_page_panels` on the watch page, `comment_posted` once per comment.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from clients import PASSWORD, bearer

from clipsync.models import Comment, Role, User, Video, VideoStatus
from clipsync.services import comments

CATEGORIES = [
    {"name": "staff", "label": "Staff room", "self_select": True, "default": True},
]

FILTER_PLUGIN = """
from clipsync import hookimpl


@hookimpl
def filter_video_json(video, data, viewer):
    return data | {
        "stamp_viewer": viewer.email,
        "title": data["title"].upper(),
        # Core keys a plugin may not change or remove, or add where ClipSync left out.
        "id": "forged",
        "hls": "https://elsewhere.example/x.m3u8",
        "status": "APPROVED",
    }
"""
# Runs second (registered later): sees the first plugin's change, returns nothing.
READER_PLUGIN = """
from clipsync import hookimpl

SEEN = []


@hookimpl
async def filter_video_json(data):
    SEEN.append(data["title"])
    data["title"] = "changed in place, returned None: not kept"
    return None
"""
BROKEN_FILTER_PLUGIN = """
from clipsync import hookimpl


@hookimpl
def filter_video_json(data):
    raise RuntimeError("broken filter")
"""

PANELS_PLUGIN = """
from markupsafe import Markup

from clipsync import hookimpl


@hookimpl
def watch_page_panels(video, viewer):
    return [
        Markup('<h2 id="course-panel">Course</h2><p>{} watches {}</p>').format(
            viewer.email, video.title
        ),
        ("panel_test.html", {"note": "<b>escaped</b>"}),
    ]
"""
BROKEN_PANELS_PLUGIN = """
from clipsync import hookimpl


@hookimpl
def watch_page_panels(video):
    raise RuntimeError("broken panel")
"""

COMMENTS_PLUGIN = """
from clipsync import hookimpl

POSTED = []


@hookimpl
def comment_posted(comment, video, author):
    POSTED.append((comment.id, str(video.id), author.email, comment.body))
"""
BROKEN_COMMENTS_PLUGIN = """
from clipsync import hookimpl


@hookimpl
def comment_posted(comment):
    raise RuntimeError("broken observer")
"""


def plugin_folder(tmp_path: Path, **sources: str) -> Path:
    folder = tmp_path / "site-plugins"
    folder.mkdir(exist_ok=True)
    for name, source in sources.items():
        (folder / f"{name}.py").write_text(source)
    return folder


@pytest.fixture
def loaded_modules():
    """Forget the plugin modules a test loaded, so the next test loads its own."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("clipsync_dir_plugin_"):
            sys.modules.pop(name, None)


async def start_site(start_app, make_settings, migrated_sqlite: Path, folder: Path, **tables):
    settings = make_settings(category=CATEGORIES, plugins={"dirs": [str(folder)]}, **tables)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    ann = await app.ctx.accounts.create_user("ann@example.org", PASSWORD, category="staff")
    return app, client, ann, app.ctx.accounts.start_session(ann).token


async def approved(owner: User, title: str = "Harbour <dawn>") -> Video:
    return await Video.create(
        owner=owner,
        title=title,
        category=owner.category,
        status=VideoStatus.APPROVED,
        duration=30.0,
    )


async def test_hook_filter_video_json_changes_the_api_and_the_pages_but_not_core_keys(
    tmp_path: Path, start_app, make_settings, migrated_sqlite: Path, loaded_modules, caplog
) -> None:
    folder = plugin_folder(
        tmp_path, a_stamp=FILTER_PLUGIN, b_reader=READER_PLUGIN, c_broken=BROKEN_FILTER_PLUGIN
    )
    _app, client, ann, token = await start_site(start_app, make_settings, migrated_sqlite, folder)
    video = await approved(ann)
    processing = await Video.create(
        owner=ann, title="draft", category="staff", status=VideoStatus.PROCESSING
    )
    headers = bearer(token)

    with caplog.at_level(logging.ERROR):
        detail = (await client.get(f"/api/videos/{video.id}", headers=headers)).json()["video"]
    assert detail["stamp_viewer"] == "ann@example.org"
    assert detail["title"] == "HARBOUR <DAWN>"  # the returned dict, not the in-place change
    assert detail["id"] == str(video.id) and detail["hls"] == f"/hls/{video.id}/master.m3u8"
    assert "plugin 'c_broken' failed while handling filter_video_json" in caplog.text
    reader = sys.modules["clipsync_dir_plugin_b_reader"]
    assert "HARBOUR <DAWN>" in reader.SEEN  # the plugins run in turn

    for url in ("/api/videos", "/api/videos?after=", "/api/videos?q=harbour"):
        items = (await client.get(url, headers=headers)).json()["items"]
        shown = {item["id"]: item for item in items}
        assert shown[str(video.id)]["stamp_viewer"] == "ann@example.org", url
    listed = {
        v["id"]: v for v in (await client.get("/api/videos", headers=headers)).json()["items"]
    }
    draft = listed[str(processing.id)]
    # Absent core keys stay absent, and the status stays the real one.
    assert "hls" not in draft and draft["status"] == "PROCESSING"

    edited = await client.patch(
        f"/api/videos/{video.id}", json={"title": "Harbour at dusk"}, headers=headers
    )
    assert edited.json()["video"]["title"] == "HARBOUR AT DUSK"

    watch = await client.get(f"/watch/{video.id}", headers=headers)
    assert '<h1 id="video-title">HARBOUR AT DUSK</h1>' in watch.text
    home = await client.get("/", headers=headers)
    assert "HARBOUR AT DUSK" in home.text


async def test_hook_watch_page_panels_show_escaped_panels_and_survive_a_broken_plugin(
    tmp_path: Path, start_app, make_settings, migrated_sqlite: Path, loaded_modules, caplog
) -> None:
    folder = plugin_folder(tmp_path, panels=PANELS_PLUGIN, broken_panels=BROKEN_PANELS_PLUGIN)
    theme = tmp_path / "themes" / "course"
    (theme / "templates").mkdir(parents=True)
    (theme / "theme.toml").write_text('name = "course"\nlabel = "Course"\n')
    (theme / "templates" / "panel_test.html").write_text(
        '<p id="template-panel">{{ note }} for {{ actor.email }}</p>\n'
    )
    _app, client, ann, token = await start_site(
        start_app,
        make_settings,
        migrated_sqlite,
        folder,
        web={"theme": "course", "themes_dirs": [str(tmp_path / "themes")]},
    )
    video = await approved(ann)
    with caplog.at_level(logging.ERROR):
        page = await client.get(f"/watch/{video.id}", headers=bearer(token))
    assert page.status_code == 200
    assert "plugin 'broken_panels' failed while handling watch_page_panels" in caplog.text
    body = page.text
    # The plugin's own HTML, with the title it escaped itself.
    assert (
        '<section class="watch-panel"><h2 id="course-panel">Course</h2>'
        "<p>ann@example.org watches Harbour &lt;dawn&gt;</p></section>"
    ) in body
    # The template panel: rendered by the theme, autoescaped, with the page's context.
    assert '<p id="template-panel">&lt;b&gt;escaped&lt;/b&gt; for ann@example.org</p>' in body
    assert body.index('id="course-panel"') < body.index('id="template-panel"')
    # The slot sits below the description, above the comments.
    assert body.index("watch-panel") < body.index('id="comments"')


async def test_watch_page_has_no_panels_without_plugins(
    tmp_path: Path, start_app, make_settings, migrated_sqlite: Path
) -> None:
    folder = plugin_folder(tmp_path)
    _app, client, ann, token = await start_site(start_app, make_settings, migrated_sqlite, folder)
    video = await approved(ann)
    page = await client.get(f"/watch/{video.id}", headers=bearer(token))
    assert page.status_code == 200 and "watch-panel" not in page.text


async def test_hook_comment_posted_runs_once_after_the_comment_is_saved(
    tmp_path: Path, start_app, make_settings, migrated_sqlite: Path, loaded_modules, caplog
) -> None:
    folder = plugin_folder(tmp_path, observer=COMMENTS_PLUGIN, grumpy=BROKEN_COMMENTS_PLUGIN)
    app, _client, ann, _token = await start_site(start_app, make_settings, migrated_sqlite, folder)
    video = await approved(ann)
    observer = sys.modules["clipsync_dir_plugin_observer"]

    with caplog.at_level(logging.ERROR):
        comment, _ = await comments.post(
            ann, video.id, "First **comment**", plugins=app.ctx.plugins
        )
    # Saved before the hook ran, and the broken observer did not undo it.
    assert await Comment.filter(id=comment.id).exists()
    posted = (comment.id, str(video.id), "ann@example.org", "First **comment**")
    assert [posted] == observer.POSTED
    assert "plugin 'grumpy' failed while handling comment_posted" in caplog.text

    reply, _ = await comments.post(ann, video.id, "A reply", comment.id, plugins=app.ctx.plugins)
    await comments.edit(ann, reply.id, "An edited reply")
    assert [posted[0] for posted in observer.POSTED] == [comment.id, reply.id]
