"""Full-text search over video titles and descriptions, ranked, within the visibility rule.

SQLite uses an FTS5 index (`videos_fts`, kept in step with `videos` by triggers);
PostgreSQL uses its own text search on an expression index. Both are created by
the migration that introduced search. The database ranks the matches; the
visibility rule (`services.videos.visible_to`) then keeps what the caller may see,
in rank order.
"""

from __future__ import annotations

import re

from clipsync.errors import ValidationFailed
from clipsync.models import User, Video
from clipsync.services.videos import Page, visible_to

# Ranked matches considered per search; more than a person pages through.
MAX_MATCHES = 1000
MAX_QUERY = 200
WORD = re.compile(r"\w+", re.UNICODE)

SQLITE = """
SELECT v.id FROM videos_fts JOIN videos v ON v.rowid = videos_fts.rowid
WHERE videos_fts MATCH ? ORDER BY bm25(videos_fts, 10.0, 1.0) LIMIT ?
"""
POSTGRES = """
SELECT id FROM videos
WHERE to_tsvector('simple', title || ' ' || description) @@ to_tsquery('simple', $1)
ORDER BY ts_rank(to_tsvector('simple', title || ' ' || description), to_tsquery('simple', $1)) DESC,
         created_at DESC
LIMIT $2
"""


def words(query: str) -> list[str]:
    """The words of a query; punctuation and search operators are not special."""
    if len(query) > MAX_QUERY:
        raise ValidationFailed(f"Searches can be at most {MAX_QUERY} characters.", field="q")
    return WORD.findall(query.lower())


async def ranked_ids(terms: list[str]) -> list[str]:
    """Ids of matching videos, best first: every word must match, as a prefix."""
    connection = Video._meta.db
    if connection.capabilities.dialect == "postgres":
        expression = " & ".join(f"{term}:*" for term in terms)
        _, rows = await connection.execute_query(POSTGRES, [expression, MAX_MATCHES])
    else:
        expression = " ".join(f'"{term}"*' for term in terms)
        _, rows = await connection.execute_query(SQLITE, [expression, MAX_MATCHES])
    return [str(row["id"]) for row in rows]


async def search_visible(user: User, query: str, page: int, page_size: int) -> Page:
    terms = words(query)
    if not terms:
        return Page(items=[], total=0, page=page, page_size=page_size)
    ranked = await ranked_ids(terms)
    allowed = await visible_to(user).filter(id__in=ranked).prefetch_related("owner")
    by_id = {str(video.id): video for video in allowed}
    ordered = [by_id[video_id] for video_id in ranked if video_id in by_id]
    start = (page - 1) * page_size
    return Page(
        items=ordered[start : start + page_size], total=len(ordered), page=page, page_size=page_size
    )
