"""Keeping the job consumer under `clipsync serve` running.

Sanic's manager (`app.manager.manage`) starts the consumer as a process of its own
and stops it with the server, but does not start it again when it dies: it only
marks the process FAILED (or COMPLETED). A thread in the main process watches for
that and asks the manager, through its monitor pipe, to restart the process, as
Sanic's own reloader does. A consumer that keeps dying right after it starts is
restarted less and less often, up to once every `MAX_BACKOFF` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sanic.worker.constants import ProcessState

log = logging.getLogger(__name__)

# How often the watcher looks (seconds).
WATCH_INTERVAL = 0.25
# A consumer that ran at least this long before it died is restarted at once.
STEADY_SECONDS = 30.0
MAX_BACKOFF = 30.0
# Dead, by the manager's last look, and not stopped by the manager itself (that is
# TERMINATED, while the server shuts down).
DEAD_STATES = (ProcessState.FAILED, ProcessState.COMPLETED)


class ConsumerSupervisor:
    """Restarts the processes of one managed worker (the consumer) when they die."""

    def __init__(self, manager: Any, worker: Any) -> None:
        self.manager = manager
        self.worker = worker
        self._stop = threading.Event()
        self._started: dict[str, float] = {}
        self._backoff: dict[str, float] = {}

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._watch, name="clipsync-supervisor", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _shutting_down(self) -> bool:
        # Set by the manager on SIGINT/SIGTERM before it stops its processes.
        return bool(getattr(self.manager, "_shutting_down", False))

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL):
            if self._shutting_down():
                return
            for process in list(self.worker.processes):
                self._started.setdefault(process.name, time.monotonic())
                if process.state in DEAD_STATES and not process.is_alive():
                    self._restart(process)

    def _restart(self, process: Any) -> None:
        name = process.name
        lived = time.monotonic() - self._started[name]
        wait = 0.0 if lived >= STEADY_SECONDS else self._backoff.get(name, 0.0)
        log.error(
            "the job consumer (pid %s) stopped with exit code %s after %.0f s: starting it again%s",
            process.pid,
            process.exitcode,
            lived,
            f" in {wait:.0f} s" if wait else "",
        )
        if wait and self._stop.wait(wait):
            return
        if self._shutting_down():
            return
        self._backoff[name] = min(MAX_BACKOFF, max(1.0, 2 * wait)) if lived < STEADY_SECONDS else 0
        self._started[name] = time.monotonic()
        # The manager's monitor loop restarts a process named in a message; a
        # durable process only once it has marked it dead (checked above).
        self.manager.monitor_publisher.send(name)
        # Give the monitor loop time to act before the next look.
        deadline = time.monotonic() + 5
        while process.state in DEAD_STATES and time.monotonic() < deadline:
            if self._stop.wait(WATCH_INTERVAL):
                return


def supervise(manager: Any, worker: Any) -> ConsumerSupervisor:
    """Start watching `worker`'s processes; restart each one that dies."""
    supervisor = ConsumerSupervisor(manager, worker)
    supervisor.start()
    return supervisor
