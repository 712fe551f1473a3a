"""One upload traced through a real `clipsync serve`: from its request to its ffmpeg run.

The server worker and the job consumer are processes of their own, each exporting
over OTLP/HTTP to a receiver on loopback; the job carries the request's trace
(`traceparent`) beside its request id, so the consumer's spans land in the upload's
trace, under the request that queued the job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import LiveServer
from clips import Clips, clips_fixture  # noqa: F401  (the `clips` fixture)
from faults.processes import Api, fast_jobs_toml, running
from otlp_receiver import OtlpReceiver, ReceivedSpan

SERVER = 2  # SpanKind's values in OTLP's protobuf
CONSUMER = 5
CLIENT = 3


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running_receiver:
        yield running_receiver


def test_an_uploads_trace_runs_from_its_request_to_the_consumers_ffmpeg(
    tmp_path: Path, clips: Clips, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Export every 200 ms rather than every 5 s (the SDK reads it from the environment).
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    toml = fast_jobs_toml() + (
        f'[plugins.trace_otel]\nendpoint = "{receiver.endpoint}"\nservice_name = "clipsync-live"\n'
    )
    server = LiveServer(tmp_path / "site", toml)
    with running(server):
        api = Api(server)
        video_id = api.upload(clips("landscape"))
        registered = api.register(video_id)
        assert registered.status_code == 201, registered.text
        request_id = registered.headers["X-Request-ID"]
        api.wait_until_ready(video_id)
        api.close()

        def traced(spans: list[ReceivedSpan]) -> bool:
            return any(s.name == "ffmpeg.run" for s in spans) and any(
                s.name == "job.transcode_video" for s in spans
            )

        spans = receiver.wait_for("job and ffmpeg spans", traced)

    [request] = [s for s in spans if s.name == "POST /api/videos/register"]
    assert request.kind == SERVER
    assert request.attributes["clipsync.request_id"] == request_id
    assert request.resource["service.name"] == "clipsync-live"

    # The consumer's job: in the request's trace, under it, with its request id.
    [job] = [s for s in spans if s.name == "job.transcode_video"]
    assert job.kind == CONSUMER
    assert (job.trace_id, job.parent_id) == (request.trace_id, request.span_id)
    assert job.attributes["clipsync.request_id"] == request_id
    assert job.status == 0  # unset: it succeeded

    in_job = [s for s in spans if s.parent_id == job.span_id]
    [ffmpeg] = [s for s in in_job if s.name == "ffmpeg.run"]
    assert ffmpeg.attributes["process.executable.name"] == "ffmpeg"
    assert ffmpeg.attributes["process.exit.code"] == 0
    assert 3.5 < ffmpeg.attributes["clipsync.media.duration_seconds"] < 4.5
    assert {"UPDATE", "SELECT"} <= {s.name for s in in_job if s.kind == CLIENT}
    # The source fetched for ffmpeg, the renditions stored (local storage adopts files).
    assert any(s.name == "storage.open_local" for s in in_job)
    stored = [s for s in in_job if s.name in ("storage.adopt_file", "storage.put_file")]
    assert any(s.attributes["clipsync.storage.key"].endswith("/master.m3u8") for s in stored)
