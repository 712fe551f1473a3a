"""The NVENC and VAAPI transcoders: their ffmpeg commands, their detection, and the
fallback to the CPU when they are unavailable at start-up or fail in the middle of a job.

The command lines are pinned exactly and need no GPU. Detection and fallback run for
real on any machine: the plugins are pointed at devices that do not exist, and the
GPU that "fails mid-job" is a plugin whose encoder this ffmpeg really does not have.
The tests marked `gpu` transcode on whatever GPU the machine has.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from clients import bearer
from clips import FFMPEG, FFPROBE, GOOD, make_clip
from test_media_ladder import source
from test_media_pipeline import first_video_packet, master_variants
from test_video_jobs import SMALL_LADDER, job_context, registered

from clipsync.backends import Backends, select_all
from clipsync.errors import ConfigError
from clipsync.jobs.queue import create_huey
from clipsync.jobs.tasks import register_tasks
from clipsync.media import detection
from clipsync.media.commands import Previews, hls_command, sprite_layout
from clipsync.media.encoders import EncoderProfile, nvenc_profile, vaapi_profile
from clipsync.media.ladder import Rung, plan_ladder
from clipsync.media.pipeline import transcode
from clipsync.media.playlists import parse_media_playlist
from clipsync.media.probe import probe
from clipsync.models import Video, VideoStatus
from clipsync.plugins import create_plugin_host
from clipsync.services import transcoding
from clipsync.services.transcoding import max_concurrent, run_transcode
from clipsync.settings import Settings

RUNGS = [Rung(240, 400), Rung(360, 800)]
LANDSCAPE = dataclasses.replace(source(1280, 720), audio_stream=1)
PORTRAIT = dataclasses.replace(source(720, 1280), audio_stream=1)
# 4:4:4, as odd sizes are in H.264; and a phone's 10-bit HEVC: NVDEC cannot hand these
# to h264_nvenc as they are, so they are decoded in software and uploaded.
ODD = dataclasses.replace(source(1279, 719), pix_fmt="yuv444p", audio_stream=1)
SILENT = dataclasses.replace(source(1280, 720), audio_codec=None)
HEVC10 = dataclasses.replace(PORTRAIT, video_codec="hevc", pix_fmt="yuv420p10le")
ROTATED = dataclasses.replace(PORTRAIT, rotation=90)

HEAD = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
        "-progress", "pipe:1"]  # fmt: skip
INPUT = ["-protocol_whitelist", "file", "-format_whitelist", "mov,matroska,avi",
         "-i", "file:/src/in.mp4"]  # fmt: skip
AUDIO = ["-c:a", "aac", "-b:a", "128000", "-ac", "2", "-ar", "48000"]
TAIL = [
    "-map_metadata", "-1", "-map_chapters", "-1",
    "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod",
    "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
    "-hls_fmp4_init_filename", "init.mp4",
    "-hls_segment_filename", "/out/%v/seg_%05d.m4s",
    "-var_stream_map",
]  # fmt: skip
WITH_AUDIO = "v:0,agroup:aud,name:240p v:1,agroup:aud,name:360p a:0,agroup:aud,name:audio"
IMAGES = [
    "-map", "[poster]", "-fps_mode", "passthrough", "-enc_time_base", "1:1000",
    "-q:v", "3", "-map_metadata", "-1", "-f", "image2", "-update", "1", "/out/poster.jpg",
    "-map", "[sprite]", "-fps_mode", "passthrough", "-enc_time_base", "1:1000",
    "-q:v", "5", "-map_metadata", "-1", "-f", "image2", "-update", "1", "/out/sprite.jpg",
]  # fmt: skip


def device_images(poster: str, tile: str, sheet: str) -> str:
    """The poster and sprite branches when frames after the split live on the device.

    Frame 30 is the poster (1 s into the 10 s sources) and a thumbnail is taken every
    5 s (two, side by side). Only the frames picked are downloaded (as nv12: what the
    profiles upload, and what NVDEC hands over for the 8-bit 4:2:0 sources it takes);
    they are scaled, tiled and encoded on the CPU, as on the CPU profile.
    """
    return (
        ";[vp]select=eq(n\\,0)+gte(pts\\,30)*lt(start_pts\\,30)*eq(selected_n\\,1),"
        f"hwdownload,format=nv12,scale={poster}:flags=bicubic,setsar=1,"
        "settb=1/1000,setpts=N[poster]"
        ";[vs]setpts=PTS-STARTPTS,fps=1/5:round=up,trim=end_frame=2,hwdownload,format=nv12,"
        f"scale={tile}:flags=bicubic,setsar=1,split[vs_first][vs_all]"
        f";[vs_first]trim=end_frame=1,pad={sheet}[vs_placeholder]"
        ";[vs_all]tile=2x1[vs_sheet]"
        ";[vs_placeholder][vs_sheet]concat=n=2:v=1:a=0,settb=1/1000,setpts=N[sprite]"
    )


LANDSCAPE_IMAGES = device_images("1280:720", "160:90", "320:90")
PORTRAIT_IMAGES = device_images("720:1280", "160:284", "320:284")
ODD_IMAGES = device_images("1278:718", "160:90", "320:90")
CUDA = ["-init_hw_device", "cuda=cu:0", "-filter_hw_device", "cu"]
NVDEC = ["-hwaccel", "cuda", "-hwaccel_device", "cu", "-hwaccel_output_format", "cuda"]


def command(profile, info) -> list[str]:
    variants = plan_ladder(RUNGS, info)
    layout = sprite_layout(info.duration, 5, 10, 160, info.width / info.height)
    previews = Previews(Path("/out/poster.jpg"), Path("/out/sprite.jpg"), layout)
    return hls_command(
        "ffmpeg", Path("/src/in.mp4"), info, variants, Path("/out"), profile, previews=previews
    )


def nvenc_video(index: int, bitrate: int) -> list[str]:
    return [
        f"-c:v:{index}", "h264_nvenc", f"-b:v:{index}", str(bitrate),
        f"-maxrate:v:{index}", str(round(bitrate * 1.07)),
        f"-bufsize:v:{index}", str(round(bitrate * 1.5)),
        f"-profile:v:{index}", "high", f"-g:v:{index}", "120", f"-keyint_min:v:{index}", "120",
        f"-preset:v:{index}", "p4", f"-rc:v:{index}", "vbr",
        f"-forced-idr:v:{index}", "1", f"-no-scenecut:v:{index}", "1",
        f"-force_key_frames:v:{index}", "expr:gte(t,n_forced*4)",
    ]  # fmt: skip


def vaapi_video(index: int, bitrate: int) -> list[str]:
    return [
        f"-c:v:{index}", "h264_vaapi", f"-b:v:{index}", str(bitrate),
        f"-maxrate:v:{index}", str(round(bitrate * 1.07)),
        f"-bufsize:v:{index}", str(round(bitrate * 1.5)),
        f"-profile:v:{index}", "high", f"-g:v:{index}", "120", f"-keyint_min:v:{index}", "120",
        f"-rc_mode:v:{index}", "VBR",
        f"-force_key_frames:v:{index}", "expr:gte(t,n_forced*4)",
    ]  # fmt: skip


# --- the command lines, exactly -----------------------------------------------------------


def test_nvenc_landscape_decodes_scales_and_encodes_on_the_gpu() -> None:
    assert command(nvenc_profile("p4", 0), LANDSCAPE) == [
        *HEAD, *CUDA, *NVDEC, *INPUT,
        "-filter_complex",
        "[0:0]fps=30,split=4[s0][s1][vp][vs];"
        "[s0]scale_cuda=w=426:h=240:interp_algo=bicubic,setsar=1[v0];"
        "[s1]scale_cuda=w=640:h=360:interp_algo=bicubic,setsar=1[v1]" + LANDSCAPE_IMAGES,
        "-map", "[v0]", "-map", "[v1]", "-map", "0:1",
        *nvenc_video(0, 400_000), *nvenc_video(1, 800_000), *AUDIO,
        *TAIL, WITH_AUDIO, "/out/%v/index.m3u8", *IMAGES,
    ]  # fmt: skip


def test_nvenc_portrait_hevc10_is_decoded_in_software_and_uploaded() -> None:
    assert command(nvenc_profile("p4", 0), HEVC10) == [
        *HEAD, *CUDA, *INPUT,
        "-filter_complex",
        "[0:0]fps=30,format=nv12,hwupload_cuda,split=4[s0][s1][vp][vs];"
        "[s0]scale_cuda=w=240:h=426:interp_algo=bicubic,setsar=1[v0];"
        "[s1]scale_cuda=w=360:h=640:interp_algo=bicubic,setsar=1[v1]" + PORTRAIT_IMAGES,
        "-map", "[v0]", "-map", "[v1]", "-map", "0:1",
        *nvenc_video(0, 400_000), *nvenc_video(1, 800_000), *AUDIO,
        *TAIL, WITH_AUDIO, "/out/%v/index.m3u8", *IMAGES,
    ]  # fmt: skip


def test_nvenc_odd_size_444_source_gets_even_renditions_via_upload() -> None:
    assert command(nvenc_profile("p7", 1), ODD) == [
        *HEAD, "-init_hw_device", "cuda=cu:1", "-filter_hw_device", "cu", *INPUT,
        "-filter_complex",
        "[0:0]fps=30,format=nv12,hwupload_cuda,split=4[s0][s1][vp][vs];"
        "[s0]scale_cuda=w=426:h=240:interp_algo=bicubic,setsar=1[v0];"
        "[s1]scale_cuda=w=640:h=360:interp_algo=bicubic,setsar=1[v1]" + ODD_IMAGES,
        "-map", "[v0]", "-map", "[v1]", "-map", "0:1",
        *[a.replace("p4", "p7") for a in nvenc_video(0, 400_000)],
        *[a.replace("p4", "p7") for a in nvenc_video(1, 800_000)],
        *AUDIO, *TAIL, WITH_AUDIO, "/out/%v/index.m3u8", *IMAGES,
    ]  # fmt: skip


def test_nvenc_without_audio_maps_video_only() -> None:
    assert command(nvenc_profile(), SILENT) == [
        *HEAD, *CUDA, *NVDEC, *INPUT,
        "-filter_complex",
        "[0:0]fps=30,split=4[s0][s1][vp][vs];"
        "[s0]scale_cuda=w=426:h=240:interp_algo=bicubic,setsar=1[v0];"
        "[s1]scale_cuda=w=640:h=360:interp_algo=bicubic,setsar=1[v1]" + LANDSCAPE_IMAGES,
        "-map", "[v0]", "-map", "[v1]",
        *nvenc_video(0, 400_000), *nvenc_video(1, 800_000),
        *TAIL, "v:0,name:240p v:1,name:360p", "/out/%v/index.m3u8", *IMAGES,
    ]  # fmt: skip


def test_nvenc_decodes_rotated_sources_in_software_so_they_come_out_upright() -> None:
    rotated = command(nvenc_profile(), ROTATED)
    assert "-hwaccel" not in rotated
    graph = rotated[rotated.index("-filter_complex") + 1]
    assert graph.startswith("[0:0]fps=30,format=nv12,hwupload_cuda,split=4")


def test_vaapi_landscape_uploads_once_then_scales_and_encodes_on_the_gpu() -> None:
    assert command(vaapi_profile("/dev/dri/renderD128"), LANDSCAPE) == [
        *HEAD, "-vaapi_device", "/dev/dri/renderD128", *INPUT,
        "-filter_complex",
        "[0:0]fps=30,format=nv12,hwupload,split=4[s0][s1][vp][vs];"
        "[s0]scale_vaapi=w=426:h=240,setsar=1[v0];"
        "[s1]scale_vaapi=w=640:h=360,setsar=1[v1]" + LANDSCAPE_IMAGES,
        "-map", "[v0]", "-map", "[v1]", "-map", "0:1",
        *vaapi_video(0, 400_000), *vaapi_video(1, 800_000), *AUDIO,
        *TAIL, WITH_AUDIO, "/out/%v/index.m3u8", *IMAGES,
    ]  # fmt: skip


def test_vaapi_portrait() -> None:
    assert command(vaapi_profile("/dev/dri/renderD129"), PORTRAIT) == [
        *HEAD, "-vaapi_device", "/dev/dri/renderD129", *INPUT,
        "-filter_complex",
        "[0:0]fps=30,format=nv12,hwupload,split=4[s0][s1][vp][vs];"
        "[s0]scale_vaapi=w=240:h=426,setsar=1[v0];"
        "[s1]scale_vaapi=w=360:h=640,setsar=1[v1]" + PORTRAIT_IMAGES,
        "-map", "[v0]", "-map", "[v1]", "-map", "0:1",
        *vaapi_video(0, 400_000), *vaapi_video(1, 800_000), *AUDIO,
        *TAIL, WITH_AUDIO, "/out/%v/index.m3u8", *IMAGES,
    ]  # fmt: skip


def test_vaapi_odd_size() -> None:
    assert command(vaapi_profile(), ODD) == [
        *HEAD, "-vaapi_device", "/dev/dri/renderD128", *INPUT,
        "-filter_complex",
        "[0:0]fps=30,format=nv12,hwupload,split=4[s0][s1][vp][vs];"
        "[s0]scale_vaapi=w=426:h=240,setsar=1[v0];"
        "[s1]scale_vaapi=w=640:h=360,setsar=1[v1]" + ODD_IMAGES,
        "-map", "[v0]", "-map", "[v1]", "-map", "0:1",
        *vaapi_video(0, 400_000), *vaapi_video(1, 800_000), *AUDIO,
        *TAIL, WITH_AUDIO, "/out/%v/index.m3u8", *IMAGES,
    ]  # fmt: skip


def test_vaapi_without_audio_maps_video_only() -> None:
    assert command(vaapi_profile(), SILENT) == [
        *HEAD, "-vaapi_device", "/dev/dri/renderD128", *INPUT,
        "-filter_complex",
        "[0:0]fps=30,format=nv12,hwupload,split=4[s0][s1][vp][vs];"
        "[s0]scale_vaapi=w=426:h=240,setsar=1[v0];"
        "[s1]scale_vaapi=w=640:h=360,setsar=1[v1]" + LANDSCAPE_IMAGES,
        "-map", "[v0]", "-map", "[v1]",
        *vaapi_video(0, 400_000), *vaapi_video(1, 800_000),
        *TAIL, "v:0,name:240p v:1,name:360p", "/out/%v/index.m3u8", *IMAGES,
    ]  # fmt: skip


def test_every_encoder_option_exists_in_this_ffmpeg() -> None:
    """A typo in an option name would only show on a machine with the GPU."""
    for encoder, profile in (("h264_nvenc", nvenc_profile()), ("h264_vaapi", vaapi_profile())):
        help_text = subprocess.run(
            [FFMPEG, "-hide_banner", "-h", f"encoder={encoder}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        for option, value in profile.stream_options:
            assert f"  -{option} " in help_text, f"{encoder} has no -{option}"
            if not value.isdigit():
                assert f"     {value} " in help_text, f"{encoder} -{option} has no {value}"
    filters = detection.ffmpeg_lists(FFMPEG, "filters")
    assert {"scale_cuda", "hwupload_cuda", "scale_vaapi", "hwupload", "hwdownload"} <= filters
    for profile in (nvenc_profile(), vaapi_profile()):
        assert profile.download_filter == "hwdownload,format=nv12"


def software_vulkan_works() -> bool:
    done = subprocess.run(
        [FFMPEG, "-v", "error", "-init_hw_device", "vulkan=vk", "-filter_hw_device", "vk",
         "-f", "lavfi", "-i", "testsrc=size=64x36:rate=1:duration=1",
         "-vf", "format=nv12,hwupload,hwdownload,format=nv12", "-f", "null", "-"],
        capture_output=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


async def test_previews_from_frames_on_a_device_without_a_gpu(tmp_path: Path) -> None:
    """The NVENC and VAAPI graphs' shape, run for real on a device that needs no GPU.

    Mesa's software Vulkan (lavapipe) stands in: frames are uploaded before the split,
    scaled on the device, and the poster and the sprite branches pick their frames and
    download only those, as `nvenc_profile` and `vaapi_profile` do.
    """
    if not software_vulkan_works():
        pytest.fail(
            "no Vulkan device for ffmpeg: apt-get install mesa-vulkan-drivers "
            "(Mesa's software lavapipe), or run `make test`, which installs it"
        )
    vulkan = EncoderProfile(
        name="vulkan",
        video_encoder="libx264",
        input_args=("-init_hw_device", "vulkan=vk", "-filter_hw_device", "vk"),
        pre_filter="format=nv12,hwupload",
        scale_template="scale_vulkan=w={width}:h={height},hwdownload,format=nv12",
        download_filter="hwdownload,format=nv12",
        stream_options=(("preset", "ultrafast"),),
    )
    clip = make_clip("rotated")
    info = await probe(clip, FFPROBE)
    out = tmp_path / "hls"
    result = await transcode(
        clip, info, out, ffmpeg=FFMPEG, profile=vulkan, rungs=[Rung(144, 200)],
        segment_seconds=1, stall_timeout=60,
    )  # fmt: skip
    for image, size in ((result.poster, "360x640"), (result.sprite, "160x284")):
        shown = subprocess.run(
            [FFPROBE, "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=s=x:p=0",
             str(image)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert shown == size, image.name


# --- detection, on a machine without the devices ----------------------------------------


def without_gpus(tmp_path: Path) -> dict:
    """Plugin settings that point both hardware transcoders at devices that do not exist."""
    return {
        "transcoder_nvenc": {"gpu": 7},
        "transcoder_vaapi": {"device": str(tmp_path / "dri" / "renderD128")},
    }


def test_auto_picks_the_cpu_and_records_why_each_gpu_cannot_work(make_settings, tmp_path) -> None:
    settings = make_settings(plugins=without_gpus(tmp_path))
    host = create_plugin_host(settings, load_entry_points=False, environ={})
    row = next(
        b for b in Backends(select_all(host, settings)).describe() if b["kind"] == "transcoder"
    )
    device = tmp_path / "dri" / "renderD128"
    assert row["active"] == "cpu" and row["configured"] == "auto"
    assert row["probes"]["nvenc"] == {
        "ok": False,
        "reason": "no /dev/nvidia7: install the NVIDIA driver; in a container, pass the GPU "
        "(--gpus all with the NVIDIA Container Toolkit)",
    }
    assert row["probes"]["vaapi"]["ok"] is False
    assert row["probes"]["vaapi"]["reason"].startswith(
        f"no {device}: pass the device to the container (--device /dev/dri)"
    )
    assert row["probes"]["cpu"]["ok"] is True
    assert row["reason"].startswith("auto: the available backend of highest priority (nvenc: no ")
    assert "vaapi: no " in row["reason"]


def test_clipsync_plugins_shows_each_transcoder_and_its_reason(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[paths]\ndata_dir = "data"\n[plugins.transcoder_nvenc]\ngpu = 7\n'
        f'[plugins.transcoder_vaapi]\ndevice = "{tmp_path}/renderD128"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "clipsync", "--config", str(config), "plugins"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "transcoder_nvenc 0.1.0 (built-in)" in done.stdout
    assert "transcoder: cpu from transcoder_cpu (configured: auto; auto:" in done.stdout
    assert "    nvenc: unavailable: no /dev/nvidia7: install the NVIDIA driver" in done.stdout
    assert f"    vaapi: unavailable: no {tmp_path}/renderD128: pass the device" in done.stdout
    assert "    cpu: available: libx264 test encode" in done.stdout


def test_a_device_node_that_is_no_gpu_fails_the_test_encode_and_says_so(
    make_settings, tmp_path
) -> None:
    # The node exists and is readable and writable; only a real encode finds it useless.
    fake = tmp_path / "renderD128"
    fake.write_bytes(b"")
    tables = without_gpus(tmp_path)
    tables["transcoder_vaapi"]["device"] = str(fake)
    settings = make_settings(plugins=tables)
    host = create_plugin_host(settings, load_entry_points=False, environ={})
    selection = select_all(host, settings)["transcoder"]
    assert selection.chosen.name == "cpu"
    reason = selection.probes["vaapi"].reason
    assert reason.startswith(f"test encode with h264_vaapi on {fake} failed: "), reason


def test_an_ffmpeg_without_the_encoder_is_named_as_the_reason() -> None:
    assert detection.missing_from_ffmpeg(FFMPEG, encoders=("h264_nvenc",)) is None
    reason = detection.missing_from_ffmpeg(FFMPEG, encoders=("h264_nonesuch",))
    assert reason and reason.startswith(f"{FFMPEG} has no h264_nonesuch encoder")
    reason = detection.missing_from_ffmpeg(FFMPEG, filters=("scale_nonesuch",))
    assert reason and "has no scale_nonesuch filter" in reason


def test_a_missing_ffmpeg_is_the_reason(make_settings, tmp_path) -> None:
    tables = without_gpus(tmp_path)
    tables["transcoder_nvenc"]["ffmpeg"] = "/nonexistent/ffmpeg"
    settings = make_settings(plugins=tables)
    host = create_plugin_host(settings, load_entry_points=False, environ={})
    selection = select_all(host, settings)["transcoder"]
    assert selection.probes["nvenc"].reason.startswith("/nonexistent/ffmpeg not found")


def test_a_bad_nvenc_preset_names_the_key(make_settings) -> None:
    settings = make_settings(plugins={"transcoder_nvenc": {"preset": "veryfast"}})
    with pytest.raises(ConfigError, match=r"\[plugins.transcoder_nvenc\] preset must be one of"):
        create_plugin_host(settings, load_entry_points=False, environ={})


def test_a_named_unavailable_gpu_stops_start_up_with_its_reason(make_settings, tmp_path) -> None:
    settings = make_settings(transcoder={"backend": "vaapi"}, plugins=without_gpus(tmp_path))
    host = create_plugin_host(settings, load_entry_points=False, environ={})
    with pytest.raises(ConfigError) as error:
        select_all(host, settings)
    assert f"[transcoder] backend = 'vaapi': unavailable: no {tmp_path}/dri/renderD128: pass" in (
        str(error.value)
    )


# --- fallback to the CPU ------------------------------------------------------------------

# A GPU transcoder that passes its probe and then fails in the middle of a job: its
# encoder is one this ffmpeg does not have, so ffmpeg really exits with an error.
BROKEN_GPU_PLUGIN = """
import shutil
from typing import ClassVar

from clipsync import hookimpl
from clipsync.backends import Availability
from clipsync.media.encoders import EncoderProfile


class BrokenGpu:
    name: ClassVar[str] = "brokengpu"
    priority: ClassVar[int] = 30
    default_max_concurrent: ClassVar[int] = 1
    ffmpeg = shutil.which("ffmpeg")

    @classmethod
    def probe(cls, context):
        return Availability.yes("the test encode passed")

    @classmethod
    def create(cls, context):
        return cls()

    def profile(self):
        return EncoderProfile(
            name="brokengpu", video_encoder="h264_brokengpu", pre_filter="format=yuv420p"
        )


@hookimpl
def register_transcoders():
    return [BrokenGpu]
"""


@pytest.fixture
def broken_gpu_dir(tmp_path: Path):
    folder = tmp_path / "gpu-plugins"
    folder.mkdir()
    (folder / "brokengpu.py").write_text(BROKEN_GPU_PLUGIN)
    yield folder
    sys.modules.pop("clipsync_dir_plugin_brokengpu", None)


@pytest.fixture
def app_with(start_app, make_settings, migrated_sqlite: Path):
    async def start(**tables):
        settings = make_settings(**tables)
        settings.data_dir.mkdir(parents=True)
        (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
        return await start_app(settings)

    return start


async def test_a_named_unavailable_gpu_with_fallback_cpu_transcodes_and_records_both(
    app_with, tmp_path: Path
) -> None:
    app, client = await app_with(
        transcoder={**SMALL_LADDER, "backend": "vaapi", "fallback": "cpu"},
        plugins=without_gpus(tmp_path),
    )
    selection = app.ctx.backends.selections["transcoder"]
    assert selection.chosen.name == "cpu"
    assert selection.reason.startswith(f"fallback: vaapi is unavailable (no {tmp_path}/dri/")

    video_id, token = await registered(client)
    await run_transcode(job_context(app), video_id, final_attempt=True)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY and video.error is None
    assert video.encoder == (
        f"libx264 (cpu); vaapi unavailable: no {tmp_path}/dri/renderD128: "
        "pass the device to the container (--device /dev/dri); outside a container, "
        "this machine has no GPU with a loaded driver"
    )
    detail = await client.get(f"/api/videos/{video_id}", headers=bearer(token))
    assert detail.json()["video"]["encoder"] == video.encoder


async def test_a_gpu_that_fails_mid_job_is_retried_on_the_cpu_and_both_are_recorded(
    app_with, broken_gpu_dir: Path, tmp_path: Path
) -> None:
    app, client = await app_with(
        transcoder=SMALL_LADDER,
        plugins={"dirs": [str(broken_gpu_dir)], **without_gpus(tmp_path)},
    )
    assert app.ctx.backends.selections["transcoder"].chosen.name == "brokengpu"
    video_id, _ = await registered(client)
    await run_transcode(job_context(app), video_id, final_attempt=False)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY and video.attempts == 1 and video.error is None
    assert video.encoder == (
        "libx264 (cpu) after h264_brokengpu (brokengpu) failed: "
        "ffmpeg reported: Unknown encoder 'h264_brokengpu'"
    )
    # The CPU transcoder was probed and built for the retry, and /-/plugins shows it.
    row = next(b for b in app.ctx.backends.describe() if b["kind"] == "transcoder")
    assert row["active"] == "brokengpu" and row["probes"]["cpu"]["ok"]


async def test_a_failing_gpu_without_a_cpu_transcoder_fails_the_attempt(
    app_with, broken_gpu_dir: Path, tmp_path: Path
) -> None:
    app, client = await app_with(
        transcoder=SMALL_LADDER,
        plugins={
            "dirs": [str(broken_gpu_dir)],
            "disabled": ["transcoder_cpu"],
            **without_gpus(tmp_path),
        },
    )
    video_id, _ = await registered(client)
    await run_transcode(job_context(app), video_id, final_attempt=True)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.FAILED
    assert "Unknown encoder 'h264_brokengpu'" in video.error


# --- how many jobs at once ----------------------------------------------------------------


def test_max_concurrent_defaults_to_the_transcoders_own_and_the_setting_wins(
    make_settings, broken_gpu_dir: Path, tmp_path: Path
) -> None:
    def limit(**transcoder) -> int:
        settings = make_settings(
            transcoder=transcoder, plugins={"dirs": [str(broken_gpu_dir)], **without_gpus(tmp_path)}
        )
        host = create_plugin_host(settings, load_entry_points=False, environ={})
        return max_concurrent(settings, Backends(select_all(host, settings)))

    cores = os.cpu_count() or 2
    assert limit() == 1  # a GPU: one job at a time
    assert limit(backend="cpu") == max(1, cores // 2)
    assert limit(backend="cpu", max_concurrent=3) == 3


@pytest.mark.parametrize(("limit", "overlap"), [(1, False), (2, True)])
def test_max_concurrent_bounds_the_transcodes_one_consumer_runs_at_once(
    make_settings, migrated_sqlite: Path, monkeypatch, tmp_path: Path, limit: int, overlap: bool
) -> None:
    settings = make_settings(
        transcoder={"max_concurrent": limit}, queue={"workers": 2}, plugins=without_gpus(tmp_path)
    )
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    tasks = register_tasks(create_huey(settings), settings)
    spans: dict[str, tuple[float, float]] = {}
    waiting: list[set[str]] = []

    async def job(ctx, video_id: str, *, final_attempt: bool) -> None:
        started = time.monotonic()
        await asyncio.sleep(0.3)
        waiting.append(tasks.runtime.waiting())
        await asyncio.sleep(0.3)
        spans[video_id] = (started, time.monotonic())

    monkeypatch.setattr(transcoding, "run_transcode", job)
    # Two worker threads take a job each, as Huey's consumer does with workers = 2.
    workers = [
        threading.Thread(target=tasks.transcode_video.call_local, args=(video_id,))
        for video_id in ("first", "second")
    ]
    try:
        tasks.runtime.context()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
    finally:
        tasks.runtime.close()
    (_, first_end), (second_start, _) = sorted(spans.values())
    if overlap:
        assert second_start < first_end
    else:
        assert second_start >= first_end
        # The job waiting for its turn counts as queued, so the reaper leaves it alone.
        assert waiting[0] in ({"first"}, {"second"})


# --- on a real GPU (skipped where there is neither /dev/dri nor /dev/nvidia0) -----------------


def hardware_transcoder(settings: Settings):
    """The transcoder `auto` picks with the default settings: on a GPU machine, a GPU one."""
    host = create_plugin_host(settings, load_entry_points=False, environ={})
    selection = select_all(host, settings)["transcoder"]
    assert selection.chosen.name in ("nvenc", "vaapi"), (
        f"this machine has a GPU device, but auto chose {selection.chosen.name}: {selection.reason}"
    )
    return selection.instance


@pytest.mark.gpu
@pytest.mark.parametrize("kind", GOOD)
async def test_the_gpu_transcoder_makes_aligned_h264_renditions(
    kind: str, tmp_path: Path, make_settings
) -> None:
    transcoder = hardware_transcoder(make_settings())
    clip = make_clip(kind)
    info = await probe(clip, FFPROBE)
    out = tmp_path / "hls"
    result = await transcode(
        clip, info, out, ffmpeg=transcoder.ffmpeg, profile=transcoder.profile(),
        rungs=[Rung(144, 200), Rung(240, 400), Rung(360, 800)], segment_seconds=1,
        stall_timeout=60,
    )  # fmt: skip
    assert result.encoder == f"{transcoder.profile().video_encoder} ({transcoder.name})"
    timelines = []
    for attributes, uri in master_variants((out / "master.m3u8").read_text()):
        width, height = map(int, attributes["RESOLUTION"].split("x"))
        assert width % 2 == 0 and height % 2 == 0 and (width > height) == (info.width > info.height)
        folder = (out / uri).parent
        streams = subprocess.run(
            [FFPROBE, "-v", "error", "-print_format", "json", "-show_streams", str(out / uri)],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        (video,) = [s for s in json.loads(streams)["streams"] if s["codec_type"] == "video"]
        assert (video["codec_name"], video["profile"], video["pix_fmt"]) == (
            "h264", "High", "yuv420p",
        )  # fmt: skip
        assert (video["width"], video["height"]) == (width, height)
        playlist = parse_media_playlist((folder / "index.m3u8").read_text())
        init = (folder / "init.mp4").read_bytes()
        starts = []
        for segment in playlist.segments:
            start, flags = first_video_packet(init, (folder / segment.uri).read_bytes())
            assert flags.startswith("K"), f"{uri}: {segment.uri} starts with {flags}"
            starts.append(start)
        timelines.append(starts)
    assert timelines and all(t == timelines[0] for t in timelines), timelines
    decoded = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(out / "master.m3u8"), "-f", "null", "-"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert decoded.returncode == 0 and not decoded.stderr.strip(), decoded.stderr


@pytest.mark.gpu
async def test_a_job_on_the_gpu_ends_ready_and_records_the_gpu_encoder(app_with) -> None:
    app, client = await app_with(transcoder=SMALL_LADDER)
    transcoder = hardware_transcoder(app.ctx.settings)
    assert app.ctx.backends.selections["transcoder"].chosen.name == transcoder.name
    video_id, _ = await registered(client)
    await run_transcode(job_context(app), video_id, final_attempt=True)
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.READY, video.error
    assert video.encoder == f"{transcoder.profile().video_encoder} ({transcoder.name})"
