"""One webhook POST: to the address that was checked, bounded in time and in size.

The URL is checked (and its host resolved) right before the POST, and the
connection goes to that checked address: the request's URL carries the address,
the `Host` header and TLS's server name (SNI, and the certificate check) carry the
name. So a name that resolves to a public address for the check and a private one a
moment later is never reached. Redirects are not followed (a 3xx is a failure), no
proxy from the environment is used, and at most `max_bytes` of the answer are read,
undecoded, within `seconds` for the whole exchange.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from clipsync.errors import ClipSyncError
from clipsync.services.webhooks import check_url, redact

# The part of a refusing answer kept in the delivery's error.
ERROR_SNIPPET = 300


class WebhookError(Exception):
    """This attempt failed; the message (never the URL's credentials) is recorded."""


@dataclass(frozen=True)
class Answer:
    status: int
    # The start of the answer's body (at most `max_bytes` were read).
    body: bytes


async def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    seconds: float,
    max_bytes: int,
) -> Answer:
    """POST `body` to `url` once; raises `WebhookError` when no answer came back."""
    try:
        async with asyncio.timeout(seconds):
            return await _post(url, body, headers, allow_private, seconds, max_bytes)
    except TimeoutError:
        raise WebhookError(f"no answer within {seconds:g} s") from None
    except WebhookError:
        raise
    except Exception as exc:  # refused, reset, TLS: httpx, ssl and the OS say why
        raise WebhookError(f"could not reach the webhook: {scrub(str(exc), url)}") from None


def scrub(message: str, url: str) -> str:
    """An error message without the credentials the URL may carry."""
    message = message.replace(url, redact(url))
    parts = urlsplit(url)
    for credential in (parts.password, parts.username):
        if credential:
            message = message.replace(credential, "***")
    return message or "no reason given"


async def _post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    allow_private: bool,
    seconds: float,
    max_bytes: int,
) -> Answer:
    try:
        target = await check_url(url, allow_private=allow_private, resolve_seconds=seconds)
    except ClipSyncError as exc:  # its message names the problem, never the credentials
        raise WebhookError(exc.message) from None
    request_url = httpx.URL(url)
    extensions = {}
    if not target.host_is_address:
        request_url = request_url.copy_with(host=target.address)
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
    sent_headers = {
        **headers,
        "Host": httpx.URL(url).netloc.decode("ascii"),
        # Raw bytes only: a compressed answer could inflate past the limit.
        "Accept-Encoding": "identity",
    }
    async with (
        httpx.AsyncClient(
            timeout=httpx.Timeout(seconds), follow_redirects=False, trust_env=False
        ) as client,
        client.stream(
            "POST", request_url, content=body, headers=sent_headers, extensions=extensions
        ) as response,
    ):
        received = bytearray()
        async for chunk in response.aiter_raw():
            received += chunk[: max_bytes - len(received)]
            if len(received) >= max_bytes:
                break
        return Answer(response.status_code, bytes(received))


def refusal(answer: Answer) -> str:
    """The error recorded for an answer that is not 2xx."""
    text = answer.body[:ERROR_SNIPPET].decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    why = f"the webhook answered {answer.status}"
    if 300 <= answer.status < 400:
        why += " (a redirect: ClipSync does not follow them; give the final URL)"
    return f"{why}: {text}" if text else why
