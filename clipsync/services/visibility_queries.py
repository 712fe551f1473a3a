"""The visibility rule's branches (services/videos.py) as queries: a Tortoise filter,
or SQL on the videos table, for the queries the ORM cannot write (search, browse).

A branch is column equalities on `videos`, plus keys that are not columns: the
video is also published to a category (`PUBLISHED_TO`, `VideoCategory`; and
`ALSO_PUBLISHED_TO`, a second such category, for a list narrowed to one), and an
unexpired grant of it names a person (`GRANTED_TO`, `VideoGrant`). Both keys are ORM
lookups, so `Video.filter(**branch)` reads them too, joined (one row per video: each
pair is unique); here they are subqueries of video ids, so that branches ORed in one
query never repeat a video. On PostgreSQL those ids are read first, as an array
(`unnest(ARRAY(...))`): the planner then looks those few videos up by their key instead
of hash-joining the whole videos table to them (tests/test_access_plans.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import Q, Subquery

from clipsync.models import Video, VideoCategory, VideoGrant

PUBLISHED_TO = "extra_categories__category"
GRANTED_TO = "grants__user_id"
# "Published to" a second time in one branch: a list narrowed to a category
# (services/browse.py) keeps a branch that is itself "published to" another one.
ALSO_PUBLISHED_TO = "also_published_to"
AUDIENCE_KEYS = (PUBLISHED_TO, ALSO_PUBLISHED_TO, GRANTED_TO)
Branch = dict[str, Any]


def branches_filter(branches: list[Branch] | None) -> Q:
    """Branches (None: every video) as one filter of `Video` queries."""
    if branches is None:
        return Q()
    return Q(*(branch_filter(branch) for branch in branches), join_type=Q.OR)


def branch_filter(branch: Branch) -> Q:
    """One branch as a filter; its audience keys as subqueries (no join: no duplicates)."""
    plain = {k: v for k, v in branch.items() if k not in AUDIENCE_KEYS}
    terms = [Q(**plain)]
    for key in (PUBLISHED_TO, ALSO_PUBLISHED_TO):
        if key in branch:
            extra = VideoCategory.filter(category=branch[key])
            terms.append(Q(id__in=_VideoIds(extra.values("video_id"))))
    if GRANTED_TO in branch:
        live = Q(until__isnull=True) | Q(until__gt=datetime.now(UTC))
        grants = VideoGrant.filter(live, user_id=branch[GRANTED_TO])
        terms.append(Q(id__in=_VideoIds(grants.values("video_id"))))
    return Q(*terms, join_type=Q.AND)


class _VideoIds(Subquery):
    """A subquery of video ids (an audience branch). On PostgreSQL they are read first,
    as an array (`unnest(ARRAY(...))`), so that the planner looks those few videos up
    by their key instead of hash-joining the whole videos table to them."""

    def get_sql(self, ctx: Any) -> str:
        sql = super().get_sql(ctx)
        return _ids_sql(sql, self.query._db.capabilities.dialect)


def _ids_sql(subquery: str, dialect: str) -> str:
    return f"(SELECT unnest(ARRAY{subquery}))" if dialect == "postgres" else subquery


def branches_sql(
    branches: list[Branch] | None, alias: str, placeholder: Callable[[], str]
) -> tuple[str, list[Any]]:
    """Branches (None: every video) as one SQL condition on the videos table `alias`."""
    if branches is None:
        return "1 = 1", []
    params: list[Any] = []
    ors = []
    dialect = Video._meta.db.capabilities.dialect
    for branch in branches:
        ands = []
        for column, value in branch.items():
            if column in (PUBLISHED_TO, ALSO_PUBLISHED_TO):
                ids = (
                    f'(SELECT vc."video_id" FROM "video_categories" vc '
                    f'WHERE vc."category" = {placeholder()})'
                )
                ands.append(f'{alias}."id" IN {_ids_sql(ids, dialect)}')
                params.append(value)
            elif column == GRANTED_TO:
                ids = (
                    f'(SELECT g."video_id" FROM "video_grants" g WHERE g."user_id" = '
                    f'{placeholder()} AND (g."until" IS NULL OR g."until" > {placeholder()}))'
                )
                ands.append(f'{alias}."id" IN {_ids_sql(ids, dialect)}')
                params += [value, datetime.now(UTC)]
            else:
                ands.append(f'{alias}."{column}" = {placeholder()}')
                params.append(value)
        ors.append("(" + " AND ".join(ands) + ")")
    return "(" + " OR ".join(ors) + ")", params
