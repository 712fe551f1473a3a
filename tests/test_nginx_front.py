"""The shipped nginx front (deploy/nginx/clipsync-front.conf) against a real nginx.

A real `clipsync serve` with `[delivery] accel_redirect_prefix` runs behind Debian's
nginx, configured by the shipped file with this test's ports and paths. A video is
uploaded and transcoded through the front, then played through it: ClipSync answers
the playlists and decides every segment request, nginx sends the segment bytes (its
`X-Served-By` header is added only by the internal location that reads the files).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from browser import LiveServer
from clients import PASSWORD, bearer, play_with_ffmpeg
from clips import make_clip
from nginx_front import NginxServer, front_site
from services import free_port

from clipsync.storage import keys

EXTRA = """
[transcoder]
ladder = [{ height = 144, bitrate = 150 }, { height = 240, bitrate = 300 }]
[delivery]
accel_redirect_prefix = "/_clipsync_media/"
"""


@dataclass(frozen=True)
class Front:
    app: LiveServer
    nginx: NginxServer
    video_id: str
    token: str
    email: str


def wait_until_ready(http: httpx.Client, video_id: str, token: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = http.get(f"/api/videos/{video_id}", headers=bearer(token)).json()["video"][
            "status"
        ]
        if status in ("READY", "FAILED"):
            assert status == "READY"
            return
        time.sleep(1)
    raise AssertionError(f"video {video_id} is still {status}")


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    workdir = tmp_path_factory.mktemp("front")
    with LiveServer(workdir, extra_toml=EXTRA) as app:
        port = free_port()
        site = front_site(app.port, port, app.data_dir / "media")
        with (
            NginxServer(site, port=port) as nginx,
            httpx.Client(base_url=nginx.base_url, trust_env=False, timeout=60) as http,
        ):
            email = "viewer@example.org"
            registered = http.post(
                "/api/auth/register", json={"email": email, "password": PASSWORD}
            )
            token = registered.json()["token"]
            with make_clip("landscape").open("rb") as fh:
                uploaded = http.post(
                    "/api/videos/upload-local",
                    files={"file": ("clip.mp4", fh, "video/mp4")},
                    headers=bearer(token),
                )
            video_id = uploaded.json()["videoId"]
            http.post(
                "/api/videos/register",
                json={"videoId": video_id, "title": "Behind nginx"},
                headers=bearer(token),
            ).raise_for_status()
            wait_until_ready(http, video_id, token)
            yield Front(app, nginx, video_id, token, email)


def media_playlist(http: httpx.Client, front: Front, token: str) -> tuple[str, str]:
    """(the first rendition's folder, its media playlist) as the front serves them."""
    master = http.get(f"/hls/{front.video_id}/master.m3u8", headers=bearer(token))
    assert master.status_code == 200, master.text
    first = next(line for line in master.text.splitlines() if line.endswith("index.m3u8"))
    media = http.get(f"/hls/{front.video_id}/{first}", headers=bearer(token))
    assert media.status_code == 200, media.text
    return first.rsplit("/", 1)[0], media.text


def segment_uri(playlist: str) -> str:
    return next(line for line in playlist.splitlines() if ".m4s?" in line)


def test_segments_come_from_nginx_after_clipsync_decides(front: Front) -> None:
    with httpx.Client(base_url=front.nginx.base_url, trust_env=False) as http:
        folder, playlist = media_playlist(http, front, front.token)
        uri = segment_uri(playlist)
        on_disk = (
            front.app.data_dir
            / "media"
            / keys.hls_key(front.video_id, f"{folder}/{uri.split('?', 1)[0]}")
        ).read_bytes()
        # No cookie, no header: the signed URL alone.
        segment = http.get(f"/hls/{front.video_id}/{folder}/{uri}")
        ranged = http.get(f"/hls/{front.video_id}/{folder}/{uri}", headers={"Range": "bytes=4-99"})
        direct = http.get(f"/_clipsync_media/{keys.hls_key(front.video_id, folder)}/init.mp4")
    assert segment.status_code == 200 and segment.content == on_disk
    assert segment.headers["x-served-by"] == "nginx"
    assert segment.headers["content-type"] == "video/iso.segment"
    assert segment.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert "x-accel-redirect" not in segment.headers
    assert ranged.status_code == 206 and ranged.content == on_disk[4:100]
    assert ranged.headers["content-range"] == f"bytes 4-99/{len(on_disk)}"
    # The files' location is internal: reachable only through ClipSync's answer.
    assert direct.status_code == 404


def test_a_bad_or_expired_signature_is_refused_by_clipsync(front: Front) -> None:
    with httpx.Client(base_url=front.nginx.base_url, trust_env=False) as http:
        folder, playlist = media_playlist(http, front, front.token)
        path, query = segment_uri(playlist).split("?", 1)
        args = {k: v[0] for k, v in parse_qs(query).items()}
        tampered = urlencode({**args, "sig": "A" + args["sig"][1:]})
        expired = urlencode({**args, "exp": str(int(time.time()) - 5)})
        answers = [
            http.get(f"/hls/{front.video_id}/{folder}/{path}?{tampered}"),
            http.get(f"/hls/{front.video_id}/{folder}/{path}?{expired}"),
            http.get(f"/hls/{front.video_id}/{folder}/{path}"),
        ]
    for answer in answers:
        assert answer.status_code in (401, 403)
        assert "x-served-by" not in answer.headers and b"ftyp" not in answer.content


def test_ffmpeg_plays_through_the_front_and_a_revoked_session_stops_the_playlists(
    front: Front,
) -> None:
    url = f"{front.nginx.base_url}/hls/{front.video_id}/master.m3u8"
    with httpx.Client(base_url=front.nginx.base_url, trust_env=False) as http:
        token = http.post(
            "/api/auth/login", json={"email": front.email, "password": PASSWORD}
        ).json()["token"]
        played = play_with_ffmpeg(url, token)
        assert played.returncode == 0, played.stderr
        folder, _ = media_playlist(http, front, token)
        assert http.post("/api/auth/logout", headers=bearer(token)).is_success
        refused = http.get(f"/hls/{front.video_id}/{folder}/index.m3u8", headers=bearer(token))
    assert refused.status_code == 401
    assert play_with_ffmpeg(url, token).returncode != 0


def test_the_front_config_is_the_shipped_one() -> None:
    # The test rewrites exactly three example values; everything else is as shipped.
    site = front_site(8001, 8080, Path("/srv/media"))
    assert "server 127.0.0.1:8001;" in site and "alias /srv/media/;" in site
    assert "internal;" in site and "X-Served-By" in site
