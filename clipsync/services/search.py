"""Full-text search over video titles and descriptions, ranked, within the visibility rule.

SQLite uses an FTS5 index (`videos_fts`, kept in step with `videos` by triggers);
PostgreSQL uses its own text search on an expression index. Both are created by
the migration that introduced search. One query finds the matches, keeps those the
caller may see (the rule as SQL, `services.videos.visibility_sql`), ranks them and
counts them (a window count over the same rows), and returns one page of ids: no row
the caller may not see leaves the database, and no match is left out for a cap.

Search results keep numbered pages rather than a cursor: a rank is a float that
changes when a title is edited, and ranking needs every match anyway, so a cursor
would save nothing.
"""

from __future__ import annotations

import re

from clipsync.errors import ValidationFailed
from clipsync.models import User, Video
from clipsync.services.videos import ALL, Page, in_order, placeholders, visibility_sql

MAX_QUERY = 200
WORD = re.compile(r"\w+", re.UNICODE)

# {visible} is the visibility rule for the caller on the table `v`; the marks before
# it are the match, after it the limit and the offset.
# bm25() cannot be read from inside a window query, hence the materialised matches.
SQLITE = """
WITH hits AS MATERIALIZED (
  SELECT v.id, v.created_at, bm25(videos_fts, 10.0, 1.0) AS rank
  FROM videos_fts JOIN videos v ON v.rowid = videos_fts.rowid
  WHERE videos_fts MATCH {match} AND {visible}
)
SELECT id, count(*) OVER () AS total FROM hits
ORDER BY rank, created_at DESC, id DESC
LIMIT {limit} OFFSET {offset}
"""
POSTGRES = """
SELECT v.id, count(*) OVER () AS total
FROM videos v
WHERE to_tsvector('simple', v.title || ' ' || v.description) @@ to_tsquery('simple', {match})
  AND {visible}
ORDER BY ts_rank(to_tsvector('simple', v.title || ' ' || v.description),
                 to_tsquery('simple', {match})) DESC,
         v.created_at DESC, v.id DESC
LIMIT {limit} OFFSET {offset}
"""


def words(query: str) -> list[str]:
    """The words of a query; punctuation and search operators are not special."""
    if len(query) > MAX_QUERY:
        raise ValidationFailed(f"Searches can be at most {MAX_QUERY} characters.", field="q")
    return WORD.findall(query.lower())


def search_sql(
    user: User, terms: list[str], page: int, page_size: int, scope: str = ALL
) -> tuple[str, list]:
    """The one query of a search page (also what the query-plan tests explain)."""
    dialect = Video._meta.db.capabilities.dialect
    mark = placeholders(dialect)
    if dialect == "postgres":
        template, expression = POSTGRES, " & ".join(f"{term}:*" for term in terms)
    else:
        template, expression = SQLITE, " ".join(f'"{term}"*' for term in terms)
    match = mark()
    visible, params = visibility_sql(user, "v", mark, scope)
    sql = template.format(match=match, visible=visible, limit=mark(), offset=mark())
    return sql, [expression, *params, page_size, (page - 1) * page_size]


async def search_visible(
    user: User, query: str, page: int, page_size: int, scope: str = ALL
) -> Page:
    """One page of the matches `user` may see (in `scope`), best first: every word must
    match, as a prefix."""
    terms = words(query)
    if not terms:
        return Page(items=[], total=0, page=page, page_size=page_size)
    sql, params = search_sql(user, terms, page, page_size, scope)
    _, rows = await Video._meta.db.execute_query(sql, params)
    items = await in_order([str(row["id"]) for row in rows])
    total = int(rows[0]["total"]) if rows else await _count_beyond(user, terms, scope)
    return Page(items=items, total=total, page=page, page_size=page_size)


async def _count_beyond(user: User, terms: list[str], scope: str) -> int:
    """The total for a page past the last one (which has no rows to carry it)."""
    sql, params = search_sql(user, terms, 1, 1, scope)
    _, rows = await Video._meta.db.execute_query(sql, params)
    return int(rows[0]["total"]) if rows else 0
