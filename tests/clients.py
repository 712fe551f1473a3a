"""Small conveniences for talking to the API in tests."""

from __future__ import annotations

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
