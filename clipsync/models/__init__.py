"""The database tables, as Tortoise models.

Changing a model needs a migration: see "Changing the models" in docs/development.md.
"""

from clipsync.models.audit import AuditEntry
from clipsync.models.auth_sessions import AuthSession, UsedRefreshToken
from clipsync.models.captions import Caption
from clipsync.models.categories import UserCategory, VideoCategory
from clipsync.models.chunks import ChunkStatus, TranscodeChunk
from clipsync.models.comments import Comment, Like
from clipsync.models.deliveries import Delivery, DeliveryStatus
from clipsync.models.email_changes import EmailChange
from clipsync.models.grants import VideoGrant
from clipsync.models.identities import ExternalIdentity
from clipsync.models.invites import Invite
from clipsync.models.notifications import KnownDevice, Notification, NotificationPreference
from clipsync.models.password_resets import PasswordReset
from clipsync.models.playlists import Playlist, PlaylistAudience, PlaylistItem
from clipsync.models.progress import WatchProgress
from clipsync.models.resumable import ResumableUpload
from clipsync.models.share_links import ShareLink, ShareLinkUse
from clipsync.models.sign_ins import SignInFailures
from clipsync.models.site import SiteAlert, SiteState
from clipsync.models.tags import Tag, VideoTag
from clipsync.models.tokens import RevokedToken
from clipsync.models.two_factor import RecoveryCode
from clipsync.models.up_next import UpNext
from clipsync.models.users import Role, User
from clipsync.models.videos import Rendition, Video, VideoStatus
from clipsync.models.webhooks import Webhook

__all__ = [
    "AuditEntry",
    "AuthSession",
    "Caption",
    "ChunkStatus",
    "Comment",
    "Delivery",
    "DeliveryStatus",
    "EmailChange",
    "ExternalIdentity",
    "Invite",
    "KnownDevice",
    "Like",
    "Notification",
    "NotificationPreference",
    "PasswordReset",
    "Playlist",
    "PlaylistAudience",
    "PlaylistItem",
    "RecoveryCode",
    "Rendition",
    "ResumableUpload",
    "RevokedToken",
    "Role",
    "ShareLink",
    "ShareLinkUse",
    "SignInFailures",
    "SiteAlert",
    "SiteState",
    "Tag",
    "TranscodeChunk",
    "UpNext",
    "UsedRefreshToken",
    "User",
    "UserCategory",
    "Video",
    "VideoCategory",
    "VideoGrant",
    "VideoStatus",
    "VideoTag",
    "WatchProgress",
    "Webhook",
]
