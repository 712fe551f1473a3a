"""Small test clips made with ffmpeg's lavfi sources, once per test session.

`make_clip(kind)` makes a clip on first use and returns the cached path (in a
temporary folder removed at exit); `make_clip(kind, folder)` writes a fresh one
into `folder`. The session fixture `clips` is the same cache as a fixture: import it
where it is used (`from clips import clips_fixture`) so pytest finds it.

Good clips are short and small so a whole media test run stays fast on two cores;
bad inputs are what people really upload by mistake.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = shutil.which("ffprobe") or "ffprobe"

_BASE = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
_X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
_AAC = ["-c:a", "aac", "-b:a", "96k"]


def _video(size: str, rate: int, seconds: float, source: str = "testsrc2") -> list[str]:
    return ["-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}:duration={seconds}"]


def _tone(seconds: float, rate: int = 44100) -> list[str]:
    # Two different tones, left and right, so the stereo layout survives.
    graph = (
        f"sine=frequency=440:sample_rate={rate}:duration={seconds}[l];"
        f"sine=frequency=660:sample_rate={rate}:duration={seconds}[r];[l][r]amerge=inputs=2"
    )
    return ["-f", "lavfi", "-i", graph]


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")


def make_long_clip(out: Path, seconds: float) -> Path:
    """A 640x360, 25 fps clip of `seconds` with a 440 Hz tone, made fast: for the
    browser tests that need something longer to play than the cached kinds."""
    run([
        *_BASE, *_video("640x360", 25, seconds),
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        *_X264, "-c:a", "aac", "-b:a", "64k", "-shortest", str(out),
    ])  # fmt: skip
    return out


def _landscape(out: Path) -> None:
    """640x360, 30 fps, 4 s, stereo AAC: the ordinary upload."""
    run([*_BASE, *_video("640x360", 30, 4), *_tone(4), *_X264, *_AAC, "-shortest", str(out)])


def _portrait(out: Path) -> None:
    """360x640 (a phone held upright, encoded that way), 2 s, with sound."""
    run([*_BASE, *_video("360x640", 30, 2), *_tone(2), *_X264, *_AAC, "-shortest", str(out)])


def _odd(out: Path) -> None:
    """1279x719 (odd sides need 4:4:4 in H.264), 10 fps, 2 s, with sound."""
    run([
        *_BASE, *_video("1279x719", 10, 2, source="testsrc"), *_tone(2),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p", *_AAC,
        "-shortest", str(out),
    ])  # fmt: skip


def _rotated(out: Path) -> None:
    """640x360 coded, shown 360x640: a phone's display matrix (`rotate` tag, remuxed).

    Left half red, right half blue, so tests can tell which way up the output is.
    """
    plain = out.with_name("rotated-plain.mp4")
    graph = (
        "color=red:size=320x360:rate=30:duration=2[l];"
        "color=blue:size=320x360:rate=30:duration=2[r];[l][r]hstack"
    )
    run([*_BASE, "-f", "lavfi", "-i", graph, *_tone(2), *_X264, *_AAC, "-shortest", str(plain)])
    run([*_BASE, "-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(out)])
    plain.unlink()


def _vfr(out: Path) -> None:
    """Variable frame rate: 30 fps for the first second, then every third frame (10 fps)."""
    run([
        *_BASE, *_video("320x180", 30, 3), "-vf", r"select='lt(n\,30)+not(mod(n\,3))'",
        *_X264, "-fps_mode", "vfr", str(out),
    ])  # fmt: skip


def _hevc10(out: Path) -> None:
    """10-bit HEVC (what recent phones record), 640x360, 24 fps, 2 s, no sound."""
    run([
        *_BASE, *_video("640x360", 24, 2), "-c:v", "libx265", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error", "-tag:v", "hvc1",
        str(out),
    ])  # fmt: skip


def _mov(out: Path) -> None:
    """H.264 and AAC in a QuickTime .mov, as iPhones and cameras write."""
    run([*_BASE, *_video("640x360", 30, 2), *_tone(2), *_X264, *_AAC, "-shortest", str(out)])


def _no_audio(out: Path) -> None:
    """640x360 H.264 with no audio stream at all."""
    run([*_BASE, *_video("640x360", 25, 2), *_X264, str(out)])


def _webm(out: Path) -> None:
    """VP9 and Opus in WebM."""
    run([
        *_BASE, *_video("640x360", 24, 2), *_tone(2, 48000),
        "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "400k",
        "-c:a", "libopus", "-shortest", str(out),
    ])  # fmt: skip


def _mkv(out: Path) -> None:
    """H.264 and Vorbis in Matroska."""
    run([
        *_BASE, *_video("640x360", 24, 2), *_tone(2), *_X264, "-c:a", "libvorbis",
        "-shortest", str(out),
    ])  # fmt: skip


def _avi(out: Path) -> None:
    """MPEG-4 Part 2 and MP3 in AVI, as old cameras write."""
    run([
        *_BASE, *_video("640x360", 25, 2), *_tone(2), "-c:v", "mpeg4", "-q:v", "5",
        "-c:a", "libmp3lame", "-shortest", str(out),
    ])  # fmt: skip


def _hd(out: Path) -> None:
    """1280x720, 24 fps, 2 s, with sound: for the default ladder (720p is the top)."""
    run([*_BASE, *_video("1280x720", 24, 2), *_tone(2), *_X264, *_AAC, "-shortest", str(out)])


def _image(out: Path) -> None:
    run([*_BASE, *_video("320x180", 1, 1), "-frames:v", "1", str(out)])


def _text(out: Path) -> None:
    out.write_text("These are my holiday notes, not a video.\n" * 20)


def _empty(out: Path) -> None:
    out.write_bytes(b"")


def _truncated(out: Path) -> None:
    """The first half of an MP4 whose index (moov) is at the end: an upload cut short."""
    whole = out.with_name("whole.mp4")
    _no_audio(whole)
    data = whole.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    whole.unlink()


def _truncated_faststart(out: Path) -> None:
    """Half of a "fast start" MP4: the index is intact, the media data is cut short."""
    whole = out.with_name("whole-faststart.mp4")
    run([*_BASE, *_video("640x360", 25, 2), *_X264, "-movflags", "+faststart", str(whole)])
    data = whole.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    whole.unlink()


def _audio_m4a(out: Path) -> None:
    run([*_BASE, *_tone(2), *_AAC, str(out)])


def _audio_mp3(out: Path) -> None:
    run([*_BASE, *_tone(2), "-c:a", "libmp3lame", str(out)])


KINDS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "landscape": ("landscape.mp4", _landscape),
    "portrait": ("portrait.mp4", _portrait),
    "odd": ("odd.mp4", _odd),
    "rotated": ("rotated.mp4", _rotated),
    "vfr": ("vfr.mp4", _vfr),
    "hevc10": ("hevc10.mp4", _hevc10),
    "no_audio": ("no-audio.mp4", _no_audio),
    "mov": ("clip.mov", _mov),
    "webm": ("clip.webm", _webm),
    "mkv": ("clip.mkv", _mkv),
    "avi": ("clip.avi", _avi),
    "hd": ("hd.mp4", _hd),
    "image": ("picture.png", _image),
    "text": ("notes.mp4", _text),
    "empty": ("empty.mp4", _empty),
    "truncated": ("truncated.mp4", _truncated),
    "truncated_faststart": ("truncated-faststart.mp4", _truncated_faststart),
    "audio_only": ("song.m4a", _audio_m4a),
    "audio_mp3": ("song.mp3", _audio_mp3),
}

# The kinds that must transcode (the end-to-end tests run each of them).
GOOD = [
    "landscape",
    "portrait",
    "odd",
    "rotated",
    "vfr",
    "hevc10",
    "no_audio",
    "webm",
    "mkv",
    "avi",
]

_cache: dict[str, Path] = {}


def _cache_folder() -> Path:
    if "" not in _cache:
        folder = Path(tempfile.mkdtemp(prefix="clipsync-clips-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _cache[""] = folder
    return _cache[""]


def make_clip(kind: str, folder: Path | None = None) -> Path:
    """The clip `kind` (a key of `KINDS`): made once and cached, or written to `folder`."""
    name, make = KINDS[kind]
    if folder is not None:
        path = folder / name
        make(path)
        return path
    if kind not in _cache:
        path = _cache_folder() / name
        make(path)
        _cache[kind] = path
    return _cache[kind]


Clips = Callable[[str], Path]


@pytest.fixture(scope="session", name="clips")
def clips_fixture() -> Clips:
    """`clips(kind)`: the cached clip of that kind."""
    if shutil.which(FFMPEG) is None or shutil.which(FFPROBE) is None:
        # A missing program fails the run, never skips it: `make test` installs ffmpeg.
        pytest.fail("ffmpeg and ffprobe are needed: apt-get install ffmpeg, or run `make test`")
    return make_clip
