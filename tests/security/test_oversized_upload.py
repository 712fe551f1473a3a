"""Point 11: an upload over `[uploads] max_size` leaves nothing behind on the server.

Against a real `clipsync serve` with a small limit: a form upload whose file passes
the limit while it streams (with a Content-Length, and chunked without one), and a
resumable (tus) upload that declares too many bytes. Each is refused with 413, and
neither the media folder nor the resumable uploads' staging folder keeps a file, a
`.part` draft or an empty folder of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser import LiveServer
from clients import PASSWORD, bearer

LIMIT = 50_000
BOUNDARY = "clipsync-test-boundary"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    toml = f"[uploads]\nmax_size = {LIMIT}\n"
    with LiveServer(tmp_path_factory.mktemp("oversized") / "live", toml) as live:
        yield live


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        yield client


@pytest.fixture
def token(http: httpx.Client) -> str:
    email = f"u{uuid.uuid4().hex[:8]}@example.org"
    answer = http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def left_behind(server: LiveServer) -> list[str]:
    """Everything under the folders uploads go to (media and resumable staging)."""
    found = []
    for folder in ("media", "uploads"):
        root = server.data_dir / folder
        if root.exists():
            found += [str(p.relative_to(server.data_dir)) for p in root.rglob("*")]
    # The media folder's top level `videos/` is shared by every video, not an upload's.
    return [p for p in found if p != str(Path("media") / "videos")]


def form_body(size: int) -> Iterator[bytes]:
    """A multipart/form-data body with a `file` field of `size` bytes, in 16 KiB chunks."""
    yield (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    chunk = b"\0" * 16384
    for start in range(0, size, len(chunk)):
        yield chunk[: min(len(chunk), size - start)]
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def test_a_form_upload_over_the_limit_leaves_no_folder_or_draft(
    server: LiveServer, http: httpx.Client, token: str
) -> None:
    # Within the framing allowance of the Content-Length check: refused while streaming.
    content = b"\0" * (LIMIT + 1)
    before = left_behind(server)
    answer = http.post(
        "/api/videos/upload-local",
        files={"file": ("big.mp4", content, "video/mp4")},
        headers=bearer(token),
    )
    assert answer.status_code == 413, answer.text
    assert left_behind(server) == before


def test_a_chunked_form_upload_over_the_limit_leaves_no_folder_or_draft(
    server: LiveServer, http: httpx.Client, token: str
) -> None:
    # No Content-Length at all: only the count of streamed bytes can stop it.
    before = left_behind(server)
    answer = http.post(
        "/api/videos/upload-local",
        content=form_body(3 * LIMIT),
        headers={**bearer(token), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert answer.status_code == 413, answer.text
    assert left_behind(server) == before


def test_a_resumable_upload_over_the_limit_leaves_no_folder(
    server: LiveServer, http: httpx.Client, token: str
) -> None:
    before = left_behind(server)
    answer = http.post(
        "/api/uploads/",
        headers={
            **bearer(token),
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(LIMIT + 1),
            "Upload-Metadata": "filename YmlnLm1wNA==",  # big.mp4
        },
    )
    assert answer.status_code == 413, answer.text
    assert left_behind(server) == before
