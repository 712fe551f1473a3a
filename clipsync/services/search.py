"""Full-text search over a video's title, description, tags and uploader's name, with
stemming ("demos" finds "Demo"), ranked, within the visibility rule.

The index is the table `video_search`, made by migration 13 and kept in step by
triggers on every write to the videos, their tags and their uploaders' names:
SQLite's FTS5 with the porter stemmer (English only, whatever `[search] language`
says), PostgreSQL's text search in the configuration `[search] language` names
(`use_language` sets it at start-up and rebuilds the index when it changed). A title
weighs most, then tags, the uploader's name, the description. Every word must match,
as a prefix of a word of the video once both are stemmed.

One query finds the matches, keeps those the
caller may see (the rule as SQL, `services.videos.visibility_sql`), ranks them and
counts them (a window count over the same rows), and returns one page of ids: no row
the caller may not see leaves the database, and no match is left out for a cap.

Search results keep numbered pages rather than a cursor: a rank is a float that
changes when a title is edited, and ranking needs every match anyway, so a cursor
would save nothing.
"""

from __future__ import annotations

import logging
import re

from tortoise.transactions import in_transaction

from clipsync.errors import ConfigError, ValidationFailed
from clipsync.models import User, Video
from clipsync.services.videos import ALL, Page, in_order, placeholders, visibility_sql

log = logging.getLogger(__name__)

MAX_QUERY = 200
WORD = re.compile(r"\w+", re.UNICODE)

# {visible} is the visibility rule for the caller on the table `v`; the marks before
# it are the match, after it the limit and the offset.
# bm25() cannot be read from inside a window query, hence the materialised matches.
SQLITE = """
WITH hits AS MATERIALIZED (
  SELECT v.id, v.created_at, bm25(video_search, 10.0, 1.0, 5.0, 2.0) AS rank
  FROM video_search JOIN videos v ON v.rowid = video_search.rowid
  WHERE video_search MATCH {match} AND {visible}
)
SELECT id, count(*) OVER () AS total FROM hits
ORDER BY rank, created_at DESC, id DESC
LIMIT {limit} OFFSET {offset}
"""
# The query is made in the configuration the index was made in (`search_language`).
POSTGRES = """
SELECT v.id, count(*) OVER () AS total
FROM video_search s JOIN videos v ON v.id = s.video_id,
     to_tsquery((SELECT language::regconfig FROM search_language LIMIT 1), {match}) q
WHERE s.document @@ q AND {visible}
ORDER BY ts_rank(s.document, q) DESC, v.created_at DESC, v.id DESC
LIMIT {limit} OFFSET {offset}
"""
# Whether a text search configuration of that name exists.
CONFIGURATION = "SELECT 1 FROM pg_ts_config WHERE cfgname = $1"
# Whether the migration that made the index has run (`clipsync serve` refuses to start
# before it has; a bare app, as in tests and the doctor, may start earlier).
INDEX_MADE = "SELECT to_regclass('search_language') AS made"


async def use_language(language: str) -> None:
    """Make the PostgreSQL index in `language` (`[search] language`), rebuilding it once
    when it was made in another; nothing on SQLite, whose stemmer is English only.

    Called at start-up by every worker: the first to see the change rebuilds, in one
    transaction, and the others find the language already set.
    """
    connection = Video._meta.db
    if connection.capabilities.dialect != "postgres":
        return
    _, table = await connection.execute_query(INDEX_MADE, [])
    if not table or table[0]["made"] is None:
        return  # not migrated yet: the migration makes it (English), the next start turns it
    _, found = await connection.execute_query(CONFIGURATION, [language])
    if not found:
        raise ConfigError(
            f"[search] language: {language!r} is not a text search configuration of this "
            "PostgreSQL (see SELECT cfgname FROM pg_ts_config)"
        )
    async with in_transaction() as transaction:
        changed, _ = await transaction.execute_query(
            "UPDATE search_language SET language = $1 WHERE language <> $1", [language]
        )
        if changed:
            log.info("rebuilding the search index in the %r configuration", language)
            await transaction.execute_query(
                "UPDATE video_search SET document = clipsync_video_document(video_id)"
            )


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
