"""Uploaded images (avatars, video posters): checked, turned upright, resized and written
anew, so nothing of the uploaded file but its pixels is ever stored.

Whatever is uploaded is only read. Pillow opens it as one of `IMAGE_FORMATS` (by its
content, not its name); the pixel count is checked from the header before anything is
decoded (a decompression bomb is refused unread); the first frame (of an animated GIF
or WebP) is turned upright (EXIF orientation), cropped to the size wanted and copied
onto a new image: EXIF, GPS, ICC, comments and any trailing payload are left behind.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Callable

from PIL import Image, ImageOps, UnidentifiedImageError

from clipsync.errors import ClipSyncError, UnsupportedUpload

log = logging.getLogger(__name__)

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# A 24-megapixel photo fits; past this, decoding alone could take far more memory than
# the file's size suggests (a decompression bomb).
MAX_PIXELS = 6000 * 4000
NOT_AN_IMAGE = "This file is not an image ClipSync can use: send a JPEG, PNG, WebP or GIF."


def too_many_pixels(what: str) -> str:
    """The refusal of an image over `MAX_PIXELS`; `what` names the images ("avatars")."""
    return (
        f"This image has too many pixels: {what} can have at most "
        f"{MAX_PIXELS // 1_000_000} million. Send a smaller one."
    )


async def read_bounded(
    chunks: AsyncIterator[bytes], limit: int, too_large: Callable[[], ClipSyncError]
) -> bytes:
    """The chunks joined, refused with `too_large()` as soon as they pass `limit` bytes."""
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise too_large()
    return bytes(data)


def render(
    data: bytes, size: tuple[int, int], image_format: str, what: str, *, alpha: bool = True
) -> bytes:
    """The image in `data`, upright, cropped to fill `size`, written anew as `image_format`
    ("WEBP", "JPEG"); `alpha=False` (always for JPEG) drops transparency.

    Raises `UnsupportedUpload` for anything that is not one whole image of
    `IMAGE_FORMATS`, or one with more than `MAX_PIXELS` pixels (`what` names the kind
    of image in that message).
    """
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            # The size comes from the header: nothing has been decoded yet.
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise UnsupportedUpload(too_many_pixels(what))
            image.seek(0)  # an animated GIF or WebP: its first frame
            image.load()
            upright = ImageOps.exif_transpose(image)
            transparent = "A" in upright.getbands() or "transparency" in upright.info
            mode = "RGBA" if transparent and alpha and image_format != "JPEG" else "RGB"
            fitted = ImageOps.fit(upright.convert(mode), size)
    except Image.DecompressionBombError:
        # Pillow's own limit (Image.MAX_IMAGE_PIXELS, checked on opening) is far above
        # ours: it catches the absurd ones before `image.size` is even read.
        raise UnsupportedUpload(too_many_pixels(what)) from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        log.info("image refused: %s", error)
        raise UnsupportedUpload(NOT_AN_IMAGE) from None
    # A new image holds pixels only: no EXIF, ICC, comments or text chunks come along.
    clean = Image.new(mode, fitted.size)
    clean.paste(fitted)
    out = io.BytesIO()
    if image_format == "JPEG":
        clean.save(out, "JPEG", quality=88, optimize=True)
    else:
        clean.save(out, image_format, quality=85, method=4)
    return out.getvalue()
