"""Debian's nginx with a site of our choosing, run unprivileged from a prefix of its own.

`front_site` is the shipped deploy/nginx/clipsync-front.conf with this machine's
ports and paths for its example ones; `file_site` serves one folder directly (the
benchmark's "bare nginx"). Used by tests/test_nginx_front.py and bench/hls.py.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from services import LOOPBACK, Server, find_binary, free_port

REPOSITORY = Path(__file__).resolve().parent.parent
SHIPPED_FRONT = REPOSITORY / "deploy" / "nginx" / "clipsync-front.conf"
# The example values of the shipped file, each replaced exactly once.
EXAMPLE_UPSTREAM = "server 127.0.0.1:8000;"
EXAMPLE_LISTEN = "listen 80;"
EXAMPLE_MEDIA = "alias /var/lib/clipsync/data/media/;"


def front_site(app_port: int, listen_port: int, media_root: Path) -> str:
    """The shipped front with this machine's app port, listening port and media root."""
    text = SHIPPED_FRONT.read_text()
    for example, ours in (
        (EXAMPLE_UPSTREAM, f"server {LOOPBACK}:{app_port};"),
        (EXAMPLE_LISTEN, f"listen {LOOPBACK}:{listen_port};"),
        (EXAMPLE_MEDIA, f"alias {media_root}/;"),
    ):
        assert text.count(example) == 1, f"{SHIPPED_FRONT} no longer has {example!r} once"
        text = text.replace(example, ours)
    return text


def file_site(listen_port: int, root: Path) -> str:
    """nginx serving the files under `root` as they are, with sendfile."""
    return (
        f"server {{\n    listen {LOOPBACK}:{listen_port};\n    root {root};\n"
        "    sendfile on;\n    tcp_nopush on;\n}\n"
    )


class NginxServer(Server):
    """Debian's nginx, run by the current user from a prefix of its own.

    `site` is its http-context configuration, listening on `port` (chosen first:
    `free_port()`); `access_log off`, as a benchmark wants.
    """

    name = "nginx"

    def __init__(self, site: str, port: int | None = None, workers: int = 1) -> None:
        super().__init__()
        self._binary = find_binary("nginx", "nginx-light")
        self.port = port or free_port()
        self.site = site
        self.workers = workers

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _prepare(self) -> None:
        temp = self.workdir / "temp"
        temp.mkdir()
        (self.workdir / "site.conf").write_text(self.site)
        # As root, nginx's workers would become `nobody`, who cannot read this prefix.
        user = "user root;\n" if os.geteuid() == 0 else ""
        paths = "".join(
            f"    {kind}_temp_path {temp / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.workdir / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes {self.workers};\n"
            f"pid {self.workdir / 'nginx.pid'};\n"
            f"error_log {self.workdir / 'error.log'} warn;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n{paths}    access_log off;\n"
            f"    include {self.workdir / 'site.conf'};\n}}\n"
        )

    def _command(self) -> list[str]:
        conf = self.workdir / "nginx.conf"
        return [str(self._binary), "-p", str(self.workdir), "-e", "stderr", "-c", str(conf)]

    def _is_ready(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1):
                return True
        except OSError:
            return False
