"""Full-text search over a video's title, description, tags and uploader's name, with
stemming ("demos" finds "Demo"), ranked, within the visibility rule.

The index is the table `video_search`, made by migration 13 and kept in step by
triggers on every write to the videos, their tags and their uploaders' names:
SQLite's FTS5 with the porter stemmer (English only, whatever `[search] language`
says), PostgreSQL's text search in the configuration `[search] language` names
(`use_language` sets it at start-up and rebuilds the index when it changed). A title
weighs most, then tags, the uploader's name, the description. Every word must match,
as a prefix of a word of the video once both are stemmed.

A search page is one query: the matches the caller may see (the rule as SQL, built
from `services.videos.visibility_branches`), ranked, cut to the page; no row the
caller may not see leaves the database. Its total is a second query that counts no
further than `COUNT_LIMIT` (as the list's does, `services.videos`): past it the page
says "more" instead of counting every match of a common word on every request. A
page that shows where the results end needs no count at all.

How each database reads it: the text match first (its index), then each match's video
by its key, with the rule checked on that row; so a search costs what its words
match, never a read of the whole videos table, with every branch of the rule
(categories, "published to", grants) in it.

- SQLite: FTS5 finds the matches, joined to their videos by rowid. bm25() ranks them;
  the ORDER BY ... LIMIT keeps only the page's rows while it reads (a top-N sort).
- PostgreSQL: the GIN index finds the matches; each video is read in a LATERAL
  subquery by its key. Joined plainly, with the rule's branches ORed beside the text
  match, the planner read the videos table whole and hashed it once the audience
  branches were in the OR (tests/test_access_plans.py). ts_rank() is computed for
  every match (PostgreSQL has no index of its ranks), kept in a top-N sort. For a
  word that matches most of a small library the whole read was quicker (measured at
  20,000 videos, every one matching: 37 ms before, 80 ms now); for a word that
  matches few, as most searches do, the key lookups are (17 ms, was 18-20 ms), and
  neither grows with the rest of the library.

Search results keep numbered pages rather than a cursor: a rank is a float that
changes when a title is edited, so a cursor would name no stable place.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from tortoise.transactions import in_transaction

from clipsync.errors import ConfigError, ValidationFailed
from clipsync.models import User, Video
from clipsync.services.videos import (
    ALL,
    COUNT_LIMIT,
    Page,
    in_order,
    placeholders,
    visibility_sql,
)

log = logging.getLogger(__name__)

MAX_QUERY = 200
WORD = re.compile(r"\w+", re.UNICODE)

# {visible} is the visibility rule for the caller on the table `v`; {match} the words.
SQLITE_MATCHES = """
SELECT {columns}
FROM video_search JOIN videos v ON v.rowid = video_search.rowid
WHERE video_search MATCH {match} AND {visible}
"""
SQLITE_RANK = "bm25(video_search, 10.0, 1.0, 5.0, 2.0)"
# The words as a query, made in the configuration the index was made in
# (`search_language`): a value the index seeks (joined as a table, it was a filter on
# every row of the index).
POSTGRES_QUERY = "to_tsquery((SELECT language::regconfig FROM search_language LIMIT 1), {match})"
# The matches first, then each one's video by its key with the rule ({visible}) checked
# on that row: `OFFSET 0` keeps the planner from merging the two into a join that
# reads the whole videos table (see the module docstring).
POSTGRES_MATCHES = (
    "SELECT {columns} FROM video_search s CROSS JOIN LATERAL ("
    "SELECT v.id, v.created_at FROM videos v WHERE v.id = s.video_id AND {visible} OFFSET 0"
    ") v WHERE s.document @@ {query}"
)
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
) -> tuple[str, list[Any]]:
    """The query of a search page: its ids, best first (also what the query-plan tests
    explain)."""
    mark = placeholders(Video._meta.db.capabilities.dialect)
    if _postgres():
        columns = "v.id, v.created_at, ts_rank(s.document, {query}) AS rank"
        sql, params = _matches(user, terms, scope, columns, mark)
        sql += " ORDER BY rank DESC, v.created_at DESC, v.id DESC"
    else:
        sql, params = _matches(user, terms, scope, "v.id", mark)
        sql += f" ORDER BY {SQLITE_RANK}, v.created_at DESC, v.id DESC"
    sql += f" LIMIT {mark()} OFFSET {mark()}"
    return sql, [*params, page_size, (page - 1) * page_size]


def count_sql(user: User, terms: list[str], limit: int, scope: str = ALL) -> tuple[str, list[Any]]:
    """How many matches `user` may see, counted no further than `limit`: exact up to it."""
    mark = placeholders(Video._meta.db.capabilities.dialect)
    sql, params = _matches(user, terms, scope, "v.id", mark)
    return f"SELECT count(*) AS n FROM ({sql} LIMIT {mark()}) counted", [*params, limit]


def _postgres() -> bool:
    return Video._meta.db.capabilities.dialect == "postgres"


def _matches(
    user: User, terms: list[str], scope: str, columns: str, mark: Callable[[], str]
) -> tuple[str, list[Any]]:
    """The matches `user` may see, as `columns` (`{query}` there: the words' query)."""
    if _postgres():
        # One parameter for the words, named twice where `columns` ranks ($1 on both).
        query = POSTGRES_QUERY.format(match=mark())
        words_param = " & ".join(f"{term}:*" for term in terms)
        visible, params = visibility_sql(user, "v", mark, scope)
        sql = POSTGRES_MATCHES.format(
            columns=columns.format(query=query), query=query, visible=visible
        )
        return sql, [words_param, *params]
    match = mark()
    visible, params = visibility_sql(user, "v", mark, scope)
    sql = SQLITE_MATCHES.format(columns=columns, match=match, visible=visible).strip()
    return sql, [" ".join(f'"{term}"*' for term in terms), *params]


async def search_visible(
    user: User, query: str, page: int, page_size: int, scope: str = ALL
) -> Page:
    """One page of the matches `user` may see (in `scope`), best first: every word must
    match, as a prefix. Its total is counted up to `COUNT_LIMIT` (then `more`)."""
    terms = words(query)
    if not terms:
        return Page(items=[], total=0, page=page, page_size=page_size)
    sql, params = search_sql(user, terms, page, page_size, scope)
    _, rows = await Video._meta.db.execute_query(sql, params)
    items = await in_order([str(row["id"]) for row in rows])
    shown = (page - 1) * page_size + len(rows)
    if 0 < len(rows) < page_size or (page == 1 and not rows):
        total = shown  # this page shows where the matches end
    else:
        sql, params = count_sql(user, terms, COUNT_LIMIT + 1, scope)
        _, counted = await Video._meta.db.execute_query(sql, params)
        total = int(counted[0]["n"])
    return Page(
        items=items,
        total=min(total, COUNT_LIMIT),
        page=page,
        page_size=page_size,
        more=total > COUNT_LIMIT,
    )
