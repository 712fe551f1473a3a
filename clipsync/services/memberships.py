"""The categories a person belongs to: the primary one and the others.

`User.category` is the primary category (what an account is shown with, where an
upload starts); `UserCategory` rows add the others. The visibility rule
(services/videos.py) is synchronous and reads them from the person's row, so they are
loaded with the person (`attach`): for the signed-in person of every request by the
middleware `attach_to_actor`, and by whoever reads people from the database to ask the
rule about them (the notification audience). Loaded with them is whether the person
has been granted any video (services/grants.py), so that the rule gives the grants'
branch only to those who have one.

A person read straight from the database and never attached is seen by their primary
category alone and no grants: the rule then shows less, never more.

What `attach` loads is cached per person (`memberships:<id>`, tagged `user:<id>`):
every change of a person's categories publishes an `account.*` event, and every grant
made or removed says `cache.stale` for the grantee, which drops it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sanic import Request

from clipsync import cache
from clipsync.errors import ValidationFailed
from clipsync.models import User, UserCategory, VideoGrant


@dataclass(frozen=True)
class Memberships:
    """What the rule needs of a person beyond their row."""

    # The other categories, sorted; never the primary one.
    extra: tuple[str, ...] = ()
    # Whether any grant names the person (expired or not: the rule checks the time).
    granted: bool = False


def memberships_of(user: User) -> Memberships | None:
    """What `attach` loaded for `user`, or None when it never ran for this row."""
    return getattr(user, "memberships", None)


def categories_of(user: User) -> list[str]:
    """Every category `user` belongs to, the primary one first."""
    found = memberships_of(user)
    extra = found.extra if found is not None else ()
    return list(dict.fromkeys([user.category, *extra]))


def extra_categories_of(user: User) -> list[str]:
    """The categories `user` belongs to besides the primary one."""
    return categories_of(user)[1:]


def _key(user_id: Any) -> str:
    return f"memberships:{user_id}"


async def attach(users: Sequence[User]) -> Sequence[User]:
    """Load the memberships of `users` onto their rows (one cache read for all)."""
    wanted = [user for user in users if user is not None and user.id is not None]
    if not wanted:
        return users
    keys = [_key(user.id) for user in wanted]

    async def fill(missing: list[str]) -> dict[str, Any]:
        ids = [int(key.rsplit(":", 1)[1]) for key in missing]
        extra: dict[int, list[str]] = {user_id: [] for user_id in ids}
        for user_id, category in await UserCategory.filter(user_id__in=ids).values_list(
            "user_id", "category"
        ):
            extra[user_id].append(category)
        granted = set(
            await VideoGrant.filter(user_id__in=ids).distinct().values_list("user_id", flat=True)
        )
        return {
            _key(user_id): {"extra": sorted(extra[user_id]), "granted": user_id in granted}
            for user_id in ids
        }

    values = await cache.current().get_many_or_fill(
        keys, lambda key: [cache.user_tag(key.rsplit(":", 1)[1])], fill
    )
    for user, value in zip(wanted, values, strict=True):
        value = value or {}
        extra = tuple(c for c in value.get("extra", ()) if c != user.category)
        user.memberships = Memberships(extra=extra, granted=bool(value.get("granted")))
    return users


async def attach_to_actor(request: Request) -> None:
    """Middleware, after the actor is known: load the signed-in person's memberships."""
    actor: User | None = getattr(request.ctx, "actor", None)
    if actor is not None and memberships_of(actor) is None:
        await attach([actor])


def parse_categories(settings: Any, value: Any, field: str = "categories") -> list[str]:
    """A list of configured category names, each once, in the order given; raises
    ValidationFailed (naming `field`) for anything else."""
    names = [c.name for c in settings.categories]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationFailed(
            f"{field} is a list of category names: {', '.join(names)}.", field=field
        )
    unknown = [item for item in value if settings.category(item) is None]
    if unknown:
        raise ValidationFailed(
            f"{unknown[0]!r} is not a category here. Choose among: {', '.join(names)}.",
            field=field,
        )
    return list(dict.fromkeys(value))


async def stored_extra(user_id: int) -> list[str]:
    """The person's other categories as stored now, sorted (not through the cache)."""
    return sorted(await UserCategory.filter(user_id=user_id).values_list("category", flat=True))


async def replace_extra(user: User, categories: Iterable[str]) -> tuple[list[str], list[str]]:
    """Make `user`'s other categories exactly `categories` (less the primary one).

    Returns (the old ones, the new ones), each sorted. Run it inside the transaction
    that changes the account; the caller publishes the change once it commits.
    """
    wanted = sorted(set(categories) - {user.category})
    old = await stored_extra(user.id)
    if old != wanted:
        await UserCategory.filter(user_id=user.id).exclude(category__in=wanted).delete()
        for name in sorted(set(wanted) - set(old)):
            await UserCategory.create(user_id=user.id, category=name)
    # The primary one is never an extra too (a person moved into a former extra).
    await UserCategory.filter(user_id=user.id, category=user.category).delete()
    user.memberships = Memberships(
        extra=tuple(wanted), granted=getattr(memberships_of(user), "granted", False)
    )
    return old, wanted
