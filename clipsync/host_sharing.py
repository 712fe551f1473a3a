"""What this host keeps to itself that the other hosts of an install would need.

Several web and worker hosts share only PostgreSQL, Redis, the S3 store and
ClickHouse. A configuration that keeps the queue, the media, the analytics or live
news in this host's data directory is right for one host and wrong for two:
`clipsync doctor` reports it (`sharing_check`), and fails when the database shows
another host (every host on PostgreSQL records itself with its keys, see
`generated_keys.check_shared`), as it does when this host's two-factor key is not
the other hosts'.
"""

from __future__ import annotations

from clipsync import db, generated_keys
from clipsync.settings import Settings


def kept_here(settings: Settings) -> list[str]:
    """What this configuration keeps on this host alone, each with how to share it."""
    found = []
    if settings.queue.backend == "sqlite":
        found.append('the job queue (SQLite): set [queue] backend = "redis"')
    if settings.storage.backend == "local":
        found.append(
            'the media and resumable uploads (local storage): set [storage] backend = "s3"'
        )
    if settings.analytics.backend == "sqlite":
        found.append('the analytics (SQLite): set [analytics] backend = "clickhouse"')
    if settings.events.transport == "sqlite":
        found.append('live news (the SQLite log): set [events] transport = "auto"')
    return found


async def other_hosts(settings: Settings) -> set[str]:
    """The hosts, other than this one, that recorded themselves in the database."""
    from clipsync.models import SiteAlert

    names = await SiteAlert.filter(name__startswith=generated_keys.RECORD_PREFIX).values_list(
        "name", flat=True
    )
    seen = {str(name).split(":")[2] for name in names}
    return seen - {generated_keys.host_identity(settings.data_dir)}


async def sharing_check(settings: Settings) -> tuple[bool, bool, str]:
    """(ok, required, detail) for `clipsync doctor`: is what several hosts need shared?"""
    if db.dialect(settings.database_url) != "postgres":
        return True, False, "one host: the database is SQLite in this data directory"
    local = kept_here(settings)
    try:
        await db.open_database(settings)
        others = await other_hosts(settings)
        differing = await generated_keys.differing_keys(settings)
    finally:  # also when it could not connect: Tortoise keeps a half-made context
        await db.close_database()
    if not local and not differing:
        return True, True, f"everything is shared ({len(others) + 1} host(s) seen)"
    listed = "; ".join(local)
    if others:
        problems = [*differing, *([f"this one keeps to itself {listed}"] if local else [])]
        return (
            False,
            True,
            f"{len(others) + 1} hosts share this database, but " + "; ".join(problems),
        )
    return True, False, f"one host so far; before adding another, share {listed}"
