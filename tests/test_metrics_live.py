"""A real `clipsync serve`, two Sanic workers and its job consumer: one scrape sums them.

After a real upload, transcode and HLS playback, `/metrics` is parsed with
prometheus_client's own parser. Requests answered by either worker and the transcode
timed in the consumer must all be in the one scrape; each process's own files in the
run's metrics folder show who counted what. A consumer that dies keeps its counts in
the sum, while its live gauges (jobs running) are dropped at the next scrape.
"""

from __future__ import annotations

import os
import signal
from collections import defaultdict
from pathlib import Path

import httpx
from browser import LiveServer
from clients import play_with_ffmpeg
from clips import Clips, clips_fixture  # noqa: F401  (the `clips` fixture)
from faults.processes import (
    Api,
    Worker,
    fast_jobs_toml,
    in_server_consumers,
    one_consumer,
    running,
    wait_for,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

# Fresh connections, so the kernel spreads them over both workers.
PROBES = 40


def scraped(server: LiveServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = httpx.get(server.url("/metrics"), timeout=30)
    assert answer.status_code == 200, answer.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def by_process(folder: Path, name: str, **labels: str) -> dict[int, float]:
    """The value of one sample in each process's own files (pid -> value)."""
    files: dict[int, list[str]] = defaultdict(list)
    for path in folder.glob("*.db"):
        files[int(path.stem.rsplit("_", 1)[1])].append(str(path))
    found = {}
    for pid, paths in files.items():
        for family in MultiProcessCollector.merge(paths, accumulate=True):
            for s in family.samples:
                if s.name == name and s.labels == labels and s.value:
                    found[pid] = s.value
    return found


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of `name` over the series whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_one_scrape_sums_both_workers_and_the_consumer(tmp_path: Path, clips: Clips) -> None:
    server = LiveServer(tmp_path / "site", fast_jobs_toml() + "[metrics]\nenabled = true\n")
    server.write_config()
    config = server.config_path.read_text().replace("[server]\n", "[server]\nworkers = 2\n", 1)
    server.config_path.write_text(config)
    clip = clips("landscape")
    with running(server):
        folder = server.data_dir / "metrics" / f"serve-{server.pid}"
        api = Api(server)
        consumer = one_consumer(server)
        video_id = api.upload_and_register(clip)
        api.wait_until_ready(video_id)
        token = api.http.headers["Authorization"].removeprefix("Bearer ")
        played = play_with_ffmpeg(server.url(f"/hls/{video_id}/master.m3u8"), token)
        assert played.returncode == 0, played.stderr
        for _ in range(PROBES):
            with httpx.Client(base_url=server.base_url) as fresh:
                assert fresh.get("/healthz/live").status_code == 200
        api.close()
        samples = scraped(server)

        probe = {"method": "GET", "route": "/healthz/live", "status": "200"}
        # Counted by whichever worker answered, summed in the scrape.
        assert samples[("clipsync_http_requests_total", frozenset(probe.items()))] == PROBES
        workers = by_process(folder, "clipsync_http_requests_total", **probe)
        assert len(workers) == 2 and sum(workers.values()) == PROBES, workers
        assert consumer not in workers

        # Timed in the consumer, a process that never answers a request.
        assert total(samples, "clipsync_transcode_duration_seconds_count") == 1
        assert set(
            by_process(folder, "clipsync_transcode_media_seconds_total", encoder="libx264")
        ) == {consumer}
        assert 3.5 < total(samples, "clipsync_transcode_media_seconds_total") < 4.5
        assert total(samples, "clipsync_transcode_realtime_factor_count") == 1
        assert total(samples, "clipsync_transcode_rendition_seconds_total", rendition="144p") > 0
        assert total(samples, "clipsync_jobs_queued_total", task="transcode_video") >= 1
        assert total(samples, "clipsync_jobs_running", task="transcode_video") == 0
        assert total(samples, "clipsync_jobs_failed_total") == 0

        size = clip.stat().st_size
        assert total(samples, "clipsync_uploads_total") == 1
        assert total(samples, "clipsync_upload_bytes_total") == size
        assert total(samples, "clipsync_hls_segments_served_total", delivery="app") >= 2
        assert total(samples, "clipsync_hls_segment_bytes_total") > 0
        assert total(samples, "clipsync_storage_bytes", kind="sources") == size
        assert total(samples, "clipsync_storage_bytes", kind="renditions") > 0
        assert total(samples, "clipsync_videos", status="READY") == 1

        # A consumer that dies: its live gauges leave the sum, its counters stay.
        assert (folder / f"gauge_livesum_{consumer}.db").exists()
        os.kill(consumer, signal.SIGKILL)
        wait_for(
            "a new consumer", lambda: [p for p in in_server_consumers(server) if p != consumer]
        )
        samples = scraped(server)
        assert not (folder / f"gauge_livesum_{consumer}.db").exists()
        assert total(samples, "clipsync_transcode_duration_seconds_count") == 1


def test_a_clipsync_worker_on_the_same_machine_is_in_the_scrape(
    tmp_path: Path, clips: Clips
) -> None:
    toml = fast_jobs_toml(queue="run_in_server = false") + "[metrics]\nenabled = true\n"
    server = LiveServer(tmp_path / "site", toml)
    worker = Worker(server)
    server.write_config()
    worker.start()
    assert worker.process is not None
    try:
        with running(server):
            api = Api(server)
            video_id = api.upload_and_register(clips("landscape"))
            api.wait_until_ready(video_id)
            api.close()
            samples = scraped(server)
            assert total(samples, "clipsync_transcode_duration_seconds_count") == 1
            own = server.data_dir / "metrics" / f"worker-{worker.process.pid}"
            assert by_process(own, "clipsync_transcode_media_seconds_total", encoder="libx264")
            worker.stop()
            # A worker that stopped is left out (its folder goes when a run starts).
            assert total(scraped(server), "clipsync_transcode_duration_seconds_count") == 0
    finally:
        worker.stop()
