"""Moderation, account administration, invites, the audit log and search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clients import PASSWORD, bearer

from clipsync.context import ClipSyncApp
from clipsync.models import AuditEntry, Invite, Role, User, Video, VideoStatus
from clipsync.storage import keys

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    settings = make_settings(category=CATEGORIES)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    people = {}
    for name, role, category in [
        ("admin", Role.ADMIN, "staff"),
        ("editor", Role.EDITOR, "staff"),
        ("dealer_editor", Role.EDITOR, "dealers"),
        ("uploader", Role.USER, "staff"),
        ("viewer", Role.USER, "staff"),
        ("dealer", Role.USER, "dealers"),
    ]:
        user = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=category
        )
        people[name] = (user, app.ctx.accounts.start_session(user).token)
    return app, client, people


async def video(
    app: ClipSyncApp, owner: User, status: VideoStatus, title: str = "Clip", description: str = ""
) -> Video:
    row = await Video.create(
        owner=owner,
        title=title,
        description=description,
        category=owner.category,
        status=status,
        duration=10.0,
    )

    async def body():
        yield b"bytes"

    row.source_key = keys.source_key(row.id, "a.mp4")
    await app.ctx.backends.storage.put_stream(row.source_key, body())
    await app.ctx.backends.storage.put_stream(keys.hls_key(row.id, "master.m3u8"), body())
    await row.save()
    return row


async def test_editor_approves_a_ready_video_of_their_category(site) -> None:
    app, client, people = site
    ready = await video(app, people["uploader"][0], VideoStatus.READY)
    response = await client.post(
        f"/api/admin/videos/{ready.id}/approve", headers=bearer(people["editor"][1])
    )
    assert response.status_code == 200
    assert response.json()["video"]["status"] == "APPROVED"
    entry = await AuditEntry.get(video_id=ready.id)
    assert (entry.action, entry.actor_email, entry.category) == (
        "approve",
        "editor@example.org",
        "staff",
    )
    # The viewer of that category can now see it.
    listed = await client.get("/api/videos", headers=bearer(people["viewer"][1]))
    assert [v["id"] for v in listed.json()["items"]] == [str(ready.id)]


async def test_editors_cannot_moderate_other_categories_and_users_get_403(site) -> None:
    app, client, people = site
    ready = await video(app, people["uploader"][0], VideoStatus.READY)
    other = await client.post(
        f"/api/admin/videos/{ready.id}/approve", headers=bearer(people["dealer_editor"][1])
    )
    assert other.status_code == 404
    user = await client.post(
        f"/api/admin/videos/{ready.id}/approve", headers=bearer(people["viewer"][1])
    )
    assert user.status_code == 403
    assert (
        await client.get("/api/admin/videos/pending", headers=bearer(people["viewer"][1]))
    ).status_code == 403
    assert (await Video.get(id=ready.id)).status == VideoStatus.READY


@pytest.mark.parametrize(
    "status",
    [VideoStatus.PROCESSING, VideoStatus.APPROVED, VideoStatus.REJECTED, VideoStatus.FAILED],
)
async def test_approving_from_anything_but_ready_is_409_with_the_status(site, status) -> None:
    app, client, people = site
    row = await video(app, people["uploader"][0], status)
    response = await client.post(
        f"/api/admin/videos/{row.id}/approve", headers=bearer(people["admin"][1])
    )
    assert response.status_code == 409
    assert response.json()["error"]["status"] == str(status)


async def test_reject_needs_a_reason_which_the_uploader_sees(site) -> None:
    app, client, people = site
    ready = await video(app, people["uploader"][0], VideoStatus.READY)
    headers = bearer(people["editor"][1])
    missing = await client.post(f"/api/admin/videos/{ready.id}/reject", json={}, headers=headers)
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "reason"
    done = await client.post(
        f"/api/admin/videos/{ready.id}/reject", json={"reason": "Wrong audience"}, headers=headers
    )
    assert done.json()["video"]["status"] == "REJECTED"
    mine = await client.get(f"/api/videos/{ready.id}", headers=bearer(people["uploader"][1]))
    assert mine.json()["video"]["moderationReason"] == "Wrong audience"
    assert mine.json()["video"]["moderatedAt"]


async def test_reject_with_delete_files_leaves_nothing_in_storage_but_keeps_the_row(site) -> None:
    app, client, people = site
    ready = await video(app, people["uploader"][0], VideoStatus.READY)
    storage = app.ctx.backends.storage
    assert await storage.list(keys.video_prefix(ready.id))
    response = await client.post(
        f"/api/admin/videos/{ready.id}/reject",
        json={"reason": "Confidential", "deleteFiles": True},
        headers=bearer(people["admin"][1]),
    )
    assert response.status_code == 200
    assert await storage.list(keys.video_prefix(ready.id)) == []
    row = await Video.get(id=ready.id)
    assert row.status == VideoStatus.REJECTED and row.source_key is None
    assert {e.action for e in await AuditEntry.filter(video_id=ready.id)} == {
        "reject",
        "delete_files",
    }


async def test_hook_video_status_changed_fires_on_decisions(site) -> None:
    app, client, people = site
    seen = []

    class Observer:
        from clipsync import hookimpl

        @hookimpl
        def video_status_changed(self, video, old, new):
            seen.append((old, new))

    app.ctx.plugins.pm.register(Observer(), name="observer")
    try:
        ready = await video(app, people["uploader"][0], VideoStatus.READY)
        await client.post(
            f"/api/admin/videos/{ready.id}/approve", headers=bearer(people["admin"][1])
        )
    finally:
        app.ctx.plugins.pm.unregister(name="observer")
    assert seen == [("READY", "APPROVED")]


async def test_failed_videos_can_be_queued_again_and_any_video_retranscoded(site) -> None:
    app, client, people = site
    headers = bearer(people["admin"][1])
    failed = await video(app, people["uploader"][0], VideoStatus.FAILED)
    approved = await video(app, people["uploader"][0], VideoStatus.APPROVED)
    assert (
        await client.post(f"/api/admin/videos/{approved.id}/requeue", headers=headers)
    ).status_code == 409
    again = await client.post(f"/api/admin/videos/{failed.id}/requeue", headers=headers)
    assert again.json()["video"]["status"] == "PROCESSING"
    redo = await client.post(f"/api/admin/videos/{approved.id}/retranscode", headers=headers)
    assert redo.json()["video"]["status"] == "PROCESSING"
    assert app.ctx.jobs.huey.pending_count() == 2


async def test_bulk_actions_report_each_video(site) -> None:
    app, client, people = site
    ready = await video(app, people["uploader"][0], VideoStatus.READY)
    busy = await video(app, people["uploader"][0], VideoStatus.PROCESSING)
    response = await client.post(
        "/api/admin/videos/bulk",
        json={"action": "approve", "videoIds": [str(ready.id), str(busy.id)]},
        headers=bearer(people["editor"][1]),
    )
    results = {r["videoId"]: r for r in response.json()["results"]}
    assert results[str(ready.id)]["ok"] and results[str(ready.id)]["status"] == "APPROVED"
    assert (
        not results[str(busy.id)]["ok"] and results[str(busy.id)]["error"]["status"] == "PROCESSING"
    )


async def test_pending_queue_is_scoped_and_filterable(site) -> None:
    app, client, people = site
    staff_ready = await video(app, people["uploader"][0], VideoStatus.READY)
    await video(app, people["uploader"][0], VideoStatus.APPROVED)
    dealer_ready = await video(app, people["dealer"][0], VideoStatus.READY)
    as_editor = await client.get("/api/admin/videos/pending", headers=bearer(people["editor"][1]))
    assert [v["id"] for v in as_editor.json()["items"]] == [str(staff_ready.id)]
    assert as_editor.json()["items"][0]["uploaderEmail"] == "uploader@example.org"
    as_admin = await client.get(
        "/api/admin/videos/pending?category=dealers", headers=bearer(people["admin"][1])
    )
    assert [v["id"] for v in as_admin.json()["items"]] == [str(dealer_ready.id)]
    bad = await client.get(
        "/api/admin/videos/pending?status=APPROVED", headers=bearer(people["admin"][1])
    )
    assert bad.status_code == 422


async def test_moving_a_video_between_categories(site) -> None:
    app, client, people = site
    row = await video(app, people["uploader"][0], VideoStatus.APPROVED)
    editor = await client.patch(
        f"/api/admin/videos/{row.id}",
        json={"categoryRole": "dealers"},
        headers=bearer(people["editor"][1]),
    )
    assert editor.status_code == 403
    admin = await client.patch(
        f"/api/admin/videos/{row.id}",
        json={"categoryRole": "dealers"},
        headers=bearer(people["admin"][1]),
    )
    assert admin.json()["video"]["category"] == "dealers"
    listed = await client.get("/api/videos", headers=bearer(people["dealer"][1]))
    assert str(row.id) in [v["id"] for v in listed.json()["items"]]


# --- accounts ---------------------------------------------------------------------------


async def test_a_category_change_ends_the_users_sessions(site) -> None:
    app, client, people = site
    viewer, old_token = people["viewer"]
    changed = []

    class Observer:
        from clipsync import hookimpl

        @hookimpl
        def user_category_changed(self, user, old, new):
            changed.append((user.email, old, new))

    app.ctx.plugins.pm.register(Observer(), name="observer")
    try:
        response = await client.patch(
            f"/api/admin/users/{viewer.id}",
            json={"categoryRole": "dealers"},
            headers=bearer(people["admin"][1]),
        )
    finally:
        app.ctx.plugins.pm.unregister(name="observer")
    assert response.json()["user"]["categoryRole"] == "dealers"
    assert (await client.get("/api/auth/me", headers=bearer(old_token))).status_code == 401
    assert changed == [("viewer@example.org", "staff", "dealers")]
    fresh = await client.post(
        "/api/auth/login", json={"email": "viewer@example.org", "password": PASSWORD}
    )
    assert fresh.json()["user"]["categoryRole"] == "dealers"


async def test_hook_user_category_changed_and_role_changes_and_deactivation(site) -> None:
    _app, client, people = site
    admin = bearer(people["admin"][1])
    uploader, token = people["uploader"]
    role = await client.patch(
        f"/api/admin/users/{uploader.id}", json={"role": "editor"}, headers=admin
    )
    assert role.json()["user"]["role"] == "editor"
    assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 401
    off = await client.patch(
        f"/api/admin/users/{uploader.id}", json={"active": False}, headers=admin
    )
    assert off.json()["user"]["active"] is False
    login = await client.post(
        "/api/auth/login", json={"email": "uploader@example.org", "password": PASSWORD}
    )
    assert login.status_code == 403


async def test_the_last_admin_cannot_be_removed(site) -> None:
    app, client, people = site
    admin, token = people["admin"]
    for change in ({"role": "user"}, {"active": False}):
        response = await client.patch(
            f"/api/admin/users/{admin.id}", json=change, headers=bearer(token)
        )
        assert response.status_code == 409
    second = await app.ctx.accounts.create_user("admin2@example.org", PASSWORD, role=Role.ADMIN)
    demoted = await client.patch(
        f"/api/admin/users/{second.id}", json={"role": "user"}, headers=bearer(token)
    )
    assert demoted.status_code == 200


async def test_only_admins_manage_accounts_and_bad_values_are_refused(site) -> None:
    _app, client, people = site
    target = people["viewer"][0].id
    assert (
        await client.get("/api/admin/users", headers=bearer(people["editor"][1]))
    ).status_code == 403
    admin = bearer(people["admin"][1])
    for body in (
        {"role": "boss"},
        {"categoryRole": "nowhere"},
        {"active": "yes"},
        {"email": "x@y.z"},
        {},
    ):
        response = await client.patch(f"/api/admin/users/{target}", json=body, headers=admin)
        assert response.status_code == 422, body
    assert (
        await client.patch("/api/admin/users/99999", json={"role": "user"}, headers=admin)
    ).status_code == 404


async def test_users_are_searchable_and_paginated(site) -> None:
    _app, client, people = site
    admin = bearer(people["admin"][1])
    found = await client.get("/api/admin/users?q=dealer", headers=admin)
    assert {u["email"] for u in found.json()["items"]} == {
        "dealer@example.org",
        "dealer_editor@example.org",
    }
    page = await client.get("/api/admin/users?page=2&pageSize=4", headers=admin)
    assert page.json()["total"] == 6 and len(page.json()["items"]) == 2
    assert "password_hash" not in page.text


# --- invites -------------------------------------------------------------------------------


@pytest.fixture
async def invite_site(start_app, make_settings, migrated_sqlite: Path):
    settings = make_settings(category=CATEGORIES, auth={"registration": "invite"})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    return app, client, app.ctx.accounts.start_session(admin).token


async def test_invites_preset_category_and_role_and_work_once(invite_site) -> None:
    _app, client, admin = invite_site
    plain = await client.post(
        "/api/auth/register", json={"email": "a@example.org", "password": PASSWORD}
    )
    assert plain.status_code == 403 and "invite" in plain.json()["error"]["message"]
    created = await client.post(
        "/api/admin/invites",
        json={"categoryRole": "dealers", "role": "editor", "expiresInHours": 24},
        headers=bearer(admin),
    )
    assert created.status_code == 201
    token = created.json()["token"]
    assert created.json()["url"].endswith(f"/register?invite={token}")
    assert not await Invite.exists(token_hash=token)  # only a hash is stored
    used = await client.post(
        "/api/auth/register",
        json={
            "email": "b@example.org",
            "password": PASSWORD,
            "invite": token,
            "categoryRole": "staff",
        },
    )
    assert used.status_code == 201
    assert used.json()["user"] | {"id": 0} == {
        "id": 0,
        "email": "b@example.org",
        "role": "editor",
        "categoryRole": "dealers",
        "displayName": "b",
        "avatarUrl": None,
    }
    again = await client.post(
        "/api/auth/register", json={"email": "c@example.org", "password": PASSWORD, "invite": token}
    )
    assert again.status_code == 403


async def test_expired_and_revoked_invites_are_refused(invite_site) -> None:
    _app, client, admin = invite_site
    created = await client.post("/api/admin/invites", json={}, headers=bearer(admin))
    token, invite_id = created.json()["token"], created.json()["invite"]["id"]
    await Invite.filter(id=invite_id).update(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    expired = await client.post(
        "/api/auth/register", json={"email": "e@example.org", "password": PASSWORD, "invite": token}
    )
    assert expired.status_code == 403 and "expired" in expired.json()["error"]["message"]
    second = await client.post("/api/admin/invites", json={}, headers=bearer(admin))
    assert (
        await client.delete(
            f"/api/admin/invites/{second.json()['invite']['id']}", headers=bearer(admin)
        )
    ).status_code == 204
    revoked = await client.post(
        "/api/auth/register",
        json={"email": "r@example.org", "password": PASSWORD, "invite": second.json()["token"]},
    )
    assert revoked.status_code == 403


async def test_the_register_page_carries_the_invite(invite_site) -> None:
    _app, client, admin = invite_site
    token = (await client.post("/api/admin/invites", json={}, headers=bearer(admin))).json()[
        "token"
    ]
    page = await client.get(f"/register?invite={token}")
    assert f'name="invite" value="{token}"' in page.text
    assert "needs an invite" in (await client.get("/register")).text


# --- audit log and search --------------------------------------------------------------------


async def test_the_audit_log_is_scoped_for_editors(site) -> None:
    app, client, people = site
    staff = await video(app, people["uploader"][0], VideoStatus.READY)
    dealers = await video(app, people["dealer"][0], VideoStatus.READY)
    await client.post(f"/api/admin/videos/{staff.id}/approve", headers=bearer(people["editor"][1]))
    await client.post(f"/api/admin/videos/{dealers.id}/approve", headers=bearer(people["admin"][1]))
    as_admin = await client.get("/api/admin/audit", headers=bearer(people["admin"][1]))
    assert [e["videoId"] for e in as_admin.json()["items"]] == [str(dealers.id), str(staff.id)]
    as_editor = await client.get("/api/admin/audit", headers=bearer(people["editor"][1]))
    assert [e["videoId"] for e in as_editor.json()["items"]] == [str(staff.id)]
    assert (
        await client.get("/api/admin/audit", headers=bearer(people["viewer"][1]))
    ).status_code == 403


async def test_search_is_ranked_and_stays_within_the_visibility_rule(site) -> None:
    app, client, people = site
    uploader = people["uploader"][0]
    title_hit = await video(app, uploader, VideoStatus.APPROVED, "Forecast for the quarter")
    body_hit = await video(
        app, uploader, VideoStatus.APPROVED, "Sales call", "we discuss the forecast"
    )
    await video(app, uploader, VideoStatus.READY, "Forecast draft")  # not approved
    await video(app, people["dealer"][0], VideoStatus.APPROVED, "Dealer forecast")  # other category
    await video(app, uploader, VideoStatus.APPROVED, "Unrelated")

    async def ids(token: str, query: str) -> list[str]:
        response = await client.get(f"/api/videos?q={query}", headers=bearer(token))
        assert response.status_code == 200, response.text
        return [v["title"] for v in response.json()["items"]]

    viewer = people["viewer"][1]
    assert await ids(viewer, "forecast") == [title_hit.title, body_hit.title]
    assert await ids(viewer, "FORE") == [title_hit.title, body_hit.title]  # prefixes, any case
    assert await ids(viewer, "forecast quarter") == [title_hit.title]
    assert await ids(viewer, '"; DROP TABLE videos; --') == []
    assert len(await ids(people["uploader"][1], "forecast")) == 3  # own draft too
    assert len(await ids(people["admin"][1], "forecast")) == 4
    assert await ids(people["dealer"][1], "forecast") == ["Dealer forecast"]
    home = await client.get("/?q=forecast", headers=bearer(viewer))
    assert "Forecast for the quarter" in home.text and "Dealer forecast" not in home.text


async def test_search_follows_edits_and_deletes(site) -> None:
    app, client, people = site
    row = await video(app, people["uploader"][0], VideoStatus.APPROVED, "Old name")
    row.title = "Brand new name"
    await row.save()
    viewer = bearer(people["viewer"][1])
    assert (await client.get("/api/videos?q=brand", headers=viewer)).json()["total"] == 1
    assert (await client.get("/api/videos?q=old", headers=viewer)).json()["total"] == 0
    await row.delete()
    assert (await client.get("/api/videos?q=brand", headers=viewer)).json()["total"] == 0


async def test_a_retranscoded_approved_video_comes_back_approved(site) -> None:
    from clips import make_clip

    from clipsync.services.transcoding import JobContext, run_transcode

    app, client, people = site
    owner = people["uploader"][0]
    row = await Video.create(
        owner=owner, title="Again", category="staff", status=VideoStatus.READY, duration=4.0
    )
    row.source_key = keys.source_key(row.id, "a.mp4")
    await app.ctx.backends.storage.put_file(row.source_key, make_clip("landscape"))
    await row.save()
    admin = bearer(people["admin"][1])
    await client.post(f"/api/admin/videos/{row.id}/approve", headers=admin)
    redo = await client.post(f"/api/admin/videos/{row.id}/retranscode", headers=admin)
    assert redo.json()["video"]["status"] == "PROCESSING"
    await run_transcode(
        JobContext(app.ctx.settings, app.ctx.plugins, app.ctx.backends),
        str(row.id),
        final_attempt=True,
    )
    assert (await Video.get(id=row.id)).status == VideoStatus.APPROVED


async def test_a_used_invite_cannot_be_revoked(invite_site) -> None:
    _app, client, admin = invite_site
    created = (await client.post("/api/admin/invites", json={}, headers=bearer(admin))).json()
    await client.post(
        "/api/auth/register",
        json={"email": "u@example.org", "password": PASSWORD, "invite": created["token"]},
    )
    response = await client.delete(
        f"/api/admin/invites/{created['invite']['id']}", headers=bearer(admin)
    )
    assert response.status_code == 409
