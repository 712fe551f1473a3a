"""Finding 10: numbers in URLs that used to crash the server answer 400 or 404.

`page=99999999999999999999999` overflowed the database's row offset and
`/api/admin/users/9999…` its integer key, both as a 500. Every page-number and id
parameter of the API and the pages is tried here with values too large, negative,
malformed or written in ways Python's int() accepts but a URL should not, on SQLite
and on PostgreSQL (whose `integer` keys end at 2**31 - 1); so are the numbers in
headers: a resumable upload's Upload-Length and Upload-Offset, and byte ranges.
"""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

import httpx
import pytest
from clients import PASSWORD, bearer

from clipsync import db
from clipsync.context import ClipSyncApp
from clipsync.models import Role, Video, VideoStatus
from clipsync.storage import keys

_databases = itertools.count()

HUGE = "99999999999999999999999"
BAD_PAGES = [HUGE, "1000001", "0", "-1", "abc", "1.5", "1_000", "%2B3", "٣", "9" * 5000]
PAGED_API = [
    "/api/videos",
    "/api/videos?mine=1",
    "/api/videos?q=clip",
    "/api/admin/videos/pending",
    "/api/admin/audit",
    "/api/admin/users",
]
PAGED_PAGES = ["/", "/?q=clip", "/videos", "/admin", "/admin/users", "/admin/audit"]


@pytest.fixture(params=["sqlite", "postgres"])
async def site(request, start_app, make_settings, migrated_sqlite: Path):
    tables: dict = {}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        tables["database"] = {"url": server.create_database(f"bounds_{next(_databases)}")}
    settings = make_settings(**tables)
    if request.param == "postgres":
        await db.migrate(settings)
    else:
        settings.data_dir.mkdir(parents=True)
        (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    return client, bearer(app.ctx.accounts.start_session(admin).token)


def joined(path: str, query: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{query}"


@pytest.mark.parametrize("value", BAD_PAGES, ids=lambda v: v[:12])
async def test_page_numbers_out_of_range_answer_400(site, value: str) -> None:
    client, headers = site
    for path in PAGED_API + PAGED_PAGES:
        for name in ("page", "pageSize") if path.startswith("/api/") else ("page",):
            answer = await client.get(joined(path, f"{name}={value}"), headers=headers)
            assert answer.status_code == 400, f"{path} {name}={value[:30]}: {answer.status_code}"


async def test_the_largest_page_allowed_answers_an_empty_page(site) -> None:
    client, headers = site
    for path in PAGED_API:
        answer = await client.get(joined(path, "page=1000000&pageSize=100"), headers=headers)
        assert answer.status_code == 200, f"{path}: {answer.text}"
        assert answer.json()["items"] == []
    for path in PAGED_PAGES:
        answer = await client.get(joined(path, "page=1000000"), headers=headers)
        assert answer.status_code == 200, path


@pytest.mark.parametrize("number", ["2147483648", "9223372036854775808", HUGE, "0", "-5"])
async def test_ids_no_row_can_have_answer_404(site, number: str) -> None:
    client, headers = site
    account = await client.patch(
        f"/api/admin/users/{number}", json={"role": "editor"}, headers=headers
    )
    assert account.status_code == 404, account.text
    invite = await client.delete(f"/api/admin/invites/{number}", headers=headers)
    assert invite.status_code == 404, invite.text


async def test_the_largest_id_answers_404_not_500(site) -> None:
    client, headers = site
    largest = 2**31 - 1
    account = await client.patch(
        f"/api/admin/users/{largest}", json={"role": "editor"}, headers=headers
    )
    assert account.status_code == 404, account.text
    assert (
        await client.delete(f"/api/admin/invites/{largest}", headers=headers)
    ).status_code == 404


async def test_pages_of_ids_that_are_not_uuids_answer_404(site) -> None:
    client, headers = site
    for path in (f"/api/videos/{HUGE}", f"/watch/{HUGE}", f"/analytics/videos/{HUGE}"):
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 404, path


async def test_an_api_client_gets_the_reason_as_json(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    headers = bearer(app.ctx.accounts.start_session(admin).token)
    answer = await client.get(f"/api/videos?page={HUGE}", headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"
    assert "page" in answer.json()["error"]["message"]


TUS = {"Tus-Resumable": "1.0.0"}
# Bytes as sent: b"\xb2" is "²" (a digit to str.isdigit(), not to int()).
BAD_BYTE_COUNTS = [b"9" * 5000, b"\xb2", b"99999999999999999999", b"-1", b"1e3"]


async def test_resumable_upload_byte_counts_out_of_range_answer_400(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    headers = bearer(app.ctx.accounts.start_session(admin).token) | TUS
    metadata = {"Upload-Metadata": "filename " + base64.b64encode(b"a.mp4").decode()}
    for length in BAD_BYTE_COUNTS:
        created = await client.post(
            "/api/uploads/", headers=headers | metadata | {"Upload-Length": length}
        )
        assert created.status_code in (400, 413), f"Upload-Length {length[:20]!r}: {created.text}"
    created = await client.post(
        "/api/uploads/", headers=headers | metadata | {"Upload-Length": "4"}
    )
    assert created.status_code == 201, created.text
    for offset in BAD_BYTE_COUNTS:
        sent = await client.patch(
            created.headers["location"],
            content=b"data",
            headers=headers
            | {"Upload-Offset": offset, "Content-Type": "application/offset+octet-stream"},
        )
        assert sent.status_code == 400, f"Upload-Offset {offset[:20]!r}: {sent.text}"


async def test_a_byte_range_too_long_to_be_one_is_ignored_not_a_500(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    headers = bearer(app.ctx.accounts.start_session(admin).token)
    video = await Video.create(
        owner=admin, title="Ranges", category="general", status=VideoStatus.READY, duration=3.0
    )

    async def body(data: bytes):
        yield data

    # A segment, whose ranges are honoured (a playlist is rendered and always sent whole).
    segment = b"\x00\x00\x00\x08moof" * 100
    await app.ctx.backends.storage.put_stream(
        keys.hls_key(video.id, "360p/seg_00000.m4s"), body(segment)
    )
    url = f"/hls/{video.id}/360p/seg_00000.m4s"
    for asked in ("bytes=0-" + "9" * 5000, "bytes=-" + "9" * 5000):
        answer = await client.get(url, headers=headers | {"Range": asked})
        assert answer.status_code == 200 and answer.content == segment, asked[:20]
    answer = await client.get(url, headers=headers | {"Range": "bytes=2-5"})
    assert answer.status_code == 206 and answer.content == segment[2:6]
    answer = await client.get(url, headers=headers | {"Range": "bytes=" + "9" * 19 + "-"})
    assert answer.status_code == 416
