"""The database tables, as Tortoise models.

Changing a model needs a migration: see "Changing the models" in docs/development.md.
"""

from clipsync.models.audit import AuditEntry
from clipsync.models.invites import Invite
from clipsync.models.notifications import Notification
from clipsync.models.progress import WatchProgress
from clipsync.models.resumable import ResumableUpload
from clipsync.models.sign_ins import SignInFailures
from clipsync.models.site import SiteState
from clipsync.models.tokens import RevokedToken
from clipsync.models.users import Role, User
from clipsync.models.videos import Rendition, Video, VideoStatus

__all__ = [
    "AuditEntry",
    "Invite",
    "Notification",
    "Rendition",
    "ResumableUpload",
    "RevokedToken",
    "Role",
    "SignInFailures",
    "SiteState",
    "User",
    "Video",
    "VideoStatus",
    "WatchProgress",
]
