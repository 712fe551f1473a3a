"""Stream links ("Copy stream link"): a signed master playlist that plays with no cookie.

ffmpeg plays the link with no cookie and no header, as VLC or a TV would; it stops
working when the sign-in session it was made in ends, when it expires, and when its
signature is touched. The API's refusals run against the in-process app.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from browser import LiveServer
from clients import PASSWORD, bearer, register
from clips import make_clip
from test_delivery import store_files
from test_nginx_front import wait_until_ready

from clipsync import delivery
from clipsync.models import Role, User, VideoStatus

EXTRA = """
[transcoder]
ladder = [{ height = 144, bitrate = 150 }, { height = 240, bitrate = 300 }]
"""


def ffmpeg_copy(url: str) -> subprocess.CompletedProcess[str]:
    """`ffmpeg -i <url> -c copy -f null -`: what a player does, with no credentials."""
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", url, "-map", "0", "-c", "copy", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass(frozen=True)
class Site:
    server: LiveServer
    video_id: str
    email: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with (
        LiveServer(tmp_path_factory.mktemp("links"), extra_toml=EXTRA) as server,
        httpx.Client(base_url=server.base_url, trust_env=False, timeout=60) as http,
    ):
        email = "owner@example.org"
        token = http.post("/api/auth/register", json={"email": email, "password": PASSWORD}).json()[
            "token"
        ]
        with make_clip("landscape").open("rb") as fh:
            uploaded = http.post(
                "/api/videos/upload-local",
                files={"file": ("clip.mp4", fh, "video/mp4")},
                headers=bearer(token),
            )
        video_id = uploaded.json()["videoId"]
        http.post(
            "/api/videos/register",
            json={"videoId": video_id, "title": "Link"},
            headers=bearer(token),
        ).raise_for_status()
        wait_until_ready(http, video_id, token)
        yield Site(server, video_id, email)


def sign_in(http: httpx.Client, site: Site) -> str:
    answer = http.post("/api/auth/login", json={"email": site.email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def stream_link(http: httpx.Client, site: Site, token: str) -> str:
    answer = http.post(f"/api/videos/{site.video_id}/stream-link", headers=bearer(token))
    assert answer.status_code == 201, answer.text
    return answer.json()["url"]


def test_a_stream_link_plays_with_no_cookie_until_its_session_ends(site: Site) -> None:
    with httpx.Client(base_url=site.server.base_url, trust_env=False) as http:
        token = sign_in(http, site)
        url = stream_link(http, site, token)
        assert url.startswith(f"{site.server.base_url}/hls/{site.video_id}/master.m3u8?")
        played = ffmpeg_copy(url)
        assert played.returncode == 0, played.stderr
        # Every playlist behind it is signed too.
        master = http.get(url).text
        assert all("?sub=s%3A" in line for line in master.splitlines() if line.endswith("m3u8"))
        assert http.post("/api/auth/logout", headers=bearer(token)).is_success
        refused = ffmpeg_copy(url)
        assert refused.returncode != 0 and "403" in refused.stderr
        assert http.get(url).status_code == 403


def test_an_expired_or_altered_stream_link_does_not_play(site: Site) -> None:
    with httpx.Client(base_url=site.server.base_url, trust_env=False) as http:
        token = sign_in(http, site)
        url = stream_link(http, site, token)
        base, query = url.split("?", 1)
        args = {k: v[0] for k, v in parse_qs(query).items()}
        key = (site.server.data_dir / "secrets" / delivery.KEY_FILE).read_text().strip()
        signer = delivery.Signer(key.encode())
        path = urlsplit(base).path
        expired = signer.query(site.video_id, "master.m3u8", args["sub"], int(time.time()) - 1)
        longer = urlencode({**args, "exp": str(int(args["exp"]) + 3600)})
        for bad in (f"{base}?{expired}", f"{base}?{longer}", base):
            answer = http.get(bad)
            assert answer.status_code in (401, 403), (bad, answer.status_code)
            assert ffmpeg_copy(bad).returncode != 0
        # The same signature for another file of the tree is refused too.
        assert http.get(path.replace("master.m3u8", "poster.jpg") + "?" + query).status_code == 403


async def test_a_stream_link_needs_a_session_and_a_video_the_caller_may_watch(app, client) -> None:
    owner = await register(client, "owner@example.org")
    video = await store_files(app, await User.get(email="owner@example.org"), VideoStatus.READY)
    made = await client.post(f"/api/videos/{video.id}/stream-link", headers=bearer(owner["token"]))
    assert made.status_code == 201
    assert made.json()["url"].startswith(f"http://clipsync.test/hls/{video.id}/master.m3u8?")
    colleague = await register(client, "colleague@example.org")  # READY: owner only
    hidden = await client.post(
        f"/api/videos/{video.id}/stream-link", headers=bearer(colleague["token"])
    )
    assert hidden.status_code == 404
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    tool = app.ctx.accounts.start_session(admin).token  # a token tied to no session
    refused = await client.post(f"/api/videos/{video.id}/stream-link", headers=bearer(tool))
    assert refused.status_code == 409
    assert (await client.post(f"/api/videos/{video.id}/stream-link")).status_code == 401
