"""Captions through the API, the HLS master playlist and the edit page: who may add,
replace, list and delete them; bad files refused with nothing stored; the SUBTITLES
group served for local storage and presigned S3 playback; gone with the video."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import bearer, error_of
from services import S3Server
from test_library import site, video  # noqa: F401  (the `site` fixture)
from test_s3_playback import open_s3, people, s3_app, stored_video  # noqa: F401

from clipsync.models import AuditEntry, Caption
from clipsync.sessions import CSRF_COOKIE
from clipsync.storage import keys

SRT = b"1\r\n00:00:01,000 --> 00:00:02,000\r\nBonjour <i>tout le monde</i>\r\n"
VTT = b"WEBVTT\n\n00:01.000 --> 00:02.000\nHello\n"


def files(data: bytes = SRT, name: str = "fr.srt") -> dict[str, Any]:
    return {"file": (name, data, "application/x-subrip")}


async def upload(
    client: httpx.AsyncClient, video_id: Any, token: str, language: str = "fr", **form: Any
) -> httpx.Response:
    data = {"language": language, **{k: v for k, v in form.items() if k != "body"}}
    return await client.post(
        f"/api/videos/{video_id}/captions",
        data=data,
        files=files(form.get("body", SRT)),
        headers=bearer(token),
    )


async def stored(app, video_id) -> list[str]:
    return sorted(await app.ctx.backends.storage.list(f"{keys.video_prefix(video_id)}/captions"))


async def test_the_owner_uploads_lists_replaces_and_deletes_captions(site) -> None:  # noqa: F811
    app, client, people = site
    owner, token = people["uploader"]
    clip = await video(app, owner)
    response = await upload(client, clip.id, token)
    assert response.status_code == 201, response.text
    caption = response.json()["caption"]
    assert caption["language"] == "fr" and caption["label"] == "Français"
    assert caption["url"] == f"/hls/{clip.id}/captions/fr.vtt"
    vtt = b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nBonjour <i>tout le monde</i>\n"
    assert caption["size"] == len(vtt)
    assert await stored(app, clip.id) == [keys.caption_key(clip.id, "fr")]

    # Same language, any case: replaced in place, 200.
    response = await upload(client, clip.id, token, "FR", label="French (CC)", body=VTT)
    assert response.status_code == 200, response.text
    assert response.json()["caption"]["label"] == "French (CC)"
    await upload(client, clip.id, token, "pt-br")
    # A colleague who may watch it may list them, and read the files.
    listing = await client.get(
        f"/api/videos/{clip.id}/captions", headers=bearer(people["viewer"][1])
    )
    assert [(c["language"], c["label"]) for c in listing.json()["items"]] == [
        ("fr", "French (CC)"),
        ("pt-BR", "Português (Brasil)"),
    ]
    served = await client.get(
        f"/hls/{clip.id}/captions/fr.vtt", headers=bearer(people["viewer"][1])
    )
    assert (
        served.status_code == 200
        and served.text == "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n"
    )
    assert served.headers["content-type"].startswith("text/vtt")
    assert served.headers["cache-control"] == "private, no-cache"
    actions = await AuditEntry.filter(video_id=clip.id).values_list("action", flat=True)
    assert sorted(actions) == ["caption_replace", "caption_upload", "caption_upload"]

    deleted = await client.delete(f"/api/videos/{clip.id}/captions/fr", headers=bearer(token))
    assert deleted.status_code == 204
    assert await stored(app, clip.id) == [keys.caption_key(clip.id, "pt-BR")]
    assert await Caption.filter(video_id=clip.id).values_list("language", flat=True) == ["pt-BR"]
    again = await client.delete(f"/api/videos/{clip.id}/captions/fr", headers=bearer(token))
    assert again.status_code == 404
    gone = await client.get(f"/hls/{clip.id}/captions/fr.vtt", headers=bearer(token))
    assert gone.status_code == 404


async def test_moderators_may_and_others_get_404(site) -> None:  # noqa: F811
    app, client, people = site
    clip = await video(app, people["uploader"][0])
    for name in ("editor", "admin"):
        response = await upload(client, clip.id, people[name][1], "en")
        assert response.status_code in (200, 201), (name, response.text)
    assert (await Caption.get(video_id=clip.id)).created_by_id == people["admin"][0].id
    # A colleague sees the video but may not change its captions; a dealer sees nothing.
    for name in ("viewer", "dealer"):
        token = people[name][1]
        response = await upload(client, clip.id, token, "de")
        assert response.status_code == 404 and error_of(response)["code"] == "not_found"
        assert (
            await client.delete(f"/api/videos/{clip.id}/captions/en", headers=bearer(token))
        ).status_code == 404
    listing = await client.get(
        f"/api/videos/{clip.id}/captions", headers=bearer(people["dealer"][1])
    )
    assert listing.status_code == 404
    assert await stored(app, clip.id) == [keys.caption_key(clip.id, "en")]
    assert (await client.get(f"/api/videos/{clip.id}/captions")).status_code == 401


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"language": "french"}, "language", "language must be a language tag"),
        ({"language": ""}, "language", "language must be a language tag"),
        ({"body": b"not captions"}, "file", "neither WebVTT"),
        ({"body": b"WEBVTT\n\n00:01.000 --> 00:02.000\n<script>x</script>"}, "file", "HTML markup"),
        ({"body": b"\xff\xfe\x00"}, "file", "not UTF-8"),
        ({"body": b""}, "file", "Choose a caption file"),
        ({"label": "x" * 65}, "label", "at most 64"),
        ({"label": 'say "hi"'}, "label", "double quote"),
        ({"label": "a\u202eb"}, "label", "invisible"),
    ],
)
async def test_bad_uploads_are_422_and_store_nothing(site, form, field, message) -> None:  # noqa: F811
    app, client, people = site
    clip = await video(app, people["uploader"][0])
    await upload(client, clip.id, people["uploader"][1], "en", body=VTT)
    language = form.pop("language", "en")
    response = await upload(client, clip.id, people["uploader"][1], language, **form)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["field"] == field and message in error["message"]
    # The English track stays as it was.
    served = await client.get(
        f"/hls/{clip.id}/captions/en.vtt", headers=bearer(people["uploader"][1])
    )
    assert served.text == "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n"
    assert await Caption.filter(video_id=clip.id).count() == 1


async def test_too_large_and_not_multipart_are_refused(site) -> None:  # noqa: F811
    app, client, people = site
    clip = await video(app, people["uploader"][0])
    token = people["uploader"][1]
    big = b"WEBVTT\n\n00:01.000 --> 00:02.000\n" + b"x" * (1024 * 1024)
    response = await upload(client, clip.id, token, body=big)
    assert response.status_code == 413 and "at most 1 MiB" in error_of(response)["message"]
    # Without a Content-Length (chunked), the body is cut off as it arrives.
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.vtt"\r\n\r\n'
    ).encode()

    async def chunked():
        yield head
        for _ in range(20):
            yield b"x" * 64 * 1024

    response = await client.post(
        f"/api/videos/{clip.id}/captions",
        content=chunked(),
        headers={**bearer(token), "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    response = await client.post(
        f"/api/videos/{clip.id}/captions", json={"language": "fr"}, headers=bearer(token)
    )
    assert response.status_code == 400
    assert await stored(app, clip.id) == []


async def test_the_master_playlist_lists_captions_added_after_the_transcode(site) -> None:  # noqa: F811
    app, client, people = site
    clip = await video(app, people["uploader"][0])
    master_key = keys.hls_key(clip.id, "master.m3u8")
    master = (
        "#EXTM3U\n#EXT-X-VERSION:7\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=426x240\n240p/index.m3u8\n"
    )

    async def body():
        yield master.encode()

    await app.ctx.backends.storage.put_stream(master_key, body())
    viewer = bearer(people["viewer"][1])
    plain = await client.get(f"/hls/{clip.id}/master.m3u8", headers=viewer)
    assert plain.text == master and "SUBTITLES" not in plain.text

    await upload(client, clip.id, people["uploader"][1], "fr")
    merged = await client.get(f"/hls/{clip.id}/master.m3u8", headers=viewer)
    assert merged.status_code == 200
    assert merged.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert merged.headers["cache-control"] == "private, no-cache"
    assert (
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Français",LANGUAGE="fr",'
        'DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="captions/fr.m3u8"'
    ) in merged.text
    assert '#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=426x240,SUBTITLES="subs"' in merged.text
    head = await client.head(f"/hls/{clip.id}/master.m3u8", headers=viewer)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(merged.content)

    playlist = await client.get(f"/hls/{clip.id}/captions/fr.m3u8", headers=viewer)
    assert playlist.status_code == 200
    assert playlist.text.splitlines()[-3:] == ["#EXTINF:10.000,", "fr.vtt", "#EXT-X-ENDLIST"]
    for path in ("captions/de.m3u8", "captions/de.vtt", "captions/fr.txt", "captions/../x.vtt"):
        assert (await client.get(f"/hls/{clip.id}/{path}", headers=viewer)).status_code == 404
    for path in ("master.m3u8", "captions/fr.m3u8", "captions/fr.vtt"):
        outsider = await client.get(f"/hls/{clip.id}/{path}", headers=bearer(people["dealer"][1]))
        assert outsider.status_code == 404

    # Deleted: the master playlist is the stored one again.
    await client.delete(f"/api/videos/{clip.id}/captions/fr", headers=bearer(people["uploader"][1]))
    assert (await client.get(f"/hls/{clip.id}/master.m3u8", headers=viewer)).text == master


async def test_captions_go_with_the_video(site) -> None:  # noqa: F811
    app, client, people = site
    clip = await video(app, people["uploader"][0])
    await upload(client, clip.id, people["uploader"][1], "fr")
    assert await stored(app, clip.id) == [keys.caption_key(clip.id, "fr")]
    response = await client.delete(f"/api/videos/{clip.id}", headers=bearer(people["uploader"][1]))
    assert response.status_code == 204
    assert await app.ctx.backends.storage.list(keys.video_prefix(clip.id)) == []
    assert await Caption.filter(video_id=clip.id).count() == 0


async def test_presigned_playback_signs_the_caption_file(
    start_app,
    make_settings,
    migrated_sqlite: Path,
    open_s3: S3Server,  # noqa: F811
) -> None:
    app, client, bucket = await s3_app(
        start_app, make_settings, migrated_sqlite, open_s3, playback="presigned"
    )
    who = await people(app, client)
    clip = await stored_video(app, who["owner"][0])
    response = await upload(client, clip.id, who["owner"][1], "fr")
    assert response.status_code == 201, response.text
    viewer = bearer(who["colleague"][1])
    master = await client.get(f"/hls/{clip.id}/master.m3u8", headers=viewer)
    assert 'URI="captions/fr.m3u8"' in master.text and 'SUBTITLES="subs"' in master.text
    playlist = await client.get(f"/hls/{clip.id}/captions/fr.m3u8", headers=viewer)
    assert playlist.headers["cache-control"] == "private, no-store"
    uri = next(line for line in playlist.text.splitlines() if line and not line.startswith("#"))
    assert uri.startswith(f"{open_s3.url}/{bucket}/media/videos/{clip.id}/captions/fr.vtt?")
    assert re.search(r"X-Amz-Expires=307\b", uri)
    async with httpx.AsyncClient(trust_env=False) as s3:
        fetched = await s3.get(uri)
    assert fetched.status_code == 200 and fetched.text.startswith("WEBVTT\n\n00:00:01.000")
    assert fetched.headers["content-type"].startswith("text/vtt")


async def test_the_edit_page_adds_and_deletes_captions_without_javascript(site) -> None:  # noqa: F811
    app, client, people = site
    owner, token = people["uploader"]
    clip = await video(app, owner)
    client.cookies.set("clipsync_session", token)
    page = await client.get(f"/videos/{clip.id}/edit")
    assert page.status_code == 200 and "No captions yet." in page.text
    csrf = (
        client.cookies.get(CSRF_COOKIE)
        or re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    )
    client.cookies.set(CSRF_COOKIE, csrf)
    sent = await client.post(
        f"/videos/{clip.id}/captions",
        data={"csrf_token": csrf, "language": "fr", "label": ""},
        files=files(),
    )
    assert sent.status_code == 303 and sent.headers["location"].endswith(
        "/edit?captions=fr#captions"
    )
    page = await client.get(f"/videos/{clip.id}/edit?captions=fr")
    assert "Français" in page.text and "The fr captions are saved." in page.text

    refused = await client.post(
        f"/videos/{clip.id}/captions",
        data={"csrf_token": csrf, "language": "de"},
        files=files(b"<script>alert(1)</script>"),
    )
    assert refused.status_code == 422 and 'id="caption-error"' in refused.text
    assert 'value="de"' in refused.text
    no_csrf = await client.post(
        f"/videos/{clip.id}/captions", data={"language": "de"}, files=files()
    )
    assert no_csrf.status_code == 403

    deleted = await client.post(f"/videos/{clip.id}/captions/fr/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert await Caption.filter(video_id=clip.id).count() == 0
    # Someone else's video: 404, nothing stored.
    client.cookies.set("clipsync_session", people["viewer"][1])
    other = await client.post(
        f"/videos/{clip.id}/captions", data={"csrf_token": csrf, "language": "de"}, files=files()
    )
    assert other.status_code == 404
    assert await stored(app, clip.id) == []


async def test_the_video_json_has_chapters(site) -> None:  # noqa: F811
    app, client, people = site
    clip = await video(app, people["uploader"][0], description="Hi\n0:00 Start\n0:05 Middle")
    shown = await client.get(f"/api/videos/{clip.id}", headers=bearer(people["viewer"][1]))
    assert shown.json()["video"]["chapters"] == [
        {"start": 0, "title": "Start"},
        {"start": 5, "title": "Middle"},
    ]
