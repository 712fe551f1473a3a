"""Finding 3: an upload that is really a playlist must not make ffprobe or ffmpeg open
the files it names (another user's video), nor answer differently by whether they exist.

The attack runs against a real `clipsync serve` with the real ffprobe: a victim's
upload lies in the media folder, and an attacker uploads a text file saved as `.mp4`
that names it (HLS `#EXTM3U`, or an ffconcat list), then one that names a missing
file. Both must be refused, with the very same answer. The command builders are
pinned too: every ffprobe and ffmpeg run that reads an upload is guarded.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser import LiveServer
from clients import PASSWORD, bearer, error_of
from clips import FFMPEG, Clips, clips_fixture  # noqa: F401  (the `clips` fixture)
from test_media_ladder import source

from clipsync.media import probe as probe_module
from clipsync.media.commands import Previews, hls_command, sprite_layout
from clipsync.media.detection import ffmpeg_lists
from clipsync.media.encoders import cpu_profile, nvenc_profile, vaapi_profile
from clipsync.media.errors import UnsupportedMedia
from clipsync.media.ladder import Rung, plan_ladder
from clipsync.media.probe import probe

# Demuxers that open other files or URLs named inside what they read, or a pattern.
OPENS_OTHER_FILES = {"hls", "concat", "image2", "dash", "webm_dash_manifest", "ffmetadata"}


def hls_playlist(target: str) -> str:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n"
        f"#EXTINF:2.0,\nfile:{target}\n#EXT-X-ENDLIST\n"
    )


def concat_list(target: str) -> str:
    return f"ffconcat version 1.0\nfile 'file:{target}'\n"


PLAYLISTS = {"hls": hls_playlist, "concat": concat_list}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("probe") / "live") as live:
        yield live


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        yield client


def sign_up(http: httpx.Client, email: str) -> str:
    answer = http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def upload(http: httpx.Client, token: str, name: str, content: bytes) -> str:
    answer = http.post(
        "/api/videos/upload-local",
        files={"file": (name, content, "video/mp4")},
        headers=bearer(token),
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["videoId"]


def upload_and_register(
    http: httpx.Client, token: str, name: str, content: bytes
) -> httpx.Response:
    video_id = upload(http, token, name, content)
    return http.post(
        "/api/videos/register",
        json={"videoId": video_id, "title": "Holiday"},
        headers=bearer(token),
    )


@pytest.fixture(scope="module")
def victims_source(server: LiveServer, http: httpx.Client, clips: Clips) -> Path:
    """Another user's upload, as it lies in the media folder of the server."""
    token = sign_up(http, "victim@example.org")
    video_id = upload(http, token, "private.mp4", clips("landscape").read_bytes())
    path = server.data_dir / "media" / "videos" / video_id / "source.mp4"
    assert path.is_file(), "the victim's upload is not where the attack looks for it"
    return path


@pytest.mark.parametrize("kind", sorted(PLAYLISTS))
def test_a_playlist_upload_is_refused_the_same_whether_the_file_it_names_exists(
    server: LiveServer, http: httpx.Client, victims_source: Path, kind: str
) -> None:
    token = sign_up(http, f"attacker-{kind}@example.org")
    missing = victims_source.parent.parent / str(uuid.uuid4()) / "source.mp4"
    write = PLAYLISTS[kind]

    existing = upload_and_register(http, token, "p.mp4", write(str(victims_source)).encode())
    absent = upload_and_register(http, token, "p.mp4", write(str(missing)).encode())

    assert existing.status_code == absent.status_code == 422, (existing.text, absent.text)
    # The same words, whatever the playlist names: no oracle for local paths.
    assert error_of(existing) == error_of(absent)
    message = existing.json()["error"]["message"]
    assert message.startswith("This file is not a video we can read: it is a text file")
    # Nothing of the refused uploads stays, and the victim's file is untouched.
    mine = http.get("/api/videos/?mine=1", headers=bearer(token)).json()
    assert mine["total"] == 0
    assert victims_source.is_file()


@pytest.mark.parametrize("kind", sorted(PLAYLISTS))
async def test_ffprobe_refuses_a_playlist_before_opening_what_it_names(
    tmp_path: Path,
    clips: Clips,
    kind: str,
) -> None:
    target = clips("landscape")
    playlist = tmp_path / "p.mp4"
    playlist.write_text(PLAYLISTS[kind](str(target)))
    with pytest.raises(UnsupportedMedia) as caught:
        await probe(playlist)
    # ffprobe stops at the format check: its error names the playlist's format only.
    assert "Format not on whitelist" in caught.value.detail
    assert str(target) not in caught.value.detail


@pytest.mark.parametrize(("extension", "label"), [("ts", "MPEG-TS"), ("flv", "FLV")])
async def test_other_containers_are_still_refused_by_name_with_the_accepted_list(
    tmp_path: Path, extension: str, label: str
) -> None:
    """The whitelist keeps ffprobe from reading them; the message stays one to act on."""
    path = tmp_path / f"clip.{extension}"
    lavfi = ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1"]
    subprocess.run([FFMPEG, "-v", "error", *lavfi, str(path)], check=True, timeout=60)
    with pytest.raises(UnsupportedMedia) as caught:
        await probe(path)
    assert caught.value.message == (
        f"This file is not a video we can read: it is a {label} file, and we accept "
        "MP4/MOV, MKV/WebM, AVI. Please convert it to MP4 and upload it again."
    )


def test_ffmpeg_refuses_a_playlist_source_too(tmp_path: Path, clips: Clips) -> None:
    """A source that got past the probe some other way still cannot make ffmpeg read files."""
    playlist = tmp_path / "p.mp4"
    playlist.write_text(hls_playlist(str(clips("landscape"))))
    info = source(640, 360)
    layout = sprite_layout(info.duration, 5, 10, 160, info.width / info.height)
    out = tmp_path / "out"
    out.mkdir()
    command = hls_command(
        FFMPEG,
        playlist,
        info,
        plan_ladder([Rung(240, 400)], info),
        out,
        cpu_profile("ultrafast"),
        previews=Previews(out / "poster.jpg", out / "sprite.jpg", layout),
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "Format not on whitelist" in done.stderr
    assert not list(out.rglob("*.m4s")) and not (out / "poster.jpg").exists()


# --- the command builders -------------------------------------------------------------


def guarded_input(command: list[str]) -> str:
    """The input of `command`, after checking that the input guard comes just before it."""
    guard = tuple(probe_module.INPUT_GUARD)
    if "-i" in command:
        at = command.index("-i")
        assert command.count("-i") == 1
        assert tuple(command[at - len(guard) : at]) == guard
        return command[at + 1]
    assert tuple(command[-1 - len(guard) : -1]) == guard  # ffprobe: the input comes last
    return command[-1]


def test_the_input_guard_allows_local_files_and_our_containers_only() -> None:
    options = dict(zip(probe_module.INPUT_GUARD[::2], probe_module.INPUT_GUARD[1::2], strict=True))
    assert options == {"-protocol_whitelist": "file", "-format_whitelist": "mov,matroska,avi"}
    assert not set(options["-format_whitelist"].split(",")) & OPENS_OTHER_FILES


def test_every_whitelisted_demuxer_is_one_this_ffmpeg_has_for_an_accepted_container() -> None:
    demuxers = ffmpeg_lists(FFMPEG, "demuxers")
    assert demuxers, "ffmpeg -demuxers listed nothing"
    by_first_name = {names.split(",")[0]: names for names in demuxers}
    for name in probe_module.DEMUXER_WHITELIST.split(","):
        # ffprobe reports the demuxer's full name, which is what the probe accepts.
        assert by_first_name[name] in probe_module.ACCEPTED_FORMATS


def test_probe_command_reads_the_upload_through_the_guard() -> None:
    command = probe_module.probe_command(Path("/media/videos/x/source.mp4"), "ffprobe")
    assert command[0] == "ffprobe"
    assert guarded_input(command) == "file:/media/videos/x/source.mp4"


@pytest.mark.parametrize(
    "profile",
    [cpu_profile(), nvenc_profile(), vaapi_profile()],
    ids=["cpu", "nvenc", "vaapi"],
)
def test_every_transcoder_command_reads_the_source_through_the_guard(profile) -> None:
    info = source(1280, 720)
    layout = sprite_layout(info.duration, 5, 10, 160, info.width / info.height)
    command = hls_command(
        "ffmpeg",
        Path("/src/in.mp4"),
        info,
        plan_ladder([Rung(360, 800)], info),
        Path("/out"),
        profile,
        previews=Previews(Path("/out/poster.jpg"), Path("/out/sprite.jpg"), layout),
    )
    assert guarded_input(command) == "file:/src/in.mp4"
