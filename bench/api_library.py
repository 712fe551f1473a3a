"""A large library for bench/api.py, written straight into a migrated database.

1,000 people of the default category (the viewer, registered through the API, and
999 copies of their row, the first of them an administrator) and any number of
approved videos of theirs, with titles and descriptions drawn from a Zipf-distributed
vocabulary (word k has frequency ~ 1/k, as in natural text), so that some word is in
about 15 % of the videos for search. The
words are made of three consonant-vowel syllables with the vowels a, o, u only: no
word is a prefix of another and the porter stemmer leaves every one as it is, so a
search for one matches exactly the videos that hold it.

SQLite: one `executemany` in one transaction; PostgreSQL: `COPY` in batches, in one
transaction. Either way the videos' insert triggers fill the search index
(`video_search`, migration 13) row by row, as an upload does.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from clipsync.storage import keys

PEOPLE = 1_000
CATEGORY = "general"  # the default install's one category
# One of the copies is the install's administrator: without one, pages ask for /setup.
ADMIN = "user0001@bench.test"
VOCABULARY = 5_000
TITLE_WORDS = (3, 8)
DESCRIPTION_WORDS = (8, 40)
SEARCHED_SHARE = 0.15
DETAIL_IDS = 10_000
BATCH = 50_000
# Nine years of uploads, newest last (the order an install inserts them in).
SPAN = timedelta(days=9 * 365)

VIDEO_COLUMNS = [
    "id", "owner_id", "title", "original_filename", "description", "category", "status",
    "hls_key", "poster_key", "duration", "width", "height", "video_codec", "audio_codec",
    "bitrate", "size", "progress", "attempts", "created_at", "updated_at",
]  # fmt: skip
USER_COLUMNS_SQL = {
    "sqlite": "SELECT name FROM pragma_table_info('users') WHERE name NOT IN ('id', 'email')",
    "postgres": "SELECT column_name FROM information_schema.columns"
    " WHERE table_name = 'users' AND column_name NOT IN ('id', 'email')",
}


def vocabulary() -> list[str]:
    """VOCABULARY distinct six-letter words, most frequent first."""
    consonants, vowels = "bdfgklmnprstvz", "aou"
    syllables = [c + v for c in consonants for v in vowels]
    words = ["".join(parts) for parts in itertools.product(syllables, repeat=3)]
    random.Random(3).shuffle(words)
    return words[:VOCABULARY]


def searched_rank(weights: list[float]) -> int:
    """The rank of the word whose expected share of videos is nearest SEARCHED_SHARE."""
    total = sum(weights)
    low, high = TITLE_WORDS[0] + DESCRIPTION_WORDS[0], TITLE_WORDS[1] + DESCRIPTION_WORDS[1]
    lengths = range(low, high + 1)

    def share(rank: int) -> float:
        p = weights[rank] / total
        return 1 - sum((1 - p) ** n for n in lengths) / len(lengths)

    return min(range(len(weights)), key=lambda rank: abs(share(rank) - SEARCHED_SHARE))


@dataclass
class Library:
    """What was written: the searched word, how many videos hold it, ids to open."""

    size: int
    word: str
    matching: int = 0
    detail_ids: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.matching / self.size if self.size else 0.0


def videos(size: int, owners: list[int], library: Library) -> Iterator[tuple]:
    """`size` approved videos of `owners`, oldest first, in VIDEO_COLUMNS order."""
    chance = random.Random(15)
    words = vocabulary()
    cumulative = list(itertools.accumulate(1 / (k + 1) for k in range(len(words))))
    step = max(1, size // DETAIL_IDS)
    start = datetime.now(UTC) - SPAN
    spacing = SPAN / max(size, 1)
    for n in range(size):
        title = chance.choices(words, cum_weights=cumulative, k=chance.randint(*TITLE_WORDS))
        about = chance.choices(words, cum_weights=cumulative, k=chance.randint(*DESCRIPTION_WORDS))
        if library.word in title or library.word in about:
            library.matching += 1
        video_id = str(uuid.UUID(int=chance.getrandbits(128), version=4))
        if n % step == 0:
            library.detail_ids.append(video_id)
        created = start + spacing * n + timedelta(microseconds=chance.randrange(1_000_000))
        seconds = chance.uniform(20, 1800)
        yield (
            video_id, chance.choice(owners), " ".join(title).capitalize(), "clip.mp4",
            " ".join(about).capitalize() + ".", CATEGORY, "APPROVED",
            keys.hls_key(video_id, "master.m3u8"), keys.hls_key(video_id, "poster.jpg"),
            seconds, 1920, 1080, "avc1.640028", "mp4a.40.2", 5_000_000,
            int(seconds * 640_000), 100, 1, created, created,
        )  # fmt: skip


def new_library(size: int) -> Library:
    words = vocabulary()
    rank = searched_rank([1 / (k + 1) for k in range(len(words))])
    return Library(size=size, word=words[rank])


def people_sql(dialect: str, columns: list[str]) -> str:
    """One statement adding PEOPLE - 1 copies of the viewer's row, user0001@… onwards."""
    listed = ", ".join(f'"{c}"' for c in columns)
    copied = ", ".join(f'u."{c}"' for c in columns)
    if dialect == "sqlite":
        return (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
            f" WHERE i < {PEOPLE - 1})"
            f' INSERT INTO users ("email", {listed})'
            f" SELECT printf('user%04d@bench.test', n.i), {copied}"
            " FROM users u, n WHERE u.email = ?"
        )
    return (
        f'INSERT INTO users ("email", {listed})'
        f" SELECT 'user' || lpad(n::text, 4, '0') || '@bench.test', {copied}"
        f" FROM users u, generate_series(1, {PEOPLE - 1}) n WHERE u.email = $1"
    )


def fill_sqlite(path: str, viewer: str, role: str, size: int) -> Library:
    library = new_library(size)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA cache_size = -262144")  # this connection only: 256 MiB
        db.execute("BEGIN")
        db.execute("UPDATE users SET role = ?, category = ? WHERE email = ?",
                   (role, CATEGORY, viewer))  # fmt: skip
        columns = [row[0] for row in db.execute(USER_COLUMNS_SQL["sqlite"])]
        db.execute(people_sql("sqlite", columns), (viewer,))
        db.execute("UPDATE users SET role = 'admin' WHERE email = ?", (ADMIN,))
        owners = [row[0] for row in db.execute("SELECT id FROM users")]
        marks = ", ".join("?" for _ in VIDEO_COLUMNS)
        db.executemany(
            f"INSERT INTO videos ({', '.join(VIDEO_COLUMNS)}) VALUES ({marks})",
            (
                (*row[:-2], row[-2].isoformat(" "), row[-1].isoformat(" "))
                for row in videos(size, owners, library)
            ),
        )
        db.execute("COMMIT")
    finally:
        db.close()
    return library


async def fill_postgres(dsn: str, viewer: str, role: str, size: int) -> Library:
    import asyncpg

    library = new_library(size)
    db = await asyncpg.connect(dsn)
    try:
        async with db.transaction():
            await db.execute("UPDATE users SET role = $1, category = $2 WHERE email = $3",
                             role, CATEGORY, viewer)  # fmt: skip
            columns = [r[0] for r in await db.fetch(USER_COLUMNS_SQL["postgres"])]
            await db.execute(people_sql("postgres", columns), viewer)
            await db.execute("UPDATE users SET role = 'admin' WHERE email = $1", ADMIN)
            owners = [r["id"] for r in await db.fetch("SELECT id FROM users")]
            made = videos(size, owners, library)
            while batch := list(itertools.islice(made, BATCH)):
                await db.copy_records_to_table("videos", columns=VIDEO_COLUMNS, records=[
                    (uuid.UUID(row[0]), *row[1:]) for row in batch
                ])  # fmt: skip
        await db.execute("ANALYZE")
    finally:
        await db.close()
    return library
