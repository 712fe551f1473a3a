"""The precomputed "Up next" candidates of each video."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class UpNext(Model):
    """`candidate` ranks `rank` (0 first) among the videos to offer after `video`.

    Written by a periodic job for every viewer alike; the visibility rule filters the
    list for each person when it is read, so a row never says who may see what.
    """

    id = fields.IntField(primary_key=True)
    video = fields.ForeignKeyField("models.Video", related_name="up_next", on_delete=fields.CASCADE)
    candidate = fields.ForeignKeyField(
        "models.Video", related_name="up_next_of", on_delete=fields.CASCADE
    )
    rank = fields.IntField()
    # Why it is offered: "co_watched", "same_uploader", "same_tags" or "newest".
    reason = fields.CharField(max_length=32)
    score = fields.FloatField(default=0)
    computed_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "up_next"
        unique_together = (("video_id", "candidate_id"),)
        indexes = (("video_id", "rank"),)
