"""Tags: free words on videos, suggested from the ones already in use.

A tag is written by people any way they like ("Demo", " demo ", "DEMO"); its identity
is the case-folded word (`Tag.name`, unique) and it is shown as it was first written
(`Tag.label`). A video carries at most `MAX_TAGS` tags of at most `MAX_LENGTH`
characters; anything else is refused with a message that says which limit.

Who may see a tag follows the videos: suggestions (`suggest`) only count the videos the
person may see (`services.videos.visibility_sql`), so a tag that only exists on
someone else's private upload is never offered. A video's tags reach its JSON through
`attach`: from the cache (`tags:<id>`, tagged the same, invalidated by `replace`), the
misses of a whole page in one query.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from clipsync import cache
from clipsync.errors import ValidationFailed
from clipsync.models import Tag, User, Video, VideoTag
from clipsync.services import videos as video_rules
from clipsync.text_rules import InvisibleCharacter, clean_field, clean_text

MAX_TAGS = 10
MAX_LENGTH = 40
# Suggestions offered at once, and how far each tag's use is counted for ranking them:
# enough to tell a common tag from a rare one without counting a whole large library.
MAX_SUGGESTIONS = 10
COUNT_CAP = 200
# Tags whose names start with the typed prefix that are ranked at all.
CANDIDATES = 50
SPACES = re.compile(r"\s+")
# A comma separates tags in the forms' one text field; `#` is how people often type them.
SEPARATOR = ","


def parse(value: Any) -> list[str]:
    """The labels of a `tags` value: a list of strings, or one comma-separated string
    (the forms). Trimmed, inner spaces collapsed, repeats (case-insensitively) dropped,
    empty ones ignored; 422 when a tag is too long, there are too many, or the value is
    not text."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(SEPARATOR)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationFailed('tags is a list of words, e.g. ["demo", "howto"].', field="tags")
    labels: dict[str, str] = {}
    for item in value:
        label = SPACES.sub(" ", clean_field(item, field="tags", what="Tags")).strip().lstrip("#")
        if not label:
            continue
        if SEPARATOR in label:
            raise ValidationFailed("A tag cannot contain a comma.", field="tags")
        if len(label) > MAX_LENGTH:
            raise ValidationFailed(
                f"Tags can be at most {MAX_LENGTH} characters: “{label[:MAX_LENGTH]}…” is longer.",
                field="tags",
            )
        labels.setdefault(name_of(label), label)
    if len(labels) > MAX_TAGS:
        raise ValidationFailed(
            f"A video can have at most {MAX_TAGS} tags, not {len(labels)}.", field="tags"
        )
    return list(labels.values())


def name_of(label: str) -> str:
    """A tag's identity: the label case-folded (`Tag.name`)."""
    return label.casefold()


async def tags_named(labels: Sequence[str]) -> list[Tag]:
    """The tags of `labels`, in that order, made when new (keeping the first label)."""
    found = {tag.name: tag for tag in await Tag.filter(name__in=[name_of(x) for x in labels])}
    tags = []
    for label in labels:
        name = name_of(label)
        if name not in found:
            try:
                found[name] = await Tag.create(name=name, label=label)
            except IntegrityError:  # made by someone else meanwhile
                found[name] = await Tag.get(name=name)
        tags.append(found[name])
    return tags


async def replace(video: Video, labels: Sequence[str]) -> bool:
    """Give `video` exactly the tags of `labels` (from `parse`); whether that changed them.

    The search index follows by itself (the database's triggers); the caller publishes
    the change (`video.edited` from `LibraryService.edit`) for the lists and the plugins,
    and the video's cached tags are made stale here, once the change is committed.
    """
    wanted = {tag.id: tag for tag in await tags_named(labels)}
    async with in_transaction():
        current = set(await VideoTag.filter(video_id=video.id).values_list("tag_id", flat=True))
        gone = current - set(wanted)
        new = [tag_id for tag_id in wanted if tag_id not in current]
        if gone:
            await VideoTag.filter(video_id=video.id, tag_id__in=list(gone)).delete()
        if new:
            await VideoTag.bulk_create([VideoTag(video_id=video.id, tag_id=t) for t in new])
    video.tag_labels = [tag.label for tag in wanted.values()]  # type: ignore[attr-defined]
    if gone or new:
        await cache.stale([tags_tag(video.id)])
    return bool(gone or new)


def tags_tag(video_id: Any) -> str:
    """The cache tag (and key) of one video's tags."""
    return f"tags:{video_id}"


async def attach(videos: Sequence[Video]) -> None:
    """Set `tag_labels` on each of `videos` that lacks it (what `video_json` shows as
    `tags`): from the cache, the others in one query for all of them."""
    missing = [video for video in videos if not hasattr(video, "tag_labels")]
    if not missing:
        return

    async def fill(keys: list[str]) -> dict[str, Any]:
        wanted = [key.split(":", 1)[1] for key in keys]
        rows = (
            await VideoTag.filter(video_id__in=wanted)
            .order_by("id")
            .values_list("video_id", "tag__label")
        )
        by_video: dict[str, list[str]] = defaultdict(list)
        for video_id, label in rows:
            by_video[str(video_id)].append(label)
        return {tags_tag(video_id): by_video.get(video_id, []) for video_id in wanted}

    keys = [tags_tag(video.id) for video in missing]
    labels = await cache.current().get_many_or_fill(keys, lambda key: [key], fill)
    for video, found in zip(missing, labels, strict=True):
        video.tag_labels = list(found)  # type: ignore[attr-defined]


async def labels_of(video_id: Any) -> list[str]:
    """One video's tags, as `attach` would set them."""
    return list(
        await VideoTag.filter(video_id=video_id).order_by("id").values_list("tag__label", flat=True)
    )


async def tag_named(text: str) -> Tag | None:
    """The tag `text` names (any case), or None."""
    label = _plain(text)
    return await Tag.get_or_none(name=name_of(label)) if label else None


def _plain(text: str) -> str:
    """A typed tag as a tag's name would be; "" when it could never be one (a control
    character: which the databases may not even compare)."""
    try:
        cleaned = clean_text(text)
    except InvisibleCharacter:
        return ""
    return SPACES.sub(" ", cleaned).strip().lstrip("#")


def suggest_sql(user: User, prefix: str, limit: int) -> tuple[str, list[Any]]:
    """The suggestions query: tags starting with `prefix` that are on a video `user` may
    see, most used (among what they may see, counted up to `COUNT_CAP`) first."""
    mark = video_rules.placeholders(Video._meta.db.capabilities.dialect)
    # Marks are taken in the order they appear in the text (SQLite's ? are positional).
    visible, params = video_rules.visibility_sql(user, "v", mark)
    # Someone who sees every video needs no look at the videos (a tag's link names one).
    seen = (
        "1 = 1"
        if video_rules.visibility_branches(user) is None
        else f"EXISTS (SELECT 1 FROM videos v WHERE v.id = vt.video_id AND {visible})"
    )
    pattern = mark()
    sql = f"""
SELECT id, label, uses FROM (
  SELECT t.id, t.label, t.name, (
    SELECT count(*) FROM (
      SELECT 1 FROM video_tags vt
      WHERE vt.tag_id = t.id AND {seen}
      LIMIT {COUNT_CAP}
    ) used
  ) AS uses
  FROM (SELECT id, label, name FROM tags WHERE name LIKE {pattern} ESCAPE '\\'
        ORDER BY name LIMIT {CANDIDATES}) t
) ranked
WHERE uses > 0
ORDER BY uses DESC, name
LIMIT {mark()}
"""
    escaped = name_of(prefix).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sql, [*params, escaped + "%", limit]


async def suggest(user: User, prefix: Any, limit: int = MAX_SUGGESTIONS) -> list[dict[str, Any]]:
    """Up to `limit` tags whose names start with `prefix` (none for an empty one), as
    `{"name", "label", "uses"}`; `uses` counts only the videos `user` may see."""
    text = _plain(prefix if isinstance(prefix, str) else "")
    if not text or len(text) > MAX_LENGTH:
        return []
    sql, params = suggest_sql(user, text, limit)
    _, rows = await Video._meta.db.execute_query(sql, params)
    return [
        {"name": name_of(row["label"]), "label": row["label"], "uses": int(row["uses"])}
        for row in rows
    ]


def tag_json(tag: Tag) -> dict[str, str]:
    return {"name": tag.name, "label": tag.label}
