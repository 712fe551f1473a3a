"""The one place object keys are built and checked.

A key is a relative, `/`-separated path such as `videos/<id>/source.mp4`. Every
backend stores objects under these keys (a file path on disk, an object name in a
bucket), so the layout is the same in every storage mode and moving between stores
is a copy:

    videos/<video id>/source<.ext>          the upload, as received
    videos/<video id>/hls/master.m3u8       the HLS tree made by the transcoder
    videos/<video id>/hls/<rendition>/…     one folder per rendition, and audio/
    videos/<video id>/hls/poster.jpg        poster, seek-preview sprite and its index
    videos/<video id>/hls/sprite.jpg
    videos/<video id>/hls/thumbnails.vtt
    videos/<video id>/hls/candidates/<n>.jpg    frames the uploader may pick as poster
    videos/<video id>/hls/posters/<version>.jpg an uploaded poster: the one part of hls/
                                            a re-transcode keeps (services/thumbnails.py)
    videos/<video id>/source-<version><.ext>    a replaced source (services/source_replacement.py)
    videos/<video id>/captions/<language>.vtt   a caption track (outside hls/, which a
                                            re-transcode replaces whole)
    avatars/<user id>/<version>.webp        a person's avatar, re-encoded by
                                            services/profiles.py
"""

from __future__ import annotations

import re
import uuid

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SOURCE_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative key; raise ValueError otherwise."""
    parts = key.split("/")
    if not key or any(not _SEGMENT.match(part) or ".." in part for part in parts):
        raise ValueError(f"not a valid storage key: {key!r}")
    return key


def video_prefix(video_id: uuid.UUID | str) -> str:
    """Everything stored for one video lives under this prefix."""
    return f"videos/{uuid.UUID(str(video_id))}"


def source_key(video_id: uuid.UUID | str, filename: str) -> str:
    """Where an upload is kept; the extension comes from the uploaded file's name."""
    extension = next((e for e in SOURCE_EXTENSIONS if filename.lower().endswith(e)), "")
    return f"{video_prefix(video_id)}/source{extension}"


def replacement_source_key(video_id: uuid.UUID | str, filename: str, version: str) -> str:
    """Where a new source for an existing video is kept: beside the one it replaces, under
    a name of its own, so the old one stays whole until the new one is accepted."""
    extension = next((e for e in SOURCE_EXTENSIONS if filename.lower().endswith(e)), "")
    return check_key(f"{video_prefix(video_id)}/source-{version}{extension}")


def hls_prefix(video_id: uuid.UUID | str) -> str:
    return f"{video_prefix(video_id)}/hls"


def hls_key(video_id: uuid.UUID | str, relative: str) -> str:
    """The key of a file of the HLS tree, from its path relative to the tree."""
    return check_key(f"{hls_prefix(video_id)}/{relative}")


def hls_path(video_id: uuid.UUID | str, key: str) -> str:
    """A key of the video's HLS tree as the path `/hls/<video id>/` serves it under."""
    prefix = hls_prefix(video_id) + "/"
    if not key.startswith(prefix):
        raise ValueError(f"not a key of the HLS tree of {video_id}: {key!r}")
    return check_key(key).removeprefix(prefix)


def candidates_prefix(video_id: uuid.UUID | str) -> str:
    return f"{hls_prefix(video_id)}/candidates"


def candidate_key(video_id: uuid.UUID | str, number: int) -> str:
    """Thumbnail candidate `number` (from 1) that the transcode made."""
    return check_key(f"{candidates_prefix(video_id)}/{int(number)}.jpg")


def uploaded_posters_prefix(video_id: uuid.UUID | str) -> str:
    return f"{hls_prefix(video_id)}/posters"


def uploaded_poster_key(video_id: uuid.UUID | str, version: str) -> str:
    """An uploaded poster; `version` changes with every upload, so its URL does."""
    return check_key(f"{uploaded_posters_prefix(video_id)}/{version}.jpg")


def caption_key(video_id: uuid.UUID | str, language: str) -> str:
    """Where the WebVTT track of one language (a checked BCP 47 tag) is kept."""
    return check_key(f"{video_prefix(video_id)}/captions/{language}.vtt")


def avatar_key(user_id: int, version: str) -> str:
    """A person's avatar image; `version` changes with every upload, so its URL does."""
    return check_key(f"avatars/{int(user_id)}/{version}.webp")
