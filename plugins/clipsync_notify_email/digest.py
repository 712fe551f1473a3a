"""Digests: at most one mail per person per `[notifications] digest_minutes` for a type
marked `digest` (videos awaiting a decision), listing every item that waited.

Each item is a BATCHED row with a job of its own, queued to run when the person's
next digest is due: at once when none was sent within the window, else when the
window since the last one ends. The first of those jobs to run takes every BATCHED
row of the person and sends one mail; the others find their row taken and send
nothing. Taking marks the rows SENT before the mail goes out, in one transaction
per person at a time (see `take`), so two jobs running at once never both list a
row, nor split the items into two mails. If the mail then fails, the rows go back
to BATCHED and the retry takes them again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from clipsync.models import Delivery, DeliveryStatus
from clipsync.services import notification_types
from clipsync.settings import Settings

CHANNEL = "email"
# The most items one digest lists; the rest wait for the next one.
MOST_ITEMS = 100
# The first key of the PostgreSQL advisory lock that `take` holds per person ("CSdg").
LOCK_CLASS = 0x43536467


def digest_types() -> list[str]:
    return [t.name for t in notification_types.TYPES.values() if t.digest]


def batched(settings: Settings, type_name: str, user_id: int | None) -> bool:
    """Whether a mail of this type waits for the person's digest."""
    kind = notification_types.TYPES.get(type_name)
    return (
        user_id is not None
        and kind is not None
        and kind.digest
        and settings.notifications.digest_minutes > 0
    )


async def seconds_until_due(settings: Settings, user_id: int) -> float:
    """How long until this person may get their next digest (0: now)."""
    last = (
        await Delivery.filter(
            channel=CHANNEL,
            user_id=user_id,
            status=DeliveryStatus.SENT,
            type__in=digest_types(),
            sent_at__isnull=False,
        )
        .order_by("-sent_at")
        .first()
    )
    if last is None or last.sent_at is None:
        return 0.0
    due = last.sent_at + timedelta(minutes=settings.notifications.digest_minutes)
    return max(0.0, (due - datetime.now(UTC)).total_seconds())


async def take(delivery: Delivery) -> list[Delivery]:
    """Take this row and the person's other BATCHED rows for one mail, oldest first.

    Empty when another digest already took this row: that mail lists it. One
    transaction per person at a time takes rows, so two jobs running at once never
    split the items into two mails: PostgreSQL holds an advisory lock on the person
    for it; on SQLite, the first statement writes, which makes other writers wait.
    """
    now = datetime.now(UTC)
    async with in_transaction() as conn:
        if conn.capabilities.dialect == "postgres":
            await conn.execute_query(
                "SELECT pg_advisory_xact_lock($1, $2)", [LOCK_CLASS, delivery.user_id]
            )
        own = await Delivery.filter(id=delivery.id, status=DeliveryStatus.BATCHED).update(
            status=DeliveryStatus.SENT, sent_at=now
        )
        if not own:
            return []
        others = await (
            Delivery.filter(
                channel=CHANNEL, user_id=delivery.user_id, status=DeliveryStatus.BATCHED
            )
            .exclude(id=delivery.id)
            .order_by("id")
            .limit(MOST_ITEMS - 1)
        )
        if others:
            await Delivery.filter(id__in=[r.id for r in others]).update(
                status=DeliveryStatus.SENT, sent_at=now
            )
    return [delivery, *others]


async def give_back(rows: list[Delivery]) -> None:
    """The mail failed: the rows wait again (this job's retry, or the next digest, sends them)."""
    for row in rows:
        await Delivery.filter(id=row.id, status=DeliveryStatus.SENT).update(
            status=DeliveryStatus.BATCHED, sent_at=None
        )
