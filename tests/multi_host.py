"""A multi-host ClipSync on one machine: the layout of deploy/multi-host.md, for tests.

Each "host" is a folder of its own (its config.toml, its data directory, its working
directory) and its processes; the hosts share only PostgreSQL, Redis, an S3 server
and ClickHouse, as separate machines would. In front of the web hosts runs Debian's
nginx with the shipped deploy/nginx/multi-host.conf, its example addresses replaced
by this test's ports (`nginx_site`), unprivileged, from a temporary prefix.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from browser import LiveServer, LiveServerError
from services import (
    LOOPBACK,
    ClickHouseServer,
    PostgresServer,
    RedisServer,
    S3Server,
    Server,
    find_binary,
    free_port,
)

REPOSITORY = Path(__file__).resolve().parent.parent
SHIPPED_SITE = REPOSITORY / "deploy" / "nginx" / "multi-host.conf"
MiB = 1024 * 1024
PATIENCE = 60.0


def nginx_site(web_ports: list[int], listen_port: int, access_log: Path) -> str:
    """The shipped nginx site with this machine's addresses for its example ones."""
    text = SHIPPED_SITE.read_text()
    examples = re.findall(r"(?m)^ *server web\d+:8000( [^;]*)?;\n", text)
    assert len(examples) >= 2, "deploy/nginx/multi-host.conf lists no example web hosts"
    options = examples[0]
    servers = "".join(f"    server {LOOPBACK}:{port}{options};\n" for port in web_ports)
    text = re.sub(r"(?m)^ *server web1:8000[^;]*;\n", lambda _: servers, text, count=1)
    text = re.sub(r"(?m)^ *server web\d+:8000[^;]*;\n", "", text)
    text = text.replace("listen 80;", f"listen {LOOPBACK}:{listen_port};")
    return text.replace("/var/log/nginx/clipsync.access.log", str(access_log))


class NginxServer(Server):
    """Debian's nginx, run by the current user from a prefix of its own."""

    name = "nginx"

    def __init__(self, web_ports: list[int]) -> None:
        super().__init__()
        self._binary = find_binary("nginx", "nginx-light")
        self.port = free_port()
        self.web_ports = web_ports

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    def upstreams(self, pattern: str) -> list[int]:
        """The web host's port that answered each logged request matching `pattern`."""
        found = []
        for line in self.access_log.read_text().splitlines():
            if re.search(pattern, line):
                found.append(int(line.rpartition("upstream=")[2].rpartition(":")[2]))
        return found

    def _prepare(self) -> None:
        temp = self.workdir / "temp"
        temp.mkdir()
        (self.workdir / "site.conf").write_text(
            nginx_site(self.web_ports, self.port, self.access_log)
        )
        # As root, nginx's workers would become `nobody`, who cannot write this prefix.
        user = "user root;\n" if os.geteuid() == 0 else ""
        paths = "".join(
            f"    {kind}_temp_path {temp / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.workdir / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {self.workdir / 'nginx.pid'};\n"
            f"error_log {self.workdir / 'error.log'} info;\n"
            "events { worker_connections 512; }\n"
            f"http {{\n{paths}    include {self.workdir / 'site.conf'};\n}}\n"
        )

    def _command(self) -> list[str]:
        conf = self.workdir / "nginx.conf"
        return [str(self._binary), "-p", str(self.workdir), "-e", "stderr", "-c", str(conf)]

    def _is_ready(self) -> bool:
        import socket

        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1):
                return True
        except OSError:
            return False


class Worker:
    """`clipsync worker` of one worker host, in a process group of its own."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._setpriv = find_binary("setpriv", "util-linux")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "worker.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")}
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    *(str(self._setpriv), "--pdeathsig", "KILL", "--", sys.executable),
                    *("-m", "clipsync", "--config", str(self.workdir / "config.toml"), "worker"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**env, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + PATIENCE
        while "job consumer started" not in self.log():
            assert self._process is not None
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise LiveServerError(f"clipsync worker did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class Cluster:
    """Two web hosts behind nginx, two worker hosts, and what they share."""

    web: list[LiveServer]
    workers: list[Worker]
    nginx: NginxServer
    redis: RedisServer
    database: str
    folders: dict[str, Path] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.nginx.base_url

    def logs(self) -> str:
        """Every host's log tail, for a failure message."""
        parts = [server.log_tail(20) for server in self.web]
        parts += [f"\n--- {w.workdir.name} ---\n{w.log()[-2000:]}" for w in self.workers]
        return "".join(parts)


def host_config(
    folder: Path,
    *,
    port: int,
    nginx_port: int,
    web_ports: list[int],
    database: str,
    redis: RedisServer,
    s3: S3Server,
    bucket: str,
    clickhouse: ClickHouseServer,
    analytics_database: str,
    jwt_secret: str,
) -> str:
    """One host's config.toml: everything shared is named, nothing else is."""
    allowed = ", ".join(f'"{LOOPBACK}:{p}"' for p in [nginx_port, *web_ports])
    return f"""
[server]
host = "{LOOPBACK}"
port = {port}
# nginx adds one X-Forwarded-For entry (deploy/nginx/multi-host.conf).
proxies_count = 1
public_url = "http://{LOOPBACK}:{nginx_port}"
allowed_hosts = [{allowed}]

[paths]
data_dir = "{folder / "data"}"

[database]
url = "{database}"

[queue]
backend = "redis"
redis_url = "{redis.url}"
run_in_server = false
heartbeat_seconds = 1
lease_expiry_seconds = 5
reaper_interval_seconds = 2

[cache]
backend = "redis"

[auth]
max_failed_logins = 3
login_delay_seconds = 60

[quotas]
registrations_per_address_per_hour = 0

[storage]
backend = "s3"
# Segments through the app (and nginx), not presigned from the store.
playback = "proxy"

[transcoder]
backend = "cpu"
max_attempts = 2
retry_delay_seconds = 1
ladder = [{{ height = 144, bitrate = 150 }}]

[analytics]
backend = "clickhouse"

[delivery]
signing_key = "{jwt_secret}-delivery"

[plugins.auth_local]
bcrypt_rounds = 4
jwt_secret = "{jwt_secret}"

[plugins.storage_s3]
endpoint = "{s3.endpoint}"
secure = false
region = "{s3.region}"
access_key = "{s3.access_key}"
secret_key = "{s3.secret_key}"
bucket = "{bucket}"
part_size = {5 * MiB}

[plugins.analytics_clickhouse]
host = "{clickhouse.host}"
port = {clickhouse.port}
database = "{analytics_database}"
flush_interval = 0.2
"""


def start_migration(folder: Path) -> subprocess.Popen[str]:
    """`clipsync migrate` for the host in `folder`, started (not waited for)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")}
    return subprocess.Popen(
        [sys.executable, "-m", "clipsync", "--config", str(folder / "config.toml"), "migrate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=folder,
        env=env,
    )


@contextlib.contextmanager
def running_cluster(
    root: Path,
    postgres: PostgresServer,
    s3: S3Server,
    clickhouse: ClickHouseServer,
) -> Iterator[Cluster]:
    """Start the whole layout; stop every process of it on exit."""
    suffix = uuid.uuid4().hex[:10]
    database = postgres.create_database(f"multihost_{suffix}")
    web_names, worker_names = ["web1", "web2"], ["worker1", "worker2"]
    folders = {name: root / name for name in web_names + worker_names}
    web = [LiveServer(folders[name], startup_timeout=PATIENCE) for name in web_names]
    web_ports = [server.port for server in web]
    nginx = NginxServer(web_ports)
    # A key with no setting (two_factor.key) is copied to every host, as the refusal
    # to start with one of a host's own says (deploy/multi-host.md).
    two_factor_key = secrets.token_urlsafe(32) + "\n"
    with RedisServer() as redis:
        shared = {
            "nginx_port": nginx.port,
            "web_ports": web_ports,
            "database": database,
            "redis": redis,
            "s3": s3,
            "bucket": f"multihost-{suffix}",
            "clickhouse": clickhouse,
            "analytics_database": f"multihost_{suffix}",
            "jwt_secret": secrets.token_urlsafe(48),
        }
        for name, folder in folders.items():
            (folder / "data" / "secrets").mkdir(parents=True, mode=0o700)
            (folder / "data" / "secrets" / "two_factor.key").write_text(two_factor_key)
            port = web[web_names.index(name)].port if name in web_names else free_port()
            (folder / "config.toml").write_text(host_config(folder, port=port, **shared))
        workers = [Worker(folders[name]) for name in worker_names]
        try:
            # Both web hosts migrate at once: one migrates, the other waits and finds
            # nothing to do. The workers come first: /healthz wants a consumer alive.
            migrations = [start_migration(folders[name]) for name in web_names]
            for migration in migrations:
                output = migration.communicate(timeout=PATIENCE * 2)[0]
                assert migration.returncode == 0, f"clipsync migrate failed: {output}"
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.wait_until_ready()
            failures: list[BaseException] = []

            def start(server: LiveServer) -> None:
                try:
                    server.start()
                except BaseException as exc:
                    failures.append(exc)

            threads = [threading.Thread(target=start, args=(server,)) for server in web]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if failures:
                raise failures[0]
            with nginx:
                yield Cluster(web, workers, nginx, redis, database, folders)
        finally:
            for worker in workers:
                worker.stop()
            for server in web:
                server.stop()
