"""Signed segment URLs (clipsync/delivery.py), the files behind them, and sendfile.

Media playlists from local storage give each segment a URL signed for the viewer; a
segment request is served on that signature alone, with no database query and no
session lookup; anything wrong about the signature is one 403 that says nothing
about the file; revocation is honoured by the next playlist fetch. The last tests
run clipsync/sendfile.py under a real Sanic server, where the kernel sends the bytes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from clients import PASSWORD, bearer, error_of, register
from services import free_port
from tortoise import connections

from clipsync import delivery
from clipsync.context import ClipSyncApp
from clipsync.errors import ConfigError, Forbidden
from clipsync.media import playlists
from clipsync.models import Role, User, Video, VideoStatus
from clipsync.settings import parse_settings
from clipsync.storage import keys

MEDIA = (
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    '#EXT-X-MAP:URI="init.mp4"\n'
    "#EXTINF:4.000000,\nseg_00001.m4s\n#EXTINF:2.500000,\nseg_00002.m4s\n#EXT-X-ENDLIST\n"
)
MASTER = (
    "#EXTM3U\n#EXT-X-VERSION:7\n"
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="audio",DEFAULT=YES,URI="audio/index.m3u8"\n'
    '#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=640x360,AUDIO="aud"\n360p/index.m3u8\n'
)
SEGMENT = bytes(range(256)) * 1500  # 384 000 bytes
FILES = {
    "master.m3u8": MASTER.encode(),
    "360p/index.m3u8": MEDIA.encode(),
    "360p/init.mp4": b"init segment " * 10,
    "360p/seg_00001.m4s": SEGMENT,
    "360p/seg_00002.m4s": b"second segment",
    "poster.jpg": b"\xff\xd8 a poster",
    "posters/abc123.jpg": b"\xff\xd8 an uploaded poster",
}
SEGMENT_PATH = "360p/seg_00001.m4s"


# --- the signature, pure ----------------------------------------------------------------


def tampered(signature: str) -> str:
    """The signature with its first character changed (the last may hold only padding
    bits, and a fixed replacement is sometimes the character already there)."""
    return ("B" if signature[0] == "A" else "A") + signature[1:]


def test_a_signature_names_one_file_of_one_video_for_one_subject_until_its_expiry() -> None:
    signer = delivery.Signer(b"k" * 32)
    video, other = uuid.uuid4(), uuid.uuid4()
    now = 1_800_000_000
    query = parse_qs(signer.query(video, SEGMENT_PATH, "s:abc", now + 60))
    args = {name: values[0] for name, values in query.items()}
    assert signer.verify(video, SEGMENT_PATH, args, now=now) == delivery.Grant("s:abc", now + 60)
    refused = [
        (other, SEGMENT_PATH, args, now),  # another video's
        (video, "360p/seg_00002.m4s", args, now),  # another file's
        (video, SEGMENT_PATH, {**args, "sub": "s:abd"}, now),  # another subject
        (video, SEGMENT_PATH, {**args, "exp": str(now + 6000)}, now),  # a longer life
        (video, SEGMENT_PATH, args, now + 60),  # expired
        (video, SEGMENT_PATH, {**args, "sig": tampered(args["sig"])}, now),
        (video, SEGMENT_PATH, {**args, "sig": ""}, now),
        (video, SEGMENT_PATH, {"sig": args["sig"]}, now),
    ]
    for case in refused:
        with pytest.raises(Forbidden):
            signer.verify(*case[:3], now=case[3])
    with pytest.raises(Forbidden):  # another key
        delivery.Signer(b"j" * 32).verify(video, SEGMENT_PATH, args, now=now)


def test_segment_urls_expire_after_the_moment_playback_reaches_them() -> None:
    seen: list[tuple[str, float]] = []

    def query(path: str, start: float) -> str:
        seen.append((path, start))
        return f"t={start:g}"

    text = playlists.with_signed_uris(MEDIA, "360p/index.m3u8", query)
    assert seen == [("360p/init.mp4", 0), ("360p/seg_00001.m4s", 0), ("360p/seg_00002.m4s", 4)]
    assert '#EXT-X-MAP:URI="init.mp4?t=0"' in text
    assert "\nseg_00002.m4s?t=4\n" in text
    assert text.replace("?t=0", "").replace("?t=4", "") == MEDIA
    settings = parse_settings({"delivery": {"segment_url_seconds": 90}}, where="test")
    assert delivery.segment_expiry(settings, 4.0, now=1000.5) == 1000 + 4 + 90


def test_a_master_playlist_gets_every_uri_signed_and_foreign_uris_are_kept() -> None:
    text = playlists.with_signed_uris(MASTER, "master.m3u8", lambda path, start: f"p={path}")
    assert 'URI="audio/index.m3u8?p=audio/index.m3u8"' in text
    assert "\n360p/index.m3u8?p=360p/index.m3u8\n" in text
    foreign = "#EXTM3U\n#EXTINF:4,\nhttps://cdn.example/x.m4s\n#EXTINF:4,\n../../escape.m4s\n"
    assert playlists.with_signed_uris(foreign, "360p/index.m3u8", lambda p, s: "x=1") == foreign


@pytest.mark.parametrize("prefix", ["media/", "/media", "/", "/a b/", "//x/"])
def test_a_malformed_accel_redirect_prefix_stops_start_up(prefix: str) -> None:
    with pytest.raises(ConfigError, match="accel_redirect_prefix"):
        parse_settings({"delivery": {"accel_redirect_prefix": prefix}}, where="test")


# --- through the app --------------------------------------------------------------------


async def store_files(app: ClipSyncApp, owner: User, status: VideoStatus) -> Video:
    video = await Video.create(
        owner=owner, title="Clip", category=owner.category, status=status, duration=6.5
    )

    async def body(data: bytes):
        yield data

    for path, data in FILES.items():
        await app.ctx.backends.storage.put_stream(keys.hls_key(video.id, path), body(data))
    return video


def signed_uris(playlist: str) -> dict[str, str]:
    """The playlist's URIs by file name: `seg_00001.m4s` -> `seg_00001.m4s?sub=…`."""
    found = {}
    for line in playlist.splitlines():
        uri = line.split('URI="', 1)[1].split('"', 1)[0] if 'URI="' in line else line
        if uri and not uri.startswith("#"):
            found[uri.split("?", 1)[0]] = uri
    return found


@pytest.fixture
async def owner(app: ClipSyncApp, client: httpx.AsyncClient) -> tuple[User, str]:
    token = (await register(client, "owner@example.org"))["token"]
    return await User.get(email="owner@example.org"), token


async def media_playlist(client: httpx.AsyncClient, video: Video, token: str) -> dict[str, str]:
    response = await client.get(f"/hls/{video.id}/360p/index.m3u8", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, no-store"
    return signed_uris(response.text)


async def test_a_media_playlist_signs_its_segments_and_they_play_with_no_credentials(
    app, client, owner
) -> None:
    video = await store_files(app, owner[0], VideoStatus.READY)
    uris = await media_playlist(client, video, owner[1])
    assert set(uris) == {"init.mp4", "seg_00001.m4s", "seg_00002.m4s"}
    subject = parse_qs(uris["seg_00001.m4s"].split("?", 1)[1])["sub"][0]
    assert subject.startswith("s:")  # the session of the token (its `sid`)
    for name, uri in uris.items():
        response = await client.get(f"/hls/{video.id}/360p/{uri}")
        assert response.status_code == 200, name
        assert response.content == FILES[f"360p/{name}"]
        assert response.headers["cache-control"] == "private, max-age=31536000, immutable"
    ranged = await client.get(
        f"/hls/{video.id}/360p/{uris['seg_00001.m4s']}", headers={"Range": "bytes=1000-1999"}
    )
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == f"bytes 1000-1999/{len(SEGMENT)}"
    assert ranged.content == SEGMENT[1000:2000]


async def test_a_signed_segment_request_makes_no_query_and_no_session_lookup(
    app, client, owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = await store_files(app, owner[0], VideoStatus.READY)
    uri = (await media_playlist(client, video, owner[1]))["seg_00001.m4s"]
    queries: list[str] = []
    database = type(connections.get("sqlite"))
    for method in ("execute_query", "execute_query_dict", "execute_insert", "execute_script"):
        original = getattr(database, method)

        def spy(self, *args, _original=original, _name=method, **kwargs):
            queries.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(database, method, spy)
    lookups: list[str] = []
    identify = app.ctx.accounts.identify

    async def counted(token: str):
        lookups.append(token)
        return await identify(token)

    monkeypatch.setattr(app.ctx.accounts, "identify", counted)
    # With the session cookie too, as a browser sends it: the signature alone decides.
    client.cookies.set("clipsync_session", owner[1])
    response = await client.get(f"/hls/{video.id}/360p/{uri}")
    assert response.status_code == 200 and response.content == SEGMENT
    assert queries == [] and lookups == []
    # The spy works: a playlist request queries (or hits the cache) and looks the token up.
    await client.get(f"/hls/{video.id}/360p/index.m3u8")
    assert lookups


async def test_a_wrong_signature_is_one_403_whether_or_not_the_file_exists(
    app, client, owner
) -> None:
    video = await store_files(app, owner[0], VideoStatus.READY)
    other = await store_files(app, owner[0], VideoStatus.READY)
    uri = (await media_playlist(client, video, owner[1]))["seg_00001.m4s"]
    query = uri.split("?", 1)[1]
    args = {k: v[0] for k, v in parse_qs(query).items()}
    signer = delivery.signer_for(app.ctx.settings)
    expired = signer.query(video.id, SEGMENT_PATH, args["sub"], int(time.time()) - 1)
    tampered = urlencode({**args, "sig": args["sig"][::-1]})
    answers = [
        await client.get(f"/hls/{video.id}/360p/seg_00002.m4s?{query}"),  # another file's
        await client.get(f"/hls/{other.id}/{SEGMENT_PATH}?{query}"),  # another video's
        await client.get(f"/hls/{video.id}/{SEGMENT_PATH}?{expired}"),
        await client.get(f"/hls/{video.id}/{SEGMENT_PATH}?{tampered}"),
        await client.get(f"/hls/{video.id}/360p/missing.m4s?{tampered}"),  # no such file
        await client.get(f"/hls/{uuid.uuid4()}/{SEGMENT_PATH}?{query}"),  # no such video
        await client.get(f"/hls/{video.id}/..%2fsource.mp4?{query}"),
    ]
    assert [a.status_code for a in answers] == [403] * len(answers)
    assert len({str(error_of(a)) for a in answers}) == 1
    assert all(SEGMENT[:100] not in a.content for a in answers)
    # A good signature for a file that is not there: the signer vouched for the path.
    missing = signer.query(video.id, "360p/missing.m4s", args["sub"], int(time.time()) + 60)
    assert (await client.get(f"/hls/{video.id}/360p/missing.m4s?{missing}")).status_code == 404


async def test_revocation_is_honoured_by_the_next_playlist_fetch(app, client, owner) -> None:
    video = await store_files(app, owner[0], VideoStatus.APPROVED)
    viewer = await register(client, "viewer@example.org")
    uri = (await media_playlist(client, video, viewer["token"]))["seg_00001.m4s"]
    assert (await client.post("/api/auth/logout", headers=bearer(viewer["token"]))).is_success
    again = await client.get(f"/hls/{video.id}/360p/index.m3u8", headers=bearer(viewer["token"]))
    assert again.status_code == 401
    # What the playlist handed out lives on until it expires: no session lookup.
    assert (await client.get(f"/hls/{video.id}/360p/{uri}")).status_code == 200
    # Unpublished by an administrator: the next playlist fetch is refused.
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    other = await register(client, "other@example.org")
    await media_playlist(client, video, other["token"])
    done = await client.post(
        f"/api/admin/videos/{video.id}/unpublish",
        json={"reason": "Later"},
        headers=bearer(app.ctx.accounts.start_session(admin).token),
    )
    assert done.status_code == 200, done.text
    refused = await client.get(f"/hls/{video.id}/360p/index.m3u8", headers=bearer(other["token"]))
    assert refused.status_code == 404


async def test_posters_and_images_are_privately_cached(app, client, owner) -> None:
    video = await store_files(app, owner[0], VideoStatus.READY)
    poster = await client.get(f"/hls/{video.id}/poster.jpg", headers=bearer(owner[1]))
    assert poster.headers["cache-control"] == "private, max-age=86400"
    assert poster.headers["content-type"] == "image/jpeg"
    uploaded = await client.get(f"/hls/{video.id}/posters/abc123.jpg", headers=bearer(owner[1]))
    assert uploaded.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert uploaded.content == FILES["posters/abc123.jpg"]


async def test_with_an_accel_prefix_the_front_is_told_which_file_to_send(
    start_app, make_settings, settings, migrated_sqlite
) -> None:
    import shutil

    accel = make_settings(delivery={"accel_redirect_prefix": "/_clipsync_media/"})
    accel.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, accel.data_dir / "clipsync.sqlite3")
    app, client = await start_app(accel)
    token = (await register(client, "owner@example.org"))["token"]
    video = await store_files(app, await User.get(email="owner@example.org"), VideoStatus.READY)
    uri = (await media_playlist(client, video, token))["seg_00001.m4s"]
    response = await client.get(f"/hls/{video.id}/360p/{uri}")
    assert response.status_code == 200
    assert response.headers["x-accel-redirect"] == (
        f"/_clipsync_media/{keys.hls_key(video.id, SEGMENT_PATH)}"
    )
    assert response.content == b""
    assert response.headers["cache-control"] == "private, max-age=31536000, immutable"
    refused = await client.get(f"/hls/{video.id}/360p/{uri.replace('sig=', 'sig=x')}")
    assert refused.status_code == 403 and "x-accel-redirect" not in refused.headers
    # Playlists still come from the app, signed.
    playlist = await client.get(f"/hls/{video.id}/360p/index.m3u8", headers=bearer(token))
    assert "x-accel-redirect" not in playlist.headers and "?sub=" in playlist.text


async def test_a_sessionless_token_signs_for_its_user(app, client) -> None:
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    token = app.ctx.accounts.start_session(admin).token
    video = await store_files(app, admin, VideoStatus.READY)
    uri = (await media_playlist(client, video, token))["seg_00001.m4s"]
    assert parse_qs(uri.split("?", 1)[1])["sub"] == [f"u:{admin.id}"]
    assert (await client.get(f"/hls/{video.id}/360p/{uri}")).status_code == 200
    # Such a subject never opens a playlist on its own.
    query = delivery.signer_for(app.ctx.settings).query(
        video.id, "360p/index.m3u8", f"u:{admin.id}", int(time.time()) + 60
    )
    assert (await client.get(f"/hls/{video.id}/360p/index.m3u8?{query}")).status_code == 403


# --- sendfile under a real server ----------------------------------------------------------

SERVER = """
import sys
from pathlib import Path
from sanic import Sanic
from clipsync.sendfile import send_file
from clipsync.api.hls import byte_range

app = Sanic("sendfile_test")
FILE = Path(sys.argv[2])
REPORT = Path(sys.argv[3])

@app.route("/file", methods=["GET", "HEAD"])
async def serve(request):
    size = FILE.stat().st_size
    span = byte_range(request.headers.get("range"), size)
    kernel = await send_file(request, FILE, span, size, headers={"X-Test": "1"},
                             content_type="video/iso.segment")
    with REPORT.open("a") as fh:
        fh.write(f"{kernel}\\n")

app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, access_log=False,
        motd=False)
"""


@pytest.fixture
def sendfile_server(tmp_path: Path):
    data = tmp_path / "big.bin"
    data.write_bytes(bytes(range(256)) * (24 * 4096))  # 24 MiB
    report = tmp_path / "report"
    port = free_port()
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(SERVER))
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), str(data), str(report)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.head(f"http://127.0.0.1:{port}/file", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/file", data.read_bytes(), report
    finally:
        process.terminate()
        process.wait(10)


def test_the_kernel_sends_the_bytes_with_ranges_and_keep_alive(sendfile_server) -> None:
    url, data, report = sendfile_server
    report.write_text("")
    with httpx.Client(timeout=30) as http:
        whole = http.get(url)
        ranged = http.get(url, headers={"Range": "bytes=1000-" + str(len(data) - 1001)})
        tail = http.get(url, headers={"Range": "bytes=-10"})
        head = http.head(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["x-test"] == "1" and whole.headers["accept-ranges"] == "bytes"
    assert ranged.status_code == 206 and ranged.content == data[1000:-1000]
    assert ranged.headers["content-range"] == f"bytes 1000-{len(data) - 1001}/{len(data)}"
    assert tail.content == data[-10:]
    assert head.headers["content-length"] == str(len(data)) and head.content == b""
    # One connection for all four, and the kernel sent each body.
    assert report.read_text().split() == ["True", "True", "True", "False"]


def test_a_slow_reader_still_gets_every_byte(sendfile_server) -> None:
    url, data, _ = sendfile_server
    received = bytearray()
    with httpx.stream("GET", url, timeout=60) as response:
        for chunk in response.iter_raw(64 * 1024):
            received += chunk
            if len(received) < 4 * 1024 * 1024:
                time.sleep(0.002)  # the socket fills: sendfile waits for it to drain
    assert bytes(received) == data
