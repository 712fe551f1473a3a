"""Several hosts, one site: the layout of deploy/multi-host.md, run whole on one machine.

Two web hosts (`clipsync serve`) behind Debian's nginx with the shipped
deploy/nginx/multi-host.conf, two worker hosts (`clipsync worker`), each host with a
data directory and working directory of its own, sharing only PostgreSQL, Redis, an
S3 server (moto) and ClickHouse (see tests/multi_host.py). Everything a person does
goes through the load balancer, which alternates between the web hosts; the browser
that follows the transcode live is connected to one web host directly, so its news
has to cross hosts.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser import CHROMIUM_ARGS, DEFAULT_TIMEOUT_MS  # noqa: F401  (fixtures below)
from clients import PASSWORD, bearer, play_with_ffmpeg
from clips import make_clip
from multi_host import PATIENCE, Cluster, running_cluster
from playwright.sync_api import Browser, expect
from services import ClickHouseServer, PostgresServer, S3Server

pytestmark = [pytest.mark.multihost, pytest.mark.browser]

TUS = {"Tus-Resumable": "1.0.0"}
ADMIN = "admin@example.org"
UPLOADER = "uploader@example.org"


@pytest.fixture
def cluster(
    tmp_path: Path,
    postgres_server: PostgresServer,
    s3_server: S3Server,
    clickhouse_server: ClickHouseServer,
) -> Iterator[Cluster]:
    with running_cluster(tmp_path, postgres_server, s3_server, clickhouse_server) as cluster:
        yield cluster


def create_admin(cluster: Cluster) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [
            *(sys.executable, "-m", "clipsync", "--config", str(cluster.web[0].config_path)),
            *("user", "create", "--email", ADMIN, "--role", "admin", "--password-stdin"),
        ],
        input=PASSWORD,
        capture_output=True,
        text=True,
        cwd=cluster.web[0].workdir,
        timeout=PATIENCE,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def sign_in(http: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return http.post("/api/auth/login", json={"email": email, "password": password})


def tus_upload(http: httpx.Client, token: str, data: bytes, pieces: int) -> str:
    """A tus upload in `pieces` PATCHes, a HEAD after every second one; returns its id."""
    headers = {**TUS, **bearer(token)}
    created = http.post(
        "/api/uploads/",
        headers={
            **headers,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": "filename " + base64.b64encode(b"harbour.mp4").decode(),
        },
    )
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    size = -(-len(data) // pieces)
    for start in range(0, len(data), size):
        piece = data[start : start + size]
        answer = http.patch(
            location,
            content=piece,
            headers={
                **headers,
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(start),
            },
        )
        assert answer.status_code == 204, answer.text
        if start // size % 2:  # a HEAD after every second PATCH: PATCHes reach both hosts
            head = http.head(location, headers=headers)
            assert int(head.headers["upload-offset"]) == start + len(piece)
    return location.rsplit("/", 1)[1]


def poll(what: str, check, timeout: float = PATIENCE):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)
    return result


def test_the_whole_path_runs_through_the_load_balancer_across_hosts(
    cluster: Cluster, browser: Browser
) -> None:
    web1, web2 = cluster.web
    nginx = cluster.nginx
    clip = make_clip("landscape").read_bytes()
    try:
        create_admin(cluster)
        with httpx.Client(base_url=cluster.base_url, timeout=PATIENCE) as http:
            # --- sign in through nginx; its request id reaches ClipSync and comes back
            registered = http.post(
                "/api/auth/register", json={"email": UPLOADER, "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            answer = http.post(
                "/api/auth/login",
                json={"email": UPLOADER, "password": PASSWORD},
                headers={"X-Request-ID": "multi-host-sign-in"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-request-id"] == "multi-host-sign-in"
            token = answer.json()["token"]

            # --- a browser on web2 alone follows "My videos" live ---------------------
            context = browser.new_context(base_url=web2.base_url)
            context.set_default_timeout(DEFAULT_TIMEOUT_MS)
            page = context.new_page()
            page.goto("/login")
            form = page.locator("form[action='/login']")
            form.locator("[name=email]").fill(UPLOADER)
            form.locator("[name=password]").fill(PASSWORD)
            form.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(re.compile(r"/$"))
            page.goto("/videos")
            page.evaluate("window.__marker = 1")

            # --- a tus upload whose requests alternate between the web hosts ----------
            video_id = tus_upload(http, token, clip, pieces=4)
            requests = nginx.upstreams(rf" /api/uploads/{video_id} ")
            assert len(requests) == 6, requests  # 4 PATCHes, 2 HEADs
            assert all(a != b for a, b in itertools.pairwise(requests)), requests
            patches = nginx.upstreams(rf"PATCH /api/uploads/{video_id} ")
            assert set(patches) == {web1.port, web2.port}, patches
            video = http.get(f"/api/videos/{video_id}", headers=bearer(token)).json()["video"]
            assert video["checksum"] == hashlib.sha256(clip).hexdigest()

            # --- transcoded by whichever worker; the news reaches the browser on web2 --
            registered = http.post(
                "/api/videos/register",
                json={"videoId": video_id, "title": "Harbour", "description": "two hosts"},
                headers=bearer(token),
            )
            assert registered.status_code == 201, registered.text
            row = page.locator(f"tr[data-video-id='{video_id}']")
            expect(row.locator("[data-role=status]")).to_have_text("Ready", timeout=90_000)
            assert page.evaluate("window.__marker") == 1, "the page was reloaded"
            # The job carried the register request's id to the worker that ran it.
            job = f"[{registered.headers['x-request-id']}]: Executing clipsync.jobs.tasks.transcode"
            ran = [w.workdir.name for w in cluster.workers if job in w.log()]
            assert ran, "no worker logged the transcode"
            context.close()

            # --- playback: the playlists and segments come through nginx --------------
            master = f"{cluster.base_url}/hls/{video_id}/master.m3u8"
            played = play_with_ffmpeg(master, token)
            assert played.returncode == 0, played.stderr
            segments = nginx.upstreams(rf"GET /hls/{video_id}/")
            assert len(segments) >= 3 and set(segments) == {web1.port, web2.port}, segments

            # --- analytics: events through either host, figures from ClickHouse -------
            events = [
                {"type": kind, "videoId": video_id, "sessionId": "mh", "position": at}
                for kind, at in [("PLAY", 0), ("PROGRESS", 1), ("PAUSE", 2)]
            ]
            for event in events:
                sent = http.post("/api/analytics/event", json=[event], headers=bearer(token))
                assert sent.status_code == 200 and sent.json()["accepted"] == 1, sent.text
            admin = sign_in(http, ADMIN).json()["token"]

            def figures() -> bool:
                answer = http.get(f"/api/admin/analytics/videos/{video_id}", headers=bearer(admin))
                assert answer.status_code == 200, answer.text
                return answer.json()["totalEvents"] >= 3

            poll("the events in ClickHouse", figures)

            # --- moderation: approved through one host, seen so on both ---------------
            approved = http.post(
                f"/api/admin/videos/{video_id}/approve", json={}, headers=bearer(admin)
            )
            assert approved.status_code == 200, approved.text
            for server in cluster.web:
                seen = httpx.get(f"{server.base_url}/api/videos/{video_id}", headers=bearer(token))
                assert seen.json()["video"]["status"] == "APPROVED", server

            # --- sign-in failures spread over both hosts still lock --------------------
            before = len(nginx.upstreams(r"POST /api/auth/login "))
            for _ in range(3):
                assert sign_in(http, UPLOADER, "wrong password!").status_code == 401
            locked = sign_in(http, UPLOADER)
            assert locked.status_code == 429, locked.text
            logins = nginx.upstreams(r"POST /api/auth/login ")[before:]
            assert set(logins) == {web1.port, web2.port}, logins

            # --- Redis gone: playback goes on, and /healthz says what is missing -------
            cluster.redis.stop()
            for server in cluster.web:
                master_playlist = httpx.get(
                    f"{server.base_url}/hls/{video_id}/master.m3u8", headers=bearer(token)
                )
                assert master_playlist.status_code == 200, master_playlist.text
            played = play_with_ffmpeg(master, token)
            assert played.returncode == 0, played.stderr
            health = httpx.get(f"{web1.base_url}/healthz", timeout=30)
            assert health.status_code == 503
            assert health.json()["checks"]["queue"]["ok"] is False
            assert health.json()["checks"]["database"]["ok"] is True
    except AssertionError as error:
        raise AssertionError(f"{error}{cluster.logs()}") from error
