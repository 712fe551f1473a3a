"""Browser tests: a real `clipsync serve` on a free port, driven by headless Chromium.

`LiveServer` runs ClipSync exactly as an administrator would: it writes a config file,
runs `clipsync migrate`, then starts `clipsync serve` (Sanic's manager, its workers and
the job consumer) in a process group of its own, and kills that whole group on stop.

The fixtures below use Playwright's *sync* API, so browser tests are plain (non-async)
test functions. tests/conftest.py loads this module as a pytest plugin, so every test
can use the fixtures by name.

A module that needs other settings overrides `live_server_toml`::

    @pytest.fixture
    def live_server_toml() -> str:
        return '[auth]\\nregistration = "closed"\\n'

Chromium is Debian's (`apt-get install chromium`); Playwright's own browser downloads
are never used. A Chromium that cannot start fails the tests, it never skips them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Frame,
    Page,
    Playwright,
    Response,
    expect,
    sync_playwright,
)
from services import LOOPBACK, find_binary, free_port

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "LiveServer",
    "LiveServerError",
    "browser",
    "live_server",
    "live_server_toml",
    "page",
    "play_muted",
    "playwright",
]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
#: How long a Playwright action or assertion waits before it fails, in milliseconds.
DEFAULT_TIMEOUT_MS = 10_000

_LOG_TAIL_LINES = 40
_TRACEBACK_LINES = 30
_POLL_INTERVAL = 0.1


class LiveServerError(RuntimeError):
    """`clipsync migrate` failed, or `clipsync serve` did not start and answer in time."""


class LiveServer:
    """A throwaway ClipSync install in `workdir`, served on a free loopback port.

    The config sets the port, a data directory inside `workdir` and the cheapest bcrypt
    cost; `extra_toml` is appended to it, so it may add tables (`[auth]`, `[[category]]`)
    but must not repeat `[server]`, `[paths]` or `[plugins.auth_local]`.
    """

    def __init__(
        self,
        workdir: Path,
        extra_toml: str = "",
        *,
        startup_timeout: float = 90.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.workdir = workdir
        self.extra_toml = extra_toml
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port = free_port()
        self._setpriv = find_binary("setpriv", "util-linux")
        self._process: subprocess.Popen[bytes] | None = None

    # -- where things are ----------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.toml"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        """stdout and stderr of `migrate` and `serve` (appended across restarts)."""
        return self.workdir / "server.log"

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        """The pid of `clipsync serve`'s main process, which leads its process group."""
        if self._process is None:
            raise RuntimeError("the live server is not running")
        return self._process.pid

    def kill(self) -> None:
        """SIGKILL every process of `clipsync serve` at once, as a crash or the OOM killer."""
        os.killpg(self.pid, signal.SIGKILL)
        self.stop()  # reaps the dead group and forgets it

    # -- lifecycle -------------------------------------------------------------------------

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "[server]\n"
            f'host = "{LOOPBACK}"\n'
            f"port = {self.port}\n"
            "[paths]\n"
            f"data_dir = {_toml_string(self.data_dir)}\n"
            "[plugins.auth_local]\n"
            "bcrypt_rounds = 4\n" + (f"\n{self.extra_toml}\n" if self.extra_toml else "")
        )

    def start(self) -> Self:
        """Write the config (first time only), migrate, serve, and wait for /healthz."""
        if self._process is not None:
            raise RuntimeError("the live server is already running")
        if not self.config_path.exists():
            self.write_config()
        self._migrate()
        try:
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    self._command("serve", "--access-log"),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    env=self._environment(),
                    start_new_session=True,
                )
            self._wait_until_healthy(self._process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGINT to `clipsync serve`, then SIGKILL to whatever is left of its group.

        Harmless on a stopped server. Raises if a process of the group survives.
        """
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            # Seen with Sanic 25.12: a SIGINT in the first second or so after start-up
            # leaves the main process blocked in WorkerManager.wait_for_ack for good.
            with self.log_path.open("a") as log:
                log.write(
                    f"[LiveServer] clipsync serve did not exit within {self.stop_timeout:g}s "
                    "of SIGINT: killing its process group\n"
                )
        # The workers and the job consumer share the group; kill any that lingered.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 5
        while (left := _group_members(process.pid)) and time.monotonic() < deadline:
            time.sleep(_POLL_INTERVAL)
        if left:
            raise LiveServerError(f"processes of clipsync serve survived SIGKILL: {left}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LiveServer {state} {self.base_url} workdir={self.workdir}>"

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The end of the server's log, ready to append to a failure message.

        The first traceback in the log comes first: busy access logs would push it out.
        """
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as error:
            return f"\n(no server log: {error})"
        all_lines = text.splitlines()
        tail = "\n".join(all_lines[-lines:])
        report = f"\n--- end of the server log ({self.log_path}) ---\n{tail}"
        start = next((i for i, line in enumerate(all_lines) if "Traceback" in line), None)
        if start is not None and start < len(all_lines) - lines:
            first = "\n".join(all_lines[max(start - 1, 0) : start + _TRACEBACK_LINES])
            report = f"\n--- first traceback in the server log ---\n{first}{report}"
        return report

    # -- helpers ---------------------------------------------------------------------------

    def _command(self, *args: str) -> list[str]:
        # setpriv exec()s Python, which then dies with the test run even if pytest is
        # killed before its teardown (the parent-death signal goes to the main process).
        return [
            str(self._setpriv),
            "--pdeathsig",
            "KILL",
            "--",
            sys.executable,
            "-m",
            "clipsync",
            "--config",
            str(self.config_path),
            *args,
        ]

    def _environment(self) -> dict[str, str]:
        # CLIPSYNC_* variables override the config file: keep the developer's out.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _migrate(self) -> None:
        result = subprocess.run(
            self._command("migrate"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=self.workdir,
            env=self._environment(),
            timeout=self.startup_timeout,
            check=False,
        )
        with self.log_path.open("ab") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise LiveServerError(
                f"clipsync migrate exited with status {result.returncode}{self.log_tail()}"
            )

    def _wait_until_healthy(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        while True:
            status = process.poll()
            if status is not None:
                raise LiveServerError(
                    f"clipsync serve exited with status {status} while starting{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url("/healthz"), timeout=2) as answer:
                    if answer.status == 200:
                        return
                    last = f"HTTP {answer.status}"
            except urllib.error.HTTPError as error:
                last = f"HTTP {error.code}: {error.read()[:500]!r}"
            except OSError as error:
                last = str(error)
            if time.monotonic() > deadline:
                raise LiveServerError(
                    f"clipsync serve did not answer 200 on /healthz within "
                    f"{self.startup_timeout:g}s (last: {last}){self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)


def _toml_string(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ")".
        fields = text.rpartition(")")[2].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def live_server_toml() -> str:
    """Extra config for `live_server`; override this fixture to change settings."""
    return ""


@pytest.fixture
def live_server(tmp_path: Path, live_server_toml: str) -> Iterator[LiveServer]:
    """A fresh, migrated, running install with no accounts yet."""
    with LiveServer(tmp_path / "live", live_server_toml) as server:
        yield server


# Module scope, not session: Playwright's sync API keeps an event loop running in
# the main thread while it is open, which would stop the async tests of other modules.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium, shared by a test module; tests isolate themselves by context."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is not installed ({CHROMIUM} is missing): apt-get install chromium, "
            "or run `make test`, which installs everything the tests need",
            pytrace=False,
        )
    try:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
    except Exception as error:
        pytest.fail(
            f"Chromium ({CHROMIUM}) did not start. Install Debian's chromium "
            "(apt-get install chromium), or run `make test`, which installs everything "
            f"the tests need. Playwright said: {error}",
            pytrace=False,
        )
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A page in a fresh context (no cookies) whose relative URLs go to `live_server`.

    Any 5xx answer the server gives while the test runs fails it at teardown, with the
    server's log, even when the test itself did not look at that response.
    """
    context = browser.new_context(base_url=live_server.base_url)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    server_errors: list[str] = []

    def note_server_error(response: Response) -> None:
        if response.status >= 500:
            server_errors.append(f"{response.status} {response.request.method} {response.url}")

    context.on("response", note_server_error)
    try:
        yield context.new_page()
    finally:
        context.close()
    if server_errors:
        counted = Counter(server_errors)
        summary = "; ".join(f"{error} (x{n})" if n > 1 else error for error, n in counted.items())
        pytest.fail(
            f"the server answered with an error: {summary}{live_server.log_tail()}",
            pytrace=False,
        )


# --- shared by the browser tests ---------------------------------------------------


class Watcher:
    """Collects what the pages log and every 5xx the server answers, for any context."""

    def __init__(self) -> None:
        self.console: list[str] = []
        self.server_errors: list[str] = []

    def watch(self, page: Page) -> Page:
        def note(message: ConsoleMessage) -> None:
            self.console.append(f"[{message.type}] {message.text} ({page.url})")

        def note_response(response: Response) -> None:
            if response.status >= 500:
                self.server_errors.append(
                    f"{response.status} {response.request.method} {response.url}"
                )

        page.on("console", note)
        page.on("pageerror", lambda error: self.console.append(f"[pageerror] {error}"))
        page.context.on("response", note_response)
        return page


@contextlib.contextmanager
def reported(live_server: LiveServer, watcher: Watcher) -> Iterator[None]:
    """Adds the browsers' consoles and the server's log to a failure."""
    try:
        yield
    except (AssertionError, Error) as error:
        logged = "\n".join(watcher.console[-40:]) or "(nothing)"
        raise AssertionError(
            f"{error}\n--- browser console ---\n{logged}{live_server.log_tail()}"
        ) from error
    assert not watcher.server_errors, (
        f"the server answered with an error: {watcher.server_errors}{live_server.log_tail()}"
    )


def url_is(live_server: LiveServer, path: str) -> re.Pattern[str]:
    """Matches the page's URL at exactly `path`, with or without a query string."""
    return re.compile(re.escape(live_server.url(path)) + r"(\?.*)?$")


def set_up_admin(page: Page, live_server: LiveServer, email: str, password: str) -> None:
    """Create the first administrator through the set-up page; the page is then signed in."""
    page.goto("/")
    expect(page).to_have_url(url_is(live_server, "/setup"))
    setup = page.locator("form[action='/setup']")
    setup.locator("[name=email]").fill(email)
    setup.locator("[name=password]").fill(password)
    setup.locator("[name=password_confirm]").fill(password)
    setup.get_by_role("button", name="Create administrator").click()
    expect(page).to_have_url(url_is(live_server, "/"))


def sign_in(page: Page, live_server: LiveServer, email: str, password: str) -> None:
    page.goto("/login")
    form = page.locator("form[action='/login']")
    form.locator("[name=email]").fill(email)
    form.locator("[name=password]").fill(password)
    form.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(url_is(live_server, "/"))


def play_muted(page: Page | Frame, selector: str = "#player", timeout_ms: float = 20_000) -> None:
    """Start the <video> at `selector` muted, as a viewer's click on Play would.

    Waits for the video's metadata first: a play() called before hls.js has attached its
    MediaSource is rejected by that load ("The play() request was interrupted by a new
    load request"), which on a loaded machine happened now and then.
    """
    page.wait_for_function(
        "(s) => { const v = document.querySelector(s); return Boolean(v) && v.readyState >= 1; }",
        arg=selector,
        timeout=timeout_ms,
    )
    page.evaluate(
        "async (s) => { const v = document.querySelector(s); v.muted = true; await v.play(); }",
        selector,
    )
