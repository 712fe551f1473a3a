"""The dependency audit (`make audit`, scripts/audit_deps.py) fails on a known-vulnerable
version, and never passes a package it could not check.

pip-audit runs for real, on a throwaway requirements file (nothing is installed). Its
advisory service is a small OSV-compatible server on loopback (`-s osv --osv-url`)
that holds one real advisory, so these tests answer the same wherever they run; the
public services are not reachable from every machine that runs the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from services import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "audit_deps.py"

# CVE-2019-10906, as OSV publishes it (trimmed to what pip-audit reads).
JINJA2_SANDBOX_ESCAPE = {
    "schema_version": "1.4.0",
    "id": "PYSEC-2019-217",
    "aliases": ["CVE-2019-10906", "GHSA-462w-v97r-4m45"],
    "summary": "In Pallets Jinja before 2.10.1, str.format_map allows a sandbox escape.",
    "published": "2019-04-07T00:29:00Z",
    "affected": [
        {
            "package": {"name": "jinja2", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.10.1"}]}],
        }
    ],
}


class Advisories(BaseHTTPRequestHandler):
    """POST /v1/query as OSV answers it: jinja2 below 2.10.1 has the advisory above."""

    def do_POST(self) -> None:
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        package, version = query["package"]["name"], query["version"]
        vulnerable = package == "jinja2" and version in ("2.10", "2.9.6")
        body = json.dumps({"vulns": [JINJA2_SANDBOX_ESCAPE]} if vulnerable else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def osv_url() -> Iterator[str]:
    server = ThreadingHTTPServer((LOOPBACK, free_port()), Advisories)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_port}/v1/query"
    server.shutdown()
    server.server_close()


def audit(
    tmp_path: Path, pins: str, osv_url: str, *options: str
) -> subprocess.CompletedProcess[str]:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(pins)
    # The Python audit only: npm's is the same logic over `npm audit --json`.
    command = [sys.executable, str(SCRIPT), "--no-npm", *options, "--"]
    command += ["-r", str(requirements), "--no-deps", "--disable-pip"]
    command += ["-s", "osv", "--osv-url", osv_url, "--cache-dir", str(tmp_path / "cache")]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_a_known_vulnerable_version_fails_the_audit_with_its_id_and_fix(
    tmp_path: Path, osv_url: str
) -> None:
    done = audit(tmp_path, "jinja2==2.10\nmarkupsafe==3.0.3\n", osv_url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "KNOWN VULNERABILITIES in the Python packages:" in done.stdout
    assert "jinja2 2.10: PYSEC-2019-217, CVE-2019-10906, GHSA-462w-v97r-4m45" in done.stdout
    assert "(fixed in 2.10.1)" in done.stdout
    # Being allowed to miss the service does not let a vulnerability through.
    relaxed = audit(tmp_path, "jinja2==2.10\n", osv_url, "--unreachable=warn")
    assert relaxed.returncode == 1, relaxed.stdout + relaxed.stderr


def test_versions_without_advisories_pass_the_audit(tmp_path: Path, osv_url: str) -> None:
    done = audit(tmp_path, "jinja2==3.1.6\nmarkupsafe==3.0.3\n", osv_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Python packages: no known vulnerabilities" in done.stdout


def test_an_unreachable_advisory_service_is_not_a_pass(tmp_path: Path) -> None:
    nobody = f"http://{LOOPBACK}:{free_port()}/v1/query"
    done = audit(tmp_path, "jinja2==2.10\n", nobody)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NOT AUDITED" in done.stdout
    assert "no known vulnerabilities" not in done.stdout
    # Told to only warn, it still says so.
    warned = audit(tmp_path, "jinja2==2.10\n", nobody, "--unreachable=warn")
    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert "NOT AUDITED" in warned.stdout
