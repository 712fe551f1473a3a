"""Nothing left behind: what killed uploads and abandoned drafts leave, the reaper removes.

A real `clipsync serve` is killed (SIGKILL of its whole process group, as a crash
or a power cut) in the middle of a multipart upload, then started again; the
media folder with the upload's `.part` file, a stored source whose row was never
written and an empty folder, all older than the grace period, are deleted by the
reaper of the restarted server, and an upload never registered within
`[uploads] abandoned_after_hours` goes with its row. What belongs to a video, and
a fresh folder that may belong to an upload being set up right now, stay.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import time
import uuid
from contextlib import closing
from pathlib import Path

import pytest
from browser import LiveServer
from clips import Clips, clips_fixture  # noqa: F401  (the `clips` fixture)
from faults.processes import Api, Timeline, fast_jobs_toml, wait_for

pytestmark = pytest.mark.faults

TWO_HOURS_AGO = time.time() - 2 * 3600


def age(folder: Path) -> None:
    """Make `folder` and everything in it look untouched for two hours."""
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (TWO_HOURS_AGO, TWO_HOURS_AGO))


def start_upload_and_stall(server: LiveServer, token: str, clip: Path) -> socket.socket:
    """A multipart upload that sends its headers and half of the file, then nothing."""
    data = clip.read_bytes()
    boundary = "faultboundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="cut.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    request = (
        "POST /api/videos/upload-local HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + len(data) + len(tail)}\r\n\r\n"
    ).encode()
    conn = socket.create_connection(("127.0.0.1", server.port))
    conn.sendall(request + head + data[: len(data) // 2])
    return conn


def test_the_reaper_deletes_what_a_killed_upload_and_abandoned_drafts_leave_behind(
    tmp_path: Path, clips: Clips
) -> None:
    server = LiveServer(
        tmp_path / "site", fast_jobs_toml() + "[uploads]\nabandoned_after_hours = 1\n"
    )
    videos = server.data_dir / "media" / "videos"
    timeline = Timeline("clipsync serve killed mid-upload, leftovers aged past the grace")
    server.start()
    try:
        api = Api(server)
        token = api.http.headers["Authorization"].removeprefix("Bearer ")
        kept_id = api.upload_and_register(clips("landscape"))
        api.wait_until_ready(kept_id)
        draft_id = api.upload(clips("landscape"))  # never registered
        conn = start_upload_and_stall(server, token, clips("landscape"))
        part = wait_for("the upload's .part file", lambda: list(videos.glob("*/.*.part")))[0]
        server.kill()
        conn.close()
        assert part.exists()  # what the killed upload left

        cut = part.parent
        no_row = videos / str(uuid.uuid4())  # a source stored, the server killed before its row
        no_row.mkdir()
        shutil.copyfile(clips("landscape"), no_row / "source.mp4")
        empty = videos / str(uuid.uuid4())
        empty.mkdir()
        fresh = videos / str(uuid.uuid4())  # maybe an upload being set up right now
        fresh.mkdir()
        for folder in (cut, no_row, empty, videos / kept_id, videos / draft_id):
            age(folder)
        with closing(sqlite3.connect(server.data_dir / "clipsync.sqlite3")) as db, db:
            db.execute(
                "UPDATE videos SET created_at = ? WHERE id = ?",
                ("2000-01-01 00:00:00+00:00", draft_id),
            )

        server.start()
        timeline.mark("serving again")
        gone = [cut, no_row, empty, videos / draft_id]
        wait_for(
            "the reaper of the restarted server to delete the leftovers",
            lambda: not any(folder.exists() for folder in gone),
        )
        timeline.mark("cleaned")
        assert (videos / kept_id / "source.mp4").exists() and fresh.is_dir()
        assert api.video(kept_id)["status"] == "READY"
        assert api.http.get(f"/api/videos/{draft_id}").status_code == 404
    finally:
        server.stop()
    timeline.report(serving_to_cleaned=timeline.between("serving again", "cleaned"))
