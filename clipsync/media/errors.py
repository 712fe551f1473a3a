"""Why a video could not be processed, in words meant for the person who uploaded it.

Every error carries `.message` (safe to show the uploader) and `.detail` (for logs:
ffmpeg's stderr tail, the ffprobe error; never shown to people), plus a stable
`code` the job can store with the video.
"""

from __future__ import annotations

from typing import ClassVar


class MediaError(Exception):
    """A source video could not be turned into a stream."""

    code: ClassVar[str] = "media_error"

    def __init__(self, message: str, *, detail: str = "") -> None:
        self.message = message
        self.detail = detail
        super().__init__(message)


class UnsupportedMedia(MediaError):
    """Not a video we can read: empty, text, an image, audio only, cut off, unknown."""

    code = "unsupported_media"


class TooLong(MediaError):
    """The video is longer than the configured limit."""

    code = "too_long"


class TranscodeFailed(MediaError):
    """ffmpeg exited with an error; `.detail` keeps the end of its stderr."""

    code = "transcode_failed"


class TranscodeStalled(MediaError):
    """ffmpeg made no progress for the stall timeout and was killed."""

    code = "transcode_stalled"
