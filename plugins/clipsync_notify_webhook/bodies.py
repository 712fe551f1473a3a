"""What a webhook POST carries: the event's data, the body of each format, its signature.

The payload of a delivery (stored on its row when the event happens) is ClipSync's
own JSON body, `{"event", "occurredAt", "data"}`; the chat formats are made from it
when it is sent. Titles and reasons come from uploaders and moderators, so in chat
text they are escaped: a title can never mention `@channel` in Slack or add links.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
from datetime import UTC, datetime
from typing import Any

from clipsync.events import Event
from clipsync.models import Video

# The words each event is announced with in chat formats.
LABELS = {
    "video.uploaded": "New upload",
    "video.ready": "Video ready",
    "video.failed": "Video could not be processed",
    "video.approved": "Video approved",
    "video.rejected": "Video rejected",
    "video.moved": "Video moved",
    "video.deleted": "Video deleted",
}
MAX_TEXT_FIELD = 500
# CommonMark's escapable punctuation that changes how Mattermost or Teams show text.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~@])")


async def event_data(event: Event, base_url: str) -> dict[str, Any]:
    """The event's fields plus, for a video, its title, status, category and watch URL."""
    data = dict(event.data)
    video_id = data.get("videoId")
    if not event.name.startswith("video.") or not video_id:
        return data
    try:
        video = await Video.get_or_none(id=video_id)
    except ValueError:  # not a UUID: nothing to add
        video = None
    if video is not None:
        data |= {
            "videoId": str(video.id),
            "title": video.title,
            "status": str(video.status),
            "category": video.category,
        }
        if event.name == "video.failed" and video.error:
            data["reason"] = video.error[:MAX_TEXT_FIELD]
        if event.name == "video.rejected" and video.moderation_reason:
            data["reason"] = video.moderation_reason[:MAX_TEXT_FIELD]
    if event.name != "video.deleted":
        data["url"] = f"{base_url}/watch/{video_id}"
    return data


def payload_for(event: Event, data: dict[str, Any]) -> dict[str, Any]:
    """ClipSync's own body for an event (what a "json" webhook receives)."""
    return {"event": event.name, "occurredAt": datetime.now(UTC).isoformat(), "data": data}


def _slack(text: str) -> str:
    # Slack's three control characters; `<!channel>` becomes plain text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _markdown(text: str) -> str:
    return _MARKDOWN.sub(r"\\\1", text)


def _teams(text: str) -> str:
    return _markdown(html.escape(text, quote=False))


ESCAPES = {"slack": _slack, "mattermost": _markdown, "teams": _teams}


def chat_text(payload: dict[str, Any], body_format: str) -> str:
    """One line for a chat channel: what happened, to which video, and a link."""
    escape = ESCAPES.get(body_format, _markdown)
    event = str(payload.get("event", ""))
    data = payload.get("data") or {}
    label = LABELS.get(event, event)
    title = str(data.get("title") or "").strip()[:MAX_TEXT_FIELD] or "Untitled video"
    text = f"{label}: “{escape(title)}”"
    if event == "video.moved" and data.get("oldCategory"):
        old, new = str(data["oldCategory"]), str(data.get("category", ""))
        text += f" moved from {escape(old)} to {escape(new)}"
    elif data.get("category"):
        text += f" in {escape(str(data['category']))}"
    if data.get("reason"):
        text += f". Reason: {escape(str(data['reason'])[:MAX_TEXT_FIELD])}"
    url = data.get("url")
    if url:
        text += f" <{url}|Open in ClipSync>" if body_format == "slack" else f" {url}"
    return text


def body_for(payload: dict[str, Any], body_format: str) -> dict[str, Any]:
    """The JSON object a webhook of `body_format` receives."""
    if body_format in ("slack", "mattermost"):
        return {"text": chat_text(payload, body_format)}
    if body_format == "teams":
        text = chat_text(payload, "teams")
        card: dict[str, Any] = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": LABELS.get(str(payload.get("event")), str(payload.get("event"))),
            "text": text,
        }
        url = (payload.get("data") or {}).get("url")
        if url:
            card["potentialAction"] = [
                {
                    "@type": "OpenUri",
                    "name": "Open in ClipSync",
                    "targets": [{"os": "default", "uri": url}],
                }
            ]
        return card
    return payload


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact UTF-8 JSON."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`X-ClipSync-Signature`: "sha256=" + hex HMAC-SHA256 of "<timestamp>." + body.

    The key is the secret as shown when the webhook was created (its 64 hex
    characters as ASCII), the timestamp the `X-ClipSync-Timestamp` header.
    """
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"
