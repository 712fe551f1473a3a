"""What a running ClipSync app carries: the typed `app.ctx`.

Everything a handler needs lives here, made once per worker by `create_app()`;
nothing is a module-level global.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, TypeAlias

from sanic import Request, Sanic
from sanic.config import Config

if TYPE_CHECKING:
    from clipsync.backends import Backends
    from clipsync.jobs.tasks import Tasks
    from clipsync.plugins import PluginHost
    from clipsync.services.accounts import AccountService
    from clipsync.services.analytics import AnalyticsService
    from clipsync.services.moderation import ModerationService
    from clipsync.services.resumable import ResumableService
    from clipsync.services.share_links import Guesses
    from clipsync.services.uploads import UploadService
    from clipsync.services.user_admin import UserAdminService
    from clipsync.settings import Settings
    from clipsync.web.templates import Templates


@dataclass
class AppContext:
    settings: Settings
    plugins: PluginHost
    backends: Backends
    accounts: AccountService
    uploads: UploadService
    resumable: ResumableService
    moderation: ModerationService
    user_admin: UserAdminService
    analytics: AnalyticsService
    templates: Templates
    jobs: Tasks
    share_link_guesses: Guesses
    # Set once an administrator exists, so the set-up check stops querying.
    set_up: bool = False


ClipSyncApp: TypeAlias = "Sanic[Config, AppContext]"
ClipSyncRequest: TypeAlias = "Request[ClipSyncApp, SimpleNamespace]"
