"""`create_app()`: the Sanic application, built from settings.

Each feature is wired by a `setup_<feature>(app)` function; resources that belong to
a worker process (the database connection) open in `before_server_start` and close
in `after_server_stop`, so they work the same under `clipsync serve` and under the
ASGI test client.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sanic import Request, Sanic
from sanic.response import HTTPResponse, redirect

from clipsync import cache, db, delivery, events, logs, tracing
from clipsync.api import admin as api_admin
from clipsync.api import analytics as api_analytics
from clipsync.api import auth as api_auth
from clipsync.api import captions as api_captions
from clipsync.api import comments as api_comments
from clipsync.api import direct_upload, health, hls, library_admin, uploads_tus
from clipsync.api import grants as api_grants
from clipsync.api import history as api_history
from clipsync.api import home_rows as api_home_rows
from clipsync.api import metrics as api_metrics
from clipsync.api import notifications as api_notifications
from clipsync.api import openapi as api_openapi
from clipsync.api import playlists as api_playlists
from clipsync.api import profile as api_profile
from clipsync.api import share_links as api_share_links
from clipsync.api import status as api_status
from clipsync.api import stream_links as api_stream_links
from clipsync.api import tags as api_tags
from clipsync.api import two_factor as api_two_factor
from clipsync.api import up_next as api_up_next
from clipsync.api import video_categories as api_video_categories
from clipsync.api import videos as api_videos
from clipsync.api import webhooks as api_webhooks
from clipsync.backends import Backends, select_all
from clipsync.context import AppContext, ClipSyncApp
from clipsync.error_handler import ClipSyncErrorHandler
from clipsync.http_security import setup_http_security
from clipsync.jobs.queue import create_queue
from clipsync.plugins import create_plugin_host
from clipsync.request_ids import setup_request_ids
from clipsync.services import memberships, notifications, search, share_links
from clipsync.services.accounts import AccountService
from clipsync.services.analytics import AnalyticsService
from clipsync.services.moderation import ModerationService
from clipsync.services.resumable import ResumableService
from clipsync.services.uploads import UploadService
from clipsync.services.user_admin import UserAdminService
from clipsync.sessions import attach_actor, is_api, remember_csrf
from clipsync.settings import Settings, load_settings
from clipsync.web import (
    account_pages,
    admin_pages,
    analytics_pages,
    caption_pages,
    history_pages,
    library_pages,
    notification_pages,
    organise_pages,
    pages,
    password_pages,
    plugin_pages,
    profile_pages,
    share_link_pages,
    sharing_pages,
    static,
    status_pages,
    two_factor_pages,
    video_pages,
    webhook_pages,
)
from clipsync.web.templates import Templates

log = logging.getLogger(__name__)

# Addresses reachable before the first administrator exists.
SETUP_OPEN = ("/setup", "/static/", "/healthz", "/api/", "/metrics")


def create_app(settings: Settings, *, load_entry_points: bool = True) -> ClipSyncApp:
    plugins = create_plugin_host(settings, load_entry_points=load_entry_points)
    # Before the backends are built, so that with tracing on their calls are traced.
    tracing.start(plugins)
    backends = Backends(select_all(plugins, settings))
    jobs = create_queue(settings)
    context = AppContext(
        settings=settings,
        plugins=plugins,
        backends=backends,
        accounts=AccountService(settings, backends.auth, plugins),
        uploads=UploadService(settings, backends.storage, plugins, jobs.enqueue_transcode),
        resumable=ResumableService(settings, backends.storage),
        moderation=ModerationService(settings, backends.storage, plugins, jobs.enqueue_transcode),
        user_admin=UserAdminService(settings, plugins),
        analytics=AnalyticsService(settings, backends.analytics, plugins),
        templates=Templates(settings),
        jobs=jobs,
        share_link_guesses=share_links.guesses_for(settings),
    )
    app: ClipSyncApp = Sanic("clipsync", ctx=context, error_handler=ClipSyncErrorHandler())
    # After Sanic(), which gives its loggers handlers of their own.
    logs.setup_logging(settings.logging)
    app.config.REQUEST_MAX_SIZE = settings.server.max_body_size
    app.config.PROXIES_COUNT = settings.server.proxies_count
    app.config.FORWARDED_FOR_HEADER = "X-Forwarded-For"
    app.config.REAL_IP_HEADER = ""
    app.config.OAS = False
    app.config.MOTD = False

    # The media URL key, generated now when none is set: `clipsync serve` checks
    # generated keys against the other hosts' once the app is built.
    delivery.signer_for(settings)
    setup_resources(app)
    setup_http_security(app)
    setup_sessions(app)
    tracing.setup_tracing(app)
    setup_first_run(app)
    setup_routes(app)
    api_metrics.setup_metrics(app)
    return app


def create_app_from_config(config_path: str | None) -> ClipSyncApp:
    """Factory used by `clipsync serve` in each worker process."""
    return create_app(load_settings(config_path))


def setup_resources(app: ClipSyncApp) -> None:
    """The database connection and the analytics backend, per worker process."""

    @app.before_server_start
    async def open_resources(app: ClipSyncApp) -> None:
        # First: a session store that does not answer stops the start with nothing
        # opened yet.
        await app.ctx.accounts.sessions.open()
        await db.open_database(app.ctx.settings)
        try:
            await search.use_language(app.ctx.settings.search.language)
        except BaseException:
            # A start refused here leaves nothing open for the next app of the process.
            await db.close_database()
            await app.ctx.accounts.sessions.close()
            raise
        await events.start(app.ctx.settings)
        await cache.start(app.ctx.settings)
        notifications.install(app.ctx.plugins, app.ctx.jobs.enqueue_delivery)
        await app.ctx.backends.analytics.start()
        await app.ctx.plugins.notify("startup", app=app)

    @app.after_server_stop
    async def close_resources(app: ClipSyncApp) -> None:
        await app.ctx.backends.analytics.close()
        await cache.stop()
        await app.ctx.accounts.sessions.close()
        await events.stop()
        await db.close_database()


def setup_sessions(app: ClipSyncApp) -> None:
    setup_request_ids(app)
    app.register_middleware(attach_actor, "request")
    # After it: the actor's other categories, for the visibility rule (services/memberships.py).
    app.register_middleware(memberships.attach_to_actor, "request")
    app.register_middleware(remember_csrf, "response")


def setup_first_run(app: ClipSyncApp) -> None:
    """Until the first administrator is created, every page leads to the set-up page.

    Set-up is done once, for good (a flag in the database): an install whose
    administrators were all removed does not open it again.
    """

    async def require_set_up(request: Request) -> HTTPResponse | None:
        ctx: AppContext = request.app.ctx
        if ctx.set_up or request.path.startswith(SETUP_OPEN) or is_api(request):
            return None
        if await ctx.accounts.is_set_up():
            ctx.set_up = True
            return None
        return redirect("/setup", status=303)

    app.register_middleware(require_set_up, "request", priority=10)


def setup_routes(app: ClipSyncApp) -> None:
    blueprints = (
        api_auth.bp,
        api_profile.bp,
        api_two_factor.bp,
        api_videos.bp,
        api_up_next.bp,
        api_home_rows.bp,
        api_tags.bp,
        api_playlists.bp,
        api_history.bp,
        api_comments.bp,
        api_captions.bp,
        api_notifications.bp,
        direct_upload.bp,
        api_admin.bp,
        library_admin.bp,
        api_webhooks.bp,
        api_grants.bp,
        api_share_links.bp,
        api_video_categories.bp,
        api_openapi.bp,
        api_status.bp,
        api_analytics.bp,
        uploads_tus.bp,
        hls.bp,
        api_stream_links.bp,
        health.bp,
        pages.bp,
        password_pages.bp,
        profile_pages.bp,
        account_pages.bp,
        two_factor_pages.bp,
        video_pages.bp,
        organise_pages.bp,
        history_pages.bp,
        sharing_pages.bp,
        share_link_pages.bp,
        caption_pages.bp,
        notification_pages.bp,
        analytics_pages.bp,
        admin_pages.bp,
        library_pages.bp,
        webhook_pages.bp,
        status_pages.bp,
        static.bp,
        plugin_pages.bp,
    )
    for bp in blueprints:
        app.blueprint(bp)
    plugin_pages.mount_plugin_routes(app, app.ctx.plugins)


def setup_job_consumer(app: ClipSyncApp, config_path: Path | None) -> None:
    """Let `clipsync serve` run the Huey consumer as a process of its own, and restart it.

    Served for real, a consumer is expected (this one, or `clipsync worker`), so
    /healthz fails while none is alive.
    """
    app.ctx.jobs.liveness.expected = True
    if not app.ctx.settings.queue.run_in_server:
        return

    @app.main_process_ready
    async def start_consumer(app: ClipSyncApp) -> None:
        from clipsync.jobs.consumer import run_consumer
        from clipsync.jobs.supervisor import supervise

        consumer = app.manager.manage(
            "JobConsumer",
            run_consumer,
            {"config_path": str(config_path) if config_path else None},
            restartable=True,
        )
        supervise(app.manager, consumer)
