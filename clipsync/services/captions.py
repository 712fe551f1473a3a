"""Captions: the WebVTT tracks of a video, one per language.

Who may do what follows `services.videos`, the one visibility rule: whoever may see
a video may list its captions (and the player loads them); its uploader and the
moderators who may moderate it (`can_moderate`) may add, replace and delete them.
Anyone else is answered 404, as if the video did not exist.

An upload is read whole (at most `media.captions.MAX_BYTES`), checked and sanitised
(`media.captions`), SRT converted, and stored as WebVTT under `keys.caption_key`,
outside the HLS tree so a re-transcode keeps it; the same language again replaces
the file in place. A refused file stores nothing and changes nothing. The files go
with the video: they live under `keys.video_prefix`, which deleting a video empties.
"""

from __future__ import annotations

import logging
from typing import Any

from tortoise.exceptions import IntegrityError

from clipsync.errors import Conflict, NotFound, ValidationFailed
from clipsync.media import languages
from clipsync.media.captions import CaptionError, to_webvtt
from clipsync.models import Caption, User, Video
from clipsync.services.moderation import record
from clipsync.services.videos import can_moderate, get_visible
from clipsync.storage import keys
from clipsync.text_rules import clean_field

log = logging.getLogger(__name__)

MAX_LABEL = 64  # the model's column
VTT_TYPE = "text/vtt; charset=utf-8"


def caption_json(caption: Caption) -> dict[str, Any]:
    """What the API shows of a caption track; `url` is where players read it."""
    return {
        "language": caption.language,
        "label": caption.label,
        "size": caption.size,
        "url": f"/hls/{caption.video_id}/captions/{caption.language}.vtt",
        "createdAt": caption.created_at.isoformat() if caption.created_at else None,
        "updatedAt": caption.updated_at.isoformat() if caption.updated_at else None,
    }


def language_tag(value: Any) -> str:
    """The checked, normalised BCP 47 tag of a form value; 422 otherwise."""
    tag = languages.normalise_tag(value) if isinstance(value, str) else None
    if not tag:
        raise ValidationFailed(
            "language must be a language tag such as en, fr or pt-BR (BCP 47).",
            field="language",
        )
    return tag


def caption_label(value: Any, tag: str) -> str:
    """The label a player's menu shows: as given, or the language's own name."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return languages.display_name(tag)[:MAX_LABEL]
    if not isinstance(value, str) or len(value.strip()) > MAX_LABEL:
        raise ValidationFailed(
            f"The label is text of at most {MAX_LABEL} characters.", field="label"
        )
    label = clean_field(value.strip(), field="label", what="Labels")
    if '"' in label:
        # It is written into the master playlist as a quoted string, which has no escapes.
        raise ValidationFailed('The label cannot contain a double quote (").', field="label")
    return label


async def tracks_of(video_id: Any) -> list[Caption]:
    """A video's caption tracks, by language: for the list, the master playlist, the page."""
    return list(await Caption.filter(video_id=video_id).order_by("language"))


class CaptionService:
    """Listing, adding, replacing and deleting caption tracks."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage

    async def visible(self, user: User, video_id: Any) -> Video:
        return await get_visible(user, video_id)

    async def editable(self, user: User, video_id: Any) -> Video:
        """The video if `user` uploaded it or may moderate it; NotFound otherwise."""
        video = await get_visible(user, video_id)
        if video.owner_id != user.id and not can_moderate(user, video):
            raise NotFound("There is no such video.")
        return video

    async def listing(self, user: User, video_id: Any) -> list[Caption]:
        return await tracks_of((await self.visible(user, video_id)).id)

    async def upload(
        self, user: User, video_id: Any, language: Any, label: Any, data: bytes
    ) -> tuple[Caption, bool]:
        """Add or replace the track of `language`; returns it and whether it is new."""
        video = await self.editable(user, video_id)
        tag = language_tag(language)
        name = caption_label(label, tag)
        try:
            vtt = to_webvtt(data).encode()
        except CaptionError as error:
            raise ValidationFailed(str(error), field="file") from None
        key = keys.caption_key(video.id, tag)

        async def body() -> Any:
            yield vtt

        await self.storage.put_stream(key, body(), VTT_TYPE)
        caption = await Caption.get_or_none(video_id=video.id, language=tag)
        created = caption is None
        if caption is None:
            try:
                caption = await Caption.create(
                    video_id=video.id,
                    language=tag,
                    label=name,
                    key=key,
                    size=len(vtt),
                    created_by_id=user.id,
                )
            except IntegrityError:
                # Someone sent the same language at the same moment; the file is theirs
                # or ours, either way a whole one.
                raise Conflict("This language was just added: reload and try again.") from None
        else:
            caption.label, caption.key, caption.size = name, key, len(vtt)
            caption.created_by_id = user.id
            await caption.save(
                update_fields=["label", "key", "size", "created_by_id", "updated_at"]
            )
        await record(
            user,
            "caption_upload" if created else "caption_replace",
            video=video,
            language=tag,
            size=len(vtt),
        )
        log.info("captions %s of video %s stored by user %s", tag, video.id, user.id)
        return caption, created

    async def delete(self, user: User, video_id: Any, language: Any) -> None:
        """Delete the track of `language`: its row, then its file."""
        video = await self.editable(user, video_id)
        tag = languages.normalise_tag(language) if isinstance(language, str) else None
        caption = await Caption.get_or_none(video_id=video.id, language=tag) if tag else None
        if caption is None:
            raise NotFound("This video has no captions in that language.")
        await caption.delete()
        # Row first: a master playlist built meanwhile no longer lists a missing file.
        await self.storage.delete_prefix(caption.key)
        await record(user, "caption_delete", video=video, language=caption.language)

    async def read(self, video: Video, language: str) -> bytes:
        """The stored WebVTT of a track the caller may see; NotFound when there is none."""
        tag = languages.normalise_tag(language)
        caption = await Caption.get_or_none(video_id=video.id, language=tag) if tag else None
        if caption is None:
            raise NotFound("There is no such file.")
        try:
            return b"".join([chunk async for chunk in self.storage.read(caption.key)])
        except FileNotFoundError:
            raise NotFound("There is no such file.") from None


def captions_for(ctx: Any) -> CaptionService:
    """The service for an app's context (`app.ctx`)."""
    return CaptionService(ctx.backends.storage)
