"""Watching a video while it transcodes: its uploader and moderators need not wait.

One ffmpeg process writes every rendition at once (media/pipeline.py), so the first
seconds of every rendition exist a few seconds after the job starts, whatever the
video's length. While ffmpeg runs, a `Publisher` follows it (media/progressive.py):
every `POLL_SECONDS` it reads each rendition's playlist, stores the init segment and
the segments ffmpeg has finished under their final keys, then an EVENT playlist of
them in place of the rendition's `index.m3u8`, and, once every rendition (the audio
too) has a segment, a master playlist (`master.m3u8`). The store is all that hosts
share, so any host can serve them; the job's end stores the rest of the tree as
before, each segment once (`unpublished`), and the measured VOD playlists and master
over the EVENT ones: the finished tree is what a transcode without a follower makes.

Who may watch (api/hls.py, the watch page): the uploader and the people who may
moderate the video (`may_watch_early`), through their session only; everyone else
still gets a 404 until the video is READY.

Chunked transcodes (services/chunked_transcoding.py) follow chunk 0 the same way
(`for_chunk`): the first seconds come as fast as for a short video. Each chunk that is
done then extends the EVENT playlists over every chunk done from the first on
(`extend_over_done_chunks`): chunks end in any order on any host, but a playlist only
ever grows by whole chunks in order, so a player reaching the end of chunk 0 goes on
into chunk 1 as soon as it is done. The join's VOD playlists replace them.

A failed attempt removes what it published (`attempt`); a video deleted meanwhile is
swept with the rest of its files (`transcoding.sweep_if_deleted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from clipsync.backends import StorageBackend
from clipsync.media.chunks import ChunkOutputs
from clipsync.media.playlists import Segment, master_playlist
from clipsync.media.progressive import (
    AUDIO_FOLDER,
    INIT,
    PLAYLIST,
    Encoding,
    Follow,
    early_master,
    event_playlist,
    finished_segments,
)
from clipsync.models import ChunkStatus, TranscodeChunk, User, Video, VideoStatus
from clipsync.services.chunked_transcoding import joined_renditions
from clipsync.services.transcoding import JobContext, clear_transcoded, content_type, put_files
from clipsync.services.videos import can_moderate
from clipsync.storage import keys

log = logging.getLogger(__name__)

# How often ffmpeg's playlists are read for new segments: a small share of a segment.
POLL_SECONDS = 0.5
MASTER = "master.m3u8"


def may_watch_early(user: User, video: Video) -> bool:
    """Whether `user` may play `video` before it is READY: while it is PROCESSING, its
    uploader and those who may moderate it (`videos.can_moderate`), as `video_json`
    shows them its processing details."""
    return video.status == VideoStatus.PROCESSING and (
        video.owner_id == user.id or can_moderate(user, video)
    )


async def master_ready(storage: StorageBackend, video_id: uuid.UUID | str) -> bool:
    """Whether the video's master playlist is stored (early or final)."""
    return await storage.size(keys.hls_key(video_id, MASTER)) is not None


async def watch_state(storage: StorageBackend, user: User, video: Video) -> dict[str, Any] | None:
    """What the watch page offers `user` of `video` before it is READY, or None: the
    master's URL and whether it is stored yet (else the page waits for it)."""
    if not may_watch_early(user, video):
        return None
    return {"hls": f"/hls/{video.id}/{MASTER}", "ready": await master_ready(storage, video.id)}


async def extend_over_done_chunks(
    storage: StorageBackend, video_id: uuid.UUID | str, plan: str, segment_seconds: int
) -> int:
    """Store the EVENT playlists over the chunks of `plan` done from chunk 0 on, in
    order, and the master if it is not stored yet; return how many chunks they cover
    (0: chunk 0 is not done, nothing stored).

    Called by a chunk's job once its row is DONE, in the transaction that made it so,
    with the video's row locked (`chunk_jobs`): two chunks ending at once write one
    after the other, each over every chunk done by then, so a playlist never shrinks,
    and the join (queued only after that) writes the VOD playlists last. The audio is
    chunk 0's whole-file track. The init segments are chunk 0's, the segments each
    chunk's, stored under their final keys before its row was DONE.
    """
    rows = (
        await TranscodeChunk.filter(video_id=video_id, plan=plan)
        .order_by("index")
        .values("status", "outputs")
    )
    done: list[ChunkOutputs] = []
    for row in rows:
        if row["status"] != ChunkStatus.DONE or not row["outputs"]:
            break
        done.append(ChunkOutputs.from_json(row["outputs"]))
    if not done:
        return 0
    playlists = {
        name: [s for chunk in done for s in chunk.renditions[name].segments]
        for name in done[0].renditions
    }
    if done[0].audio is not None:
        playlists[AUDIO_FOLDER] = done[0].audio.segments
    for folder, records in playlists.items():
        segments = [Segment(record.uri, record.duration) for record in records]
        await put_text(storage, keys.hls_key(video_id, f"{folder}/{PLAYLIST}"),
                       event_playlist(segments, segment_seconds))  # fmt: skip
    if not await master_ready(storage, video_id):
        # Chunk 0's follower stores it as soon as every rendition has a segment; not
        # when its ffmpeg was done before the follower's first look.
        renditions, audio = joined_renditions(done)
        await put_text(storage, keys.hls_key(video_id, MASTER), master_playlist(renditions, audio))
    return len(done)


class Publisher:
    """Follows ffmpeg runs for one video and stores what they have finished.

    `owns_tree`: the first file it stores replaces the video's whole HLS tree (a
    one-process transcode; `transcoding.clear_transcoded`), and a failure clears the
    tree again. Otherwise (chunk 0: other chunks store beside it) it touches only the
    keys it stored. `enabled` False: follows nothing (`follow` is None).
    """

    def __init__(
        self,
        storage: StorageBackend,
        video_id: uuid.UUID | str,
        concurrency: int,
        *,
        owns_tree: bool = True,
        enabled: bool = True,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.storage = storage
        self.video_id = video_id
        self.concurrency = concurrency
        self.owns_tree = owns_tree
        self.enabled = enabled
        self.poll_seconds = poll_seconds
        # Keys of init segments and segments stored, whose bytes are final.
        self.published: set[str] = set()
        # Every key stored (the playlists and the master too), for `discard`.
        self.written: set[str] = set()
        self.master_stored = False
        self._segments: dict[str, list[Segment]] = {}
        self._inits: dict[str, bytes] = {}

    @classmethod
    def for_video(cls, ctx: JobContext, video_id: uuid.UUID | str) -> Publisher:
        """The publisher of a one-process transcode."""
        return cls(ctx.backends.storage, video_id, ctx.settings.storage.upload_concurrency)

    @classmethod
    def for_chunk(cls, ctx: JobContext, video_id: uuid.UUID | str, index: int) -> Publisher:
        """The publisher of chunk `index`: only chunk 0 is followed (module docstring)."""
        return cls(
            ctx.backends.storage,
            video_id,
            ctx.settings.storage.upload_concurrency,
            owns_tree=False,
            enabled=index == 0,
        )

    @property
    def follow(self) -> Follow | None:
        """What the pipeline runs beside ffmpeg (`media.progressive.Follow`)."""
        return self._follow if self.enabled else None

    def unpublished(self, files: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
        """`files` (key, path) less those already stored while ffmpeg ran."""
        return [(key, path) for key, path in files if key not in self.published]

    @contextlib.asynccontextmanager
    async def attempt(self) -> AsyncIterator[Publisher]:
        """One ffmpeg run: when it fails, what was published for it is removed
        (`discard`). Not when it is cancelled: the video was deleted (its files are
        swept) or another job took it over (and replaces the tree)."""
        try:
            yield self
        except Exception:
            await asyncio.shield(self.discard())
            raise

    async def discard(self) -> None:
        """Remove what this publisher stored and start afresh."""
        if self.written:
            try:
                if self.owns_tree:
                    await clear_transcoded(self.storage, self.video_id)
                else:
                    for key in sorted(self.written):
                        await self.storage.delete_prefix(key)
            except Exception as exc:
                log.warning(
                    "early playback of %s: could not remove its files: %s", self.video_id, exc
                )
        self.published.clear()
        self.written.clear()
        self.master_stored = False
        self._segments.clear()
        self._inits.clear()

    async def _follow(self, encoding: Encoding, done: asyncio.Event) -> frozenset[str]:
        while not done.is_set():
            try:
                await self.publish(encoding)
            except Exception as exc:
                # Early playback is a bonus: the transcode goes on, the end stores all.
                log.warning("early playback of %s: %s", self.video_id, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.poll_seconds)
        # The init segments and segments, as paths in ffmpeg's folder (`hls_key`'s).
        prefix = keys.hls_prefix(self.video_id) + "/"
        return frozenset(key.removeprefix(prefix) for key in self.published)

    async def publish(self, encoding: Encoding) -> None:
        """Store what ffmpeg finished since the last call, then the playlists naming it."""
        files: list[tuple[str, Path]] = []
        grown: dict[str, list[Segment]] = {}
        for folder in encoding.folders:
            where = encoding.out_dir / folder
            text = await asyncio.to_thread(_read_text, where / PLAYLIST)
            init_uri, segments = finished_segments(text)
            known = len(self._segments.get(folder, []))
            if init_uri is None or len(segments) <= known:
                continue
            if folder not in self._inits:
                self._inits[folder] = await asyncio.to_thread((where / init_uri).read_bytes)
                files.append((self._key(f"{folder}/{INIT}"), where / init_uri))
            files += [(self._key(f"{folder}/{s.uri}"), where / s.uri) for s in segments[known:]]
            grown[folder] = segments
        if not grown:
            return
        if self.owns_tree and not self.written:
            # What an earlier transcode stored goes before the first new file.
            await clear_transcoded(self.storage, self.video_id)
        self.written.update(key for key, _ in files)  # before: a failure removes them too
        await put_files(self.storage, files, self.concurrency, adopt=False)
        self.published.update(key for key, _ in files)
        for folder, segments in grown.items():
            text = event_playlist(segments, encoding.segment_seconds)
            await self._put_text(f"{folder}/{PLAYLIST}", text)
            self._segments[folder] = segments
        if not self.master_stored and all(self._segments.get(f) for f in encoding.folders):
            await self._put_text(MASTER, early_master(encoding, self._inits))
            self.master_stored = True
            log.info("early playback of %s: its master is stored", self.video_id)

    def _key(self, relative: str) -> str:
        return keys.hls_key(self.video_id, relative)

    async def _put_text(self, relative: str, text: str) -> None:
        key = self._key(relative)
        self.written.add(key)
        await put_text(self.storage, key, text)


async def put_text(storage: StorageBackend, key: str, text: str) -> None:
    """Store a playlist."""

    async def chunks() -> AsyncIterator[bytes]:
        yield text.encode()

    await storage.put_stream(key, chunks(), content_type(key))


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
