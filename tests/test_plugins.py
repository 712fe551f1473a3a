from __future__ import annotations

import logging
import sys
from pathlib import Path

import httpx
import pytest
from clients import PASSWORD, bearer, register

from clipsync.backends import Availability, Backends, choose, gather, select_all
from clipsync.errors import ConfigError
from clipsync.models import Role
from clipsync.plugins import PluginHost, await_me_maybe, create_plugin_host
from clipsync.settings import Settings, parse_settings

# A third-party plugin exactly as someone would write one: a storage backend with a
# setting of its own, a page under /-/<name>/, and an event observer.
MEMO_PLUGIN = '''
"""A plugin written outside ClipSync."""
from dataclasses import dataclass
from typing import ClassVar

from sanic.response import json

from clipsync import hookimpl
from clipsync.backends import Availability
from clipsync.plugins import Route

__version__ = "2.3.4"
EVENTS = []


@dataclass(frozen=True)
class MemoSettings:
    label: str = "memo"


class MemoStorage:
    name: ClassVar[str] = "memo"

    def __init__(self, label):
        self.label = label
        self.objects = {}

    @classmethod
    def probe(cls, context):
        return Availability.yes("always here")

    @classmethod
    def create(cls, context):
        return cls(context.config.label)

    async def put_stream(self, key, chunks, content_type=None):
        data = b"".join([c async for c in chunks])
        self.objects[key] = data
        return len(data)


async def hello(request):
    actor = request.ctx.actor
    return json({"hello": actor.email if actor else None})


@hookimpl
def settings_schema():
    return MemoSettings


@hookimpl
def register_storage_backends():
    return [MemoStorage]


@hookimpl
def register_routes():
    return [Route("/hello", hello)]


@hookimpl
def user_registered(user):
    EVENTS.append(("registered", user.email))


@hookimpl
async def startup(app):
    EVENTS.append(("startup", app.name))
'''


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "site-plugins"
    folder.mkdir()
    (folder / "memo.py").write_text(MEMO_PLUGIN)
    yield folder
    sys.modules.pop("clipsync_dir_plugin_memo", None)


def builtin_host(**tables) -> PluginHost:
    return create_plugin_host(
        parse_settings(tables, where="cfg"), load_entry_points=False, environ={}
    )


def test_builtins_are_registered_as_plugins() -> None:
    host = builtin_host()
    names = {p["name"]: p for p in host.describe()}
    assert set(names) == {
        "auth_local",
        "auth_oidc",
        "storage_local",
        "storage_s3",
        "transcoder_cpu",
        "transcoder_nvenc",
        "transcoder_vaapi",
        "analytics_sqlite",
        "analytics_clickhouse",
        "notify_inapp",
        "notify_email",
        "notify_webhook",
        "scan_clamav",
        "trace_otel",
    }
    assert names["auth_local"]["source"] == "built-in"
    assert "register_auth_backends" in names["auth_local"]["hooks"]


def test_disabled_plugins_are_not_loaded() -> None:
    transcoders = ["transcoder_cpu", "transcoder_nvenc", "transcoder_vaapi"]
    host = builtin_host(plugins={"disabled": transcoders})
    assert not set(transcoders) & {p["name"] for p in host.describe()}
    with pytest.raises(ConfigError, match="no loaded plugin provides a transcoder backend"):
        select_all(host, host.settings)


async def test_hook_register_storage_backends_register_routes_startup_user_registered_from_a_folder(
    plugin_dir: Path, make_settings, migrated_sqlite: Path, start_app
) -> None:
    settings = make_settings(
        plugins={"dirs": [str(plugin_dir)], "memo": {"label": "from config"}},
        storage={"backend": "memo"},
    )
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    memo = sys.modules["clipsync_dir_plugin_memo"]

    storage = app.ctx.backends.storage
    assert type(storage).__name__ == "MemoStorage" and storage.label == "from config"

    async def chunks():
        yield b"abc"

    assert await storage.put_stream("videos/x/source.mp4", chunks()) == 3

    await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    token = (await register(client, "ann@example.org"))["token"]
    assert ("registered", "ann@example.org") in memo.EVENTS
    assert ("startup", "clipsync") in memo.EVENTS

    hello = await client.get("/-/memo/hello", headers=bearer(token))
    assert hello.json() == {"hello": "ann@example.org"}

    info = {p["name"]: p for p in app.ctx.plugins.describe()}["memo"]
    assert info["version"] == "2.3.4" and info["source"] == "directory"
    storage_row = next(b for b in app.ctx.backends.describe() if b["kind"] == "storage")
    assert storage_row["active"] == "memo" and storage_row["plugin"] == "memo"


def test_plugins_are_loaded_from_the_clipsync_entry_point_group(
    tmp_path: Path, monkeypatch
) -> None:
    site = tmp_path / "site"
    (site / "clipsync_memo_ep").mkdir(parents=True)
    (site / "clipsync_memo_ep" / "__init__.py").write_text(MEMO_PLUGIN)
    dist = site / "clipsync_memo_ep-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: clipsync-memo-ep\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[clipsync]\nmemo = clipsync_memo_ep\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        host = create_plugin_host(Settings(), environ={})
        info = {p["name"]: p for p in host.describe()}["memo"]
        assert info["source"] == "entry point" and info["version"] == "1.0"
        assert "memo" in gather(host)["storage"]
    finally:
        sys.modules.pop("clipsync_memo_ep", None)


def test_two_backends_with_one_name_fail_fast(plugin_dir: Path) -> None:
    (plugin_dir / "memo2.py").write_text(MEMO_PLUGIN)
    settings = parse_settings({"plugins": {"dirs": [str(plugin_dir)]}}, where="cfg")
    host = create_plugin_host(settings, load_entry_points=False, environ={})
    with pytest.raises(ConfigError, match="storage backend 'memo' is registered by both"):
        gather(host)
    sys.modules.pop("clipsync_dir_plugin_memo2", None)


def test_a_plugin_that_fails_to_import_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    settings = parse_settings({"plugins": {"dirs": [str(tmp_path)]}}, where="cfg")
    with pytest.raises(ConfigError, match=r"plugin 'broken' .* cannot be loaded: boom"):
        create_plugin_host(settings, load_entry_points=False, environ={})


def test_a_plugin_implementing_an_unknown_hook_is_refused(tmp_path: Path) -> None:
    (tmp_path / "typo.py").write_text(
        "from clipsync import hookimpl\n\n@hookimpl\ndef user_registerd(user):\n    pass\n"
    )
    settings = parse_settings({"plugins": {"dirs": [str(tmp_path)]}}, where="cfg")
    with pytest.raises(ConfigError, match="unknown hook"):
        create_plugin_host(settings, load_entry_points=False, environ={})
    sys.modules.pop("clipsync_dir_plugin_typo", None)


async def test_hook_user_registered_errors_are_logged_not_raised(
    tmp_path: Path, make_settings, migrated_sqlite: Path, start_app, caplog
) -> None:
    (tmp_path / "plugs").mkdir()
    (tmp_path / "plugs" / "grumpy.py").write_text(
        "from clipsync import hookimpl\n\n"
        "@hookimpl\ndef user_registered(user):\n    raise ValueError('grumpy')\n"
    )
    settings = make_settings(plugins={"dirs": [str(tmp_path / "plugs")]})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    _, client = await start_app(settings)
    with caplog.at_level(logging.ERROR):
        await register(client, "ann@example.org")
    assert "plugin 'grumpy' failed while handling user_registered" in caplog.text
    sys.modules.pop("clipsync_dir_plugin_grumpy", None)


async def test_await_me_maybe_resolves_values_callables_and_awaitables() -> None:
    async def coro() -> int:
        return 3

    assert await await_me_maybe(1) == 1
    assert await await_me_maybe(lambda: 2) == 2
    assert await await_me_maybe(coro()) == 3
    assert await await_me_maybe(coro) == 3


TRUSTING_PLUGIN = '''
from clipsync import hookimpl
from clipsync_auth_local import LocalAuth


class SiteAuth(LocalAuth):
    """The local backend under another name, as a site-specific plugin would start."""

    name = "site"

    @classmethod
    def create(cls, context):
        return cls(rounds=4, key="k" * 64)


@hookimpl
def register_auth_backends():
    return [SiteAuth]
'''


async def test_hook_register_auth_backends_a_plugin_backend_signs_tokens(
    tmp_path: Path, make_settings, migrated_sqlite: Path, start_app
) -> None:
    (tmp_path / "plugs").mkdir()
    (tmp_path / "plugs" / "siteauth.py").write_text(TRUSTING_PLUGIN)
    settings = make_settings(plugins={"dirs": [str(tmp_path / "plugs")]}, auth={"backend": "site"})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    assert type(app.ctx.backends.auth).__name__ == "SiteAuth"
    token = (await register(client, "ann@example.org"))["token"]
    assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 200
    sys.modules.pop("clipsync_dir_plugin_siteauth", None)


# --- choosing a backend -----------------------------------------------------------------


class Fast:
    name = "fast"
    priority = 10

    @classmethod
    def probe(cls, context):
        return Availability.no("no such device")

    @classmethod
    def create(cls, context):
        return cls()


class Slow:
    name = "slow"
    priority = 0

    @classmethod
    def create(cls, context):
        return cls()


def registry() -> dict:
    from clipsync.backends import Registered

    return {c.name: Registered("transcoder", c.name, "test", c) for c in (Fast, Slow)}


def test_auto_picks_the_available_backend_of_highest_priority_and_says_why() -> None:
    host = builtin_host()
    selection = choose("transcoder", registry(), host, host.settings, "auto")
    assert selection.chosen.name == "slow"
    assert "fast: no such device" in selection.reason
    assert selection.probes["fast"] == Availability.no("no such device")


def test_a_named_unavailable_backend_stops_start_up_with_its_reason() -> None:
    host = builtin_host()
    with pytest.raises(
        ConfigError, match=r"\[transcoder\] backend = 'fast': unavailable: no such device"
    ):
        choose("transcoder", registry(), host, host.settings, "fast")


def test_a_named_unavailable_backend_falls_back_when_configured() -> None:
    host = builtin_host()
    selection = choose("transcoder", registry(), host, host.settings, "fast", fallback="slow")
    assert selection.chosen.name == "slow"
    assert selection.reason == "fallback: fast is unavailable (no such device)"


def test_an_unknown_backend_name_lists_the_known_ones() -> None:
    host = builtin_host(storage={"backend": "s4"})
    with pytest.raises(
        ConfigError,
        match=r"\[storage\] backend = 's4': no plugin provides it \(available: local, s3\)",
    ):
        select_all(host, host.settings)


def test_hook_register_transcoders_cpu_is_chosen_by_auto_here() -> None:
    host = builtin_host()
    backends = Backends(select_all(host, host.settings))
    row = next(b for b in backends.describe() if b["kind"] == "transcoder")
    assert row["active"] == "cpu"
    assert row["probes"]["cpu"]["ok"], row


def test_the_cpu_transcoder_probe_reports_a_missing_ffmpeg() -> None:
    host = builtin_host(plugins={"transcoder_cpu": {"ffmpeg": "/nonexistent/ffmpeg"}})
    with pytest.raises(
        ConfigError, match=r"no transcoder backend can work here .*ffmpeg not found"
    ):
        select_all(host, host.settings)


# --- /-/plugins -------------------------------------------------------------------------------


async def test_plugins_page_is_for_admins(app, client: httpx.AsyncClient) -> None:
    user_token = (await register(client, "user@example.org"))["token"]
    await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    admin = await client.post(
        "/api/auth/login", json={"email": "admin@example.org", "password": PASSWORD}
    )
    admin_token = admin.json()["token"]

    assert (await client.get("/-/plugins.json")).status_code == 401
    assert (await client.get("/-/plugins.json", headers=bearer(user_token))).status_code == 403
    report = (await client.get("/-/plugins.json", headers=bearer(admin_token))).json()
    assert {p["name"] for p in report["plugins"]} >= {
        "auth_local",
        "storage_local",
        "transcoder_cpu",
    }
    assert {b["kind"]: b["active"] for b in report["backends"]} == {
        "storage": "local",
        "transcoder": "cpu",
        "auth": "local",
        "analytics": "sqlite",
    }
    page = await client.get("/-/plugins", headers=bearer(admin_token))
    assert page.status_code == 200
    assert (
        "storage_local" in page.text
        and "auto: the available backend of highest priority" in page.text
    )
