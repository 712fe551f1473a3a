"""Where backups are kept: a local folder or an S3 bucket under a prefix.

A target holds named files ("clipsync-20261207T130000-000000Z/manifest.json",
"media/ab/ab12…") under its root. Both kinds offer the same few operations, all
async (the blocking work runs on a thread), and both write a file in full before
it appears under its name, so a backup cut short never shows a half-written file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from clipsync.errors import ConfigError
from clipsync.settings import Settings

S3_SCHEME = "s3://"
DEFAULT_REGION = "us-east-1"


class Target(Protocol):
    """A place that keeps backups; names are relative, with "/" between parts."""

    where: str

    async def size(self, name: str) -> int | None:
        """The size of `name` in bytes, or None when there is no such file."""

    async def put_file(self, name: str, path: Path) -> None: ...

    async def put_bytes(self, name: str, data: bytes) -> None: ...

    async def get_bytes(self, name: str) -> bytes: ...

    def get_file(self, name: str) -> AbstractAsyncContextManager[Path]:
        """A local file holding `name` for as long as the context lasts."""

    async def list(self, prefix: str) -> list[str]:
        """Every name under `prefix` ("" for all), in name order."""

    async def folders(self) -> list[str]:
        """The names of the folders right under the root, without walking into them."""

    async def delete(self, names: list[str]) -> None: ...


@dataclass
class LocalTarget:
    root: Path

    @property
    def where(self) -> str:
        return str(self.root)

    def _path(self, name: str) -> Path:
        return self.root.joinpath(*name.split("/"))

    async def size(self, name: str) -> int | None:
        try:
            return (await asyncio.to_thread(self._path(name).stat)).st_size
        except FileNotFoundError:
            return None

    def _write(self, name: str, fill: Any) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(draft, path)
        except BaseException:
            Path(draft).unlink(missing_ok=True)
            raise

    async def put_file(self, name: str, path: Path) -> None:
        def fill(out: Any) -> None:
            with path.open("rb") as source:
                shutil.copyfileobj(source, out, 1024 * 1024)

        await asyncio.to_thread(self._write, name, fill)

    async def put_bytes(self, name: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, name, lambda out: out.write(data))

    async def get_bytes(self, name: str) -> bytes:
        return await asyncio.to_thread(self._path(name).read_bytes)

    @asynccontextmanager
    async def get_file(self, name: str) -> Any:
        path = self._path(name)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found")
        yield path

    async def list(self, prefix: str) -> list[str]:
        def walk() -> Iterator[str]:
            base = self._path(prefix) if prefix else self.root
            if not base.is_dir():
                return
            for folder, _, files in os.walk(base):
                for file in files:
                    if not file.startswith("."):
                        yield Path(folder, file).relative_to(self.root).as_posix()

        return sorted(await asyncio.to_thread(lambda: list(walk())))

    async def folders(self) -> list[str]:
        def names() -> list[str]:
            if not self.root.is_dir():
                return []
            return sorted(p.name for p in self.root.iterdir() if p.is_dir())

        return await asyncio.to_thread(names)

    async def delete(self, names: list[str]) -> None:
        def remove() -> None:
            for name in names:
                path = self._path(name)
                path.unlink(missing_ok=True)
                # Drop the folders left empty, up to the root.
                for parent in path.parents:
                    if parent == self.root or not parent.is_relative_to(self.root):
                        break
                    try:
                        parent.rmdir()
                    except OSError:
                        break

        await asyncio.to_thread(remove)


@dataclass
class S3Target:
    client: Any  # minio.Minio
    bucket: str
    prefix: str

    @property
    def where(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}"

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    async def size(self, name: str) -> int | None:
        from minio.error import S3Error

        try:
            stat = await asyncio.to_thread(self.client.stat_object, self.bucket, self._key(name))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NotFound", "ResourceNotFound"):
                return None
            raise
        return int(stat.size)

    async def put_file(self, name: str, path: Path) -> None:
        await asyncio.to_thread(self.client.fput_object, self.bucket, self._key(name), str(path))

    async def put_bytes(self, name: str, data: bytes) -> None:
        import io

        await asyncio.to_thread(
            self.client.put_object, self.bucket, self._key(name), io.BytesIO(data), len(data)
        )

    async def get_bytes(self, name: str) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(self.bucket, self._key(name))
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(read)

    @asynccontextmanager
    async def get_file(self, name: str) -> Any:
        with tempfile.TemporaryDirectory(prefix="clipsync-restore-") as folder:
            path = Path(folder) / "object"
            await asyncio.to_thread(
                self.client.fget_object, self.bucket, self._key(name), str(path)
            )
            yield path

    async def list(self, prefix: str) -> list[str]:
        def names() -> list[str]:
            found = self.client.list_objects(self.bucket, prefix=self._key(prefix), recursive=True)
            return [obj.object_name[len(self.prefix) :] for obj in found]

        return sorted(await asyncio.to_thread(names))

    async def folders(self) -> list[str]:
        def names() -> list[str]:
            found = self.client.list_objects(self.bucket, prefix=self.prefix, recursive=False)
            return [obj.object_name[len(self.prefix) :].rstrip("/") for obj in found if obj.is_dir]

        return sorted(await asyncio.to_thread(names))

    async def delete(self, names: list[str]) -> None:
        from minio.deleteobjects import DeleteObject

        def remove() -> None:
            doomed = [DeleteObject(self._key(name)) for name in names]
            for error in self.client.remove_objects(self.bucket, doomed):
                raise OSError(f"could not delete {error.name}: {error.message}")

        await asyncio.to_thread(remove)


def open_target(spec: str, settings: Settings, s3_fallback: Any = None) -> Target:
    """The target `spec` names: "s3://bucket/prefix", or a folder.

    A relative folder is inside the data directory. An S3 target's endpoint and keys
    come from `[backup] s3_*` (so also `CLIPSYNC_BACKUP_S3_*`), else from
    `s3_fallback`, the validated `[plugins.storage_s3]` settings.
    """
    if not spec.startswith(S3_SCHEME):
        path = Path(spec).expanduser()
        return LocalTarget(path if path.is_absolute() else settings.data_dir / path)
    bucket, _, prefix = spec[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise ConfigError(f"{spec}: name a bucket, as in s3://bucket/prefix")
    prefix = prefix.strip("/")
    return S3Target(s3_client(settings, s3_fallback), bucket, f"{prefix}/" if prefix else "")


def s3_client(settings: Settings, fallback: Any = None) -> Any:
    from minio import Minio

    own = settings.backup
    endpoint = own.s3_endpoint or getattr(fallback, "endpoint", "")
    if not endpoint:
        raise ConfigError(
            "an s3:// backup target needs an endpoint: set [backup] s3_endpoint "
            "(or CLIPSYNC_BACKUP_S3_ENDPOINT), or configure [plugins.storage_s3]"
        )
    use_own = bool(own.s3_endpoint)
    access = own.s3_access_key if use_own else getattr(fallback, "access_key", None)
    secret = own.s3_secret_key if use_own else getattr(fallback, "secret_key", None)
    region = (own.s3_region if use_own else getattr(fallback, "region", "")) or DEFAULT_REGION
    secure = own.s3_secure if use_own else bool(getattr(fallback, "secure", True))
    return Minio(
        endpoint,
        access_key=(access.reveal() if access else "") or None,
        secret_key=(secret.reveal() if secret else "") or None,
        secure=secure,
        region=region,
    )
