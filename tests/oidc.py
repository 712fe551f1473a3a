"""A real OpenID provider on loopback for the auth_oidc tests: npm's `oidc-provider`.

`OidcProvider` runs tests/oidc_provider/provider.mjs with node (see there), like the
servers of services.py: a free port, a temporary directory, a process that dies with
the test run, and an error instead of a skip when it cannot start (node missing:
`scripts/install-deps.sh test`; its packages missing: `make test` runs `npm ci`
there). Its one client is ClipSync, with the redirect URIs given; its accounts are
a JSON file a test rewrites with `set_account` to change what the provider says of a
person at their next sign-in.

`sign_in_at_provider` plays the person at the provider with httpx: it follows the
authorization redirect, fills devInteractions' login and consent forms, and returns
the address the provider sends the browser back to (ClipSync's callback), without
calling it.
"""

from __future__ import annotations

import html
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx
from services import LOOPBACK, Server, ServiceUnavailable, find_binary, free_port

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "OidcProvider", "sign_in_at_provider"]

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "clipsync"
CLIENT_SECRET = "a-client-secret-for-tests-only"
SCOPES = ["openid", "email", "profile", "groups", "department"]
FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', re.S)


class OidcProvider(Server):
    """oidc-provider with one client (ClipSync) and the accounts of `accounts`."""

    name = "oidc-provider"

    def __init__(
        self,
        redirect_uris: list[str],
        accounts: dict[str, dict[str, Any]] | None = None,
        *,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self._node = find_binary("node", "nodejs")
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise ServiceUnavailable(
                f"oidc-provider is not installed in {PROVIDER_DIR}: run `make test`, or "
                f"`npm ci --prefix {PROVIDER_DIR}`"
            )
        self.redirect_uris = list(redirect_uris)
        self.accounts: dict[str, dict[str, Any]] = dict(accounts or {})
        self.port = free_port()

    @property
    def issuer(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def state_path(self) -> Path:
        return self.workdir / "state.json"

    def config(self, **extra: Any) -> dict[str, Any]:
        """A `[plugins.auth_oidc]` table for ClipSync against this provider."""
        return {
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": SCOPES,
            **extra,
        }

    def set_account(self, login: str, **claims: Any) -> None:
        """Create or change what the provider says of `login` (from the next sign-in on)."""
        self.accounts[login] = claims
        if self._workdir is not None:
            self._write_state()

    def _write_state(self) -> None:
        state = {
            "client": {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": self.redirect_uris,
                "response_types": ["code"],
                "grant_types": ["authorization_code"],
            },
            "accounts": self.accounts,
        }
        draft = self.state_path.with_suffix(".tmp")
        draft.write_text(json.dumps(state))
        os.replace(draft, self.state_path)  # the provider never reads half a file

    def _prepare(self) -> None:
        self._write_state()

    def _command(self) -> list[str]:
        script = PROVIDER_DIR / "provider.mjs"
        arguments = ["--port", str(self.port), "--state", str(self.state_path)]
        return [str(self._node), str(script), *arguments]

    def _is_ready(self) -> bool:
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False


async def sign_in_at_provider(
    authorize_url: str,
    redirect_uri: str,
    login: str,
    *,
    client: httpx.AsyncClient | None = None,
    abort: bool = False,
) -> str:
    """Sign in as `login` at the provider; the URL it redirects back to (to ClipSync).

    `client` keeps the provider's cookies between sign-ins (a second sign-in then
    needs no form). `abort`: cancel at the login form instead, as a person who
    changes their mind (the provider then sends `error=access_denied`).
    """
    own = client is None
    browser = client or httpx.AsyncClient(timeout=10)
    try:
        response = await browser.get(authorize_url)
        for _ in range(12):
            if response.is_redirect:
                location = str(response.next_request.url) if response.next_request else ""
                if location.startswith(redirect_uri):
                    return location
                response = await browser.get(location)
                continue
            if response.status_code != 200:
                raise AssertionError(
                    f"the provider answered {response.status_code}: {response.text[:500]}"
                )
            found = FORM.search(response.text)
            if found is None:
                raise AssertionError(f"no form on the provider's page: {response.text[:500]}")
            action = response.url.join(html.unescape(found.group(1)))
            if abort:
                response = await browser.get(f"{action}/abort")
                continue
            fields = {name: html.unescape(value) for name, value in HIDDEN.findall(found.group(2))}
            if fields.get("prompt") == "login":
                fields |= {"login": login, "password": "any password"}
            response = await browser.post(action, data=fields)
        raise AssertionError("the provider never sent the browser back")
    finally:
        if own:
            await browser.aclose()
