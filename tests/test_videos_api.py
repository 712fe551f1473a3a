"""Listing, detail and resume points follow the visibility rule."""

from __future__ import annotations

import uuid

import httpx
import pytest
from clients import PASSWORD, bearer, error_of, register

from clipsync.context import ClipSyncApp
from clipsync.models import Role, User, Video, VideoStatus


@pytest.fixture
async def world(app: ClipSyncApp, client: httpx.AsyncClient) -> dict:
    """Two colleagues and an outsider, an admin, and videos in several states."""
    tokens = {}
    for name in ("ann", "bob"):
        tokens[name] = (await register(client, f"{name}@example.org"))["token"]
    outsider = await app.ctx.accounts.create_user("out@example.org", PASSWORD, category="general")
    await User.filter(id=outsider.id).update(category="partners")
    tokens["out"] = (
        await client.post(
            "/api/auth/login", json={"email": "out@example.org", "password": PASSWORD}
        )
    ).json()["token"]
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    tokens["admin"] = app.ctx.accounts.start_session(admin).token
    ann = await User.get(email="ann@example.org")
    videos = {}
    for status in (
        VideoStatus.PROCESSING,
        VideoStatus.READY,
        VideoStatus.APPROVED,
        VideoStatus.FAILED,
    ):
        videos[status] = await Video.create(
            owner=ann, title=f"Ann {status}", category="general", status=status, duration=60.0
        )
    videos["partners"] = await Video.create(
        owner=await User.get(id=outsider.id), title="Partner", category="partners",
        status=VideoStatus.APPROVED, duration=30.0,
    )  # fmt: skip
    return {"tokens": tokens, "videos": videos}


async def titles(client: httpx.AsyncClient, token: str, query: str = "") -> set[str]:
    response = await client.get(f"/api/videos{query}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return {item["title"] for item in response.json()["items"]}


async def test_the_list_follows_the_visibility_rule(client: httpx.AsyncClient, world) -> None:
    tokens = world["tokens"]
    assert await titles(client, tokens["ann"]) == {
        "Ann PROCESSING", "Ann READY", "Ann APPROVED", "Ann FAILED"
    }  # fmt: skip
    assert await titles(client, tokens["bob"]) == {"Ann APPROVED"}
    assert await titles(client, tokens["out"]) == {"Partner"}
    assert len(await titles(client, tokens["admin"])) == 5
    assert await titles(client, tokens["bob"], "?mine=1") == set()


async def test_the_list_is_paginated(client: httpx.AsyncClient, world) -> None:
    first = (
        await client.get("/api/videos?page=1&pageSize=2", headers=bearer(world["tokens"]["admin"]))
    ).json()
    second = (
        await client.get("/api/videos?page=3&pageSize=2", headers=bearer(world["tokens"]["admin"]))
    ).json()
    assert first["total"] == 5 and len(first["items"]) == 2 and first["page"] == 1
    assert len(second["items"]) == 1
    bad = await client.get("/api/videos?pageSize=1000", headers=bearer(world["tokens"]["admin"]))
    assert bad.status_code == 400


async def test_detail_and_404_for_what_one_may_not_see(client: httpx.AsyncClient, world) -> None:
    ready = world["videos"][VideoStatus.READY]
    mine = await client.get(f"/api/videos/{ready.id}", headers=bearer(world["tokens"]["ann"]))
    assert mine.status_code == 200
    assert mine.json()["video"]["hls"] == f"/hls/{ready.id}/master.m3u8"
    assert mine.json()["userProgress"] is None
    hidden = await client.get(f"/api/videos/{ready.id}", headers=bearer(world["tokens"]["bob"]))
    missing = await client.get(
        f"/api/videos/{uuid.uuid4()}", headers=bearer(world["tokens"]["bob"])
    )
    assert hidden.status_code == missing.status_code == 404
    assert error_of(hidden) == error_of(missing)


async def test_processing_details_are_for_the_uploader_and_admins(
    client: httpx.AsyncClient, world
) -> None:
    approved = world["videos"][VideoStatus.APPROVED]
    as_owner = (
        await client.get(f"/api/videos/{approved.id}", headers=bearer(world["tokens"]["ann"]))
    ).json()
    as_viewer = (
        await client.get(f"/api/videos/{approved.id}", headers=bearer(world["tokens"]["bob"]))
    ).json()
    assert "checksum" in as_owner["video"] and "error" in as_owner["video"]
    assert "checksum" not in as_viewer["video"] and "error" not in as_viewer["video"]


async def test_the_resume_point_is_saved_and_returned(client: httpx.AsyncClient, world) -> None:
    approved = world["videos"][VideoStatus.APPROVED]
    token = world["tokens"]["bob"]
    saved = await client.put(
        f"/api/videos/{approved.id}/progress", json={"position": 42.5}, headers=bearer(token)
    )
    assert saved.json() == {"position": 42.5}
    await client.put(
        f"/api/videos/{approved.id}/progress", json={"position": 50}, headers=bearer(token)
    )
    detail = await client.get(f"/api/videos/{approved.id}", headers=bearer(token))
    assert detail.json()["userProgress"] == 50
    other = await client.get(f"/api/videos/{approved.id}", headers=bearer(world["tokens"]["ann"]))
    assert other.json()["userProgress"] is None


@pytest.mark.parametrize("position", [-1, 500, "ten", None, True])
async def test_impossible_positions_are_refused(client: httpx.AsyncClient, world, position) -> None:
    approved = world["videos"][VideoStatus.APPROVED]
    response = await client.put(
        f"/api/videos/{approved.id}/progress",
        json={"position": position},
        headers=bearer(world["tokens"]["bob"]),
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "position"


async def test_progress_on_a_hidden_video_is_404(client: httpx.AsyncClient, world) -> None:
    ready = world["videos"][VideoStatus.READY]
    response = await client.put(
        f"/api/videos/{ready.id}/progress",
        json={"position": 1},
        headers=bearer(world["tokens"]["bob"]),
    )
    assert response.status_code == 404
