"""Writing a mail: the theme's `emails/` templates, safe headers, absolute links.

Bodies come from the active theme, layered over `default` exactly as pages are
(`clipsync.web.templates`): `emails/<type>.txt` and `emails/<type>.html` for one
notification, `emails/digest.txt|html` for several. `.html` is autoescaped, `.txt`
is not (it is never read as markup). The context is documented in
docs/notifications.md.

Nothing a person typed can reach a header unchanged: the subject has every control
character (CR and LF among them) replaced, and the message is built with the SMTP
policy, which refuses a header with a line break in it anyway.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from jinja2 import Environment, select_autoescape

from clipsync.services import notification_types
from clipsync.settings import Settings
from clipsync.web.templates import Templates as PageTemplates

SUBJECT_LENGTH = 200


def clean_header(text: str, limit: int = SUBJECT_LENGTH) -> str:
    """One line of text: control and format characters become spaces, runs of space one."""
    spaced = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in str(text))
    single = re.sub(r" +", " ", spaced).strip()
    return single if len(single) <= limit else single[: limit - 1].rstrip() + "…"


def absolute(settings: Settings, path: str) -> str:
    """A site path made absolute with `[server] public_url`; an absolute URL stays as it is."""
    if not path:
        return settings.server.base_url + "/"
    if re.match(r"^https?://", path):
        return path
    return settings.server.base_url + "/" + path.lstrip("/")


@dataclass(frozen=True)
class Item:
    """One notification as the templates see it."""

    type: str
    label: str
    title: str
    body: str
    url: str
    video_id: str | None
    data: dict[str, Any]


def item_of(settings: Settings, payload: dict[str, Any]) -> Item:
    kind = notification_types.TYPES.get(payload.get("type", ""))
    return Item(
        type=str(payload.get("type", "")),
        label=kind.label if kind else "",
        # A title is one line, in a mail's body as in its subject.
        title=clean_header(str(payload.get("title", "")), limit=500),
        body=str(payload.get("body", "")),
        url=absolute(settings, str(payload.get("url", ""))),
        video_id=payload.get("video_id"),
        data=dict(payload.get("data") or {}),
    )


class Templates:
    """The mail templates of this install's theme."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = Environment(
            # The page templates' loader: the active theme, then `default`, and the
            # `default:` prefix.
            loader=PageTemplates(settings).env.loader,
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.names = frozenset(
            self.env.list_templates(filter_func=lambda n: n.startswith("emails/"))
        )

    def _name(self, template: str, ext: str) -> str:
        name = f"emails/{template}.{ext}"
        # A type with no templates of its own (a plugin's) still gets a plain mail.
        return name if name in self.names else f"emails/generic.{ext}"

    def render(self, template: str, context: dict[str, Any]) -> tuple[str, str]:
        """(plain text, HTML) of `emails/<template>.txt|html`."""
        settings = self.settings
        full = {
            "site_name": settings.web.site_name,
            "site_url": settings.server.base_url + "/",
            "preferences_url": absolute(settings, "/notifications/preferences"),
            **context,
        }
        text = self.env.get_template(self._name(template, "txt")).render(full)
        html = self.env.get_template(self._name(template, "html")).render(full)
        return text, html


def message(
    *,
    sender: str,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    unsubscribe_url: str | None,
) -> EmailMessage:
    """A multipart/alternative mail with safe headers (see the module docstring)."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = sender
    mail["To"] = recipient
    mail["Subject"] = clean_header(subject)
    mail["Date"] = formatdate(usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    mail["Message-ID"] = make_msgid(domain=domain)
    # RFC 3834: an automatic message; well-behaved responders do not answer it.
    mail["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        # RFC 8058: a mail client may unsubscribe with one POST, without a page.
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail.set_content(text)
    mail.add_alternative(html, subtype="html")
    return mail
