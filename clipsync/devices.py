"""What a sign-in's User-Agent header says: a device name a person recognises.

"Firefox 133 on Windows" for a browser; the client's own name for a script
("python-httpx"); "an unknown device" for nothing at all. The parsing is ua-parser's
(the regexes maintained by the uap-core project), not ours. The header itself is
never stored: only `fingerprint`, to tell whether a device was seen before.
"""

from __future__ import annotations

import hashlib

import ua_parser

# A User-Agent longer than this is cut before parsing (the regexes are not free).
MAX_LENGTH = 512
UNKNOWN = "an unknown device"


def describe(user_agent: str | None) -> str:
    """A short name for the device: "Chrome 131 on Linux", "python-httpx", ..."""
    text = (user_agent or "").strip()[:MAX_LENGTH]
    if not text:
        return UNKNOWN
    result = ua_parser.parse(text)
    agent, system = result.user_agent, result.os
    if agent is None or agent.family == "Other":
        # Not a browser: scripts name themselves first ("curl/8.5", "python-httpx/0.28").
        return text.split("/", 1)[0].split(" ", 1)[0][:60] or UNKNOWN
    name = f"{agent.family} {agent.major}" if agent.major else agent.family
    if system is not None and system.family != "Other":
        name += f" on {system.family}"
    return name


def fingerprint(user_agent: str | None) -> str:
    """The same for every sign-in from one browser build; reveals nothing by itself."""
    text = (user_agent or "").strip()[:MAX_LENGTH]
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
