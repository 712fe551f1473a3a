"""Small conveniences for talking to the API in tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "correct horse battery"


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    """Register through the API; returns `{user, token, expiresAt}`."""
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def upload(
    client: httpx.AsyncClient, token: str, path: Path, name: str | None = None
) -> httpx.Response:
    with path.open("rb") as fh:
        return await client.post(
            "/api/videos/upload-local",
            files={"file": (name or path.name, fh, "video/mp4")},
            headers=bearer(token),
        )


async def upload_and_register(
    client, token: str, path: Path, title: str = "A clip"
) -> httpx.Response:
    uploaded = await upload(client, token, path)
    assert uploaded.status_code == 201, uploaded.text
    return await client.post(
        "/api/videos/register",
        json={"videoId": uploaded.json()["videoId"], "title": title, "description": "about it"},
        headers=bearer(token),
    )


def play_with_ffmpeg(url: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """ffmpeg as an HLS client: decode every stream of `url`, with a bearer token or none."""
    credentials = ["-headers", f"Authorization: Bearer {token}\r\n"] if token else []
    return subprocess.run(
        ["ffmpeg", "-v", "error", *credentials, "-i", url, "-map", "0", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    """A JSON error without its `requestId`, which differs from one request to the next."""
    return {k: v for k, v in response.json()["error"].items() if k != "requestId"}
