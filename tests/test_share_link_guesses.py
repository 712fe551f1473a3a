"""Wrong passwords of a share link are counted where every worker counts them: with the
queue on Redis, the guesses of one address at one link are held back together by every
worker (here the app and a second count made as another worker makes it, on one real
Redis), as the sign-in's are; without Redis each worker counts its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from clients import bearer
from sharing_world import make_people, playable, site_settings

from clipsync.errors import TooManyRequests, ValidationFailed
from clipsync.services import share_links
from clipsync.services.rate_limit import AttemptWindow, SharedAttemptWindow

# Where `start_app`'s client says it comes from (tests/conftest.py).
ADDRESS = "203.0.113.7"


async def guess(client, session: str, token: str, password: str = "guess") -> int:
    headers = bearer(session) | {"X-Share-Password": password}
    return (await client.get(f"/api/share/{token}", headers=headers)).status_code


async def test_two_workers_count_one_links_guesses_together(
    start_app, make_settings, migrated_sqlite: Path, redis_server
) -> None:
    settings = site_settings(
        make_settings, migrated_sqlite, queue={"backend": "redis", "redis_url": redis_server.url}
    )
    app, client = await start_app(settings)
    people = await make_people(app)
    uploader, owner_token = people["uploader"]
    _, partner = people["partner"]
    video = await playable(app, uploader)
    made = await client.post(
        f"/api/videos/{video.id}/links",
        json={"expiresInHours": 1, "password": "open sesame"},
        headers=bearer(owner_token),
    )
    token = made.json()["token"]
    link = await share_links.link_access(token)
    # Another worker (its own count, its own Redis connection) takes nine wrong guesses
    # from the address the test client sends from...
    other = share_links.guesses_for(settings)
    for _ in range(share_links.GUESSES_PER_ADDRESS - 1):
        with pytest.raises(ValidationFailed):
            await share_links.unlock(link, token, "guess", ADDRESS, other)
    # ...so this app's worker takes one more, and then holds back even the right one.
    assert await guess(client, partner, token) == 422
    assert await guess(client, partner, token, "open sesame") == 429
    with pytest.raises(TooManyRequests):
        await share_links.unlock(link, token, "open sesame", ADDRESS, other)
    # Another address is not held back by these.
    assert await share_links.unlock(link, token, "open sesame", "198.51.100.9", other)


def test_the_guesses_are_shared_only_when_the_queue_is_on_redis(make_settings) -> None:
    alone = share_links.guesses_for(make_settings())
    assert isinstance(alone.per_address, AttemptWindow)
    shared = share_links.guesses_for(make_settings(queue={"backend": "redis"}))
    assert isinstance(shared.per_address, SharedAttemptWindow)
    assert isinstance(shared.per_link, SharedAttemptWindow)
    # Counted apart from the sign-in attempts of the same address.
    assert shared.per_address.prefix != SharedAttemptWindow.PREFIX
    assert shared.per_link.prefix != shared.per_address.prefix
