"""Throwaway real Redis, PostgreSQL and ClickHouse servers for the test suite.

The project's tests talk to real services, never fakes, and a service that cannot be
started fails the run instead of skipping it. Each class here starts a private server
on free loopback ports in a temporary directory of its own, waits until it really
answers, and removes every trace of it on ``stop()``. Tests therefore never touch, nor
depend on, the system-wide instances that Debian's packages may run on default ports.

Typical use from a session fixture::

    @pytest.fixture(scope="session")
    def redis_server() -> Iterator[RedisServer]:
        with RedisServer() as server:
            yield server

A server cannot outlive the process that started it: it runs in a process group of
its own, which ``stop()`` kills as a whole, and it is started with a parent-death
signal, so it is killed even when pytest itself is killed before its teardown runs.
That signal follows the *thread* that started the server, so start servers from the
main thread, as pytest fixtures do.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

__all__ = [
    "LOOPBACK",
    "ClickHouseServer",
    "PostgresServer",
    "RadosGwServer",
    "RedisServer",
    "Server",
    "ServiceUnavailable",
    "find_binary",
    "free_port",
    "free_ports",
]

LOOPBACK = "127.0.0.1"

# Ports are drawn from here rather than from the kernel's ephemeral range: a client
# that keeps reconnecting to a stopped server on an ephemeral port can be handed that
# very port as its own source port (TCP "self-connect"), and the server could then no
# longer be restarted on it.
_LOWEST_PORT = 10000
_LOG_TAIL_LINES = 40
_POLL_INTERVAL = 0.05


class ServiceUnavailable(RuntimeError):
    """A server's binary is missing, or the server did not start and answer in time."""


def _missing(binary: str, package: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"{binary} not found: apt-get install {package}, or run "
        "scripts/install-deps.sh test (as root), which installs everything the tests need"
    )


def find_binary(name: str, package: str) -> Path:
    """Locate ``name`` on PATH, plus the sbin directories a non-root PATH usually lacks.

    Debian puts ``clickhouse-server`` in /usr/sbin, which only root's PATH contains.
    """
    search_path = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=search_path)
    if found is None:
        raise _missing(name, package)
    return Path(found)


def _ephemeral_port_range() -> range:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except OSError:  # not Linux: assume IANA's dynamic range, which BSD and macOS use
        low, high = 49152, 65535
    return range(low, high + 1)


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct loopback TCP ports that nothing is listening on.

    The probe sockets are held together until all are found, so the ports differ from
    each other. They are closed before returning, so another process could still take
    one in between; the server's start then fails with "address in use" in its log.
    """
    ephemeral = _ephemeral_port_range()
    candidates = [port for port in range(_LOWEST_PORT, 65536) if port not in ephemeral]
    random.shuffle(candidates)
    ports: list[int] = []
    with contextlib.ExitStack() as stack:
        for port in candidates:
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                continue
            ports.append(port)
            if len(ports) == count:
                return ports
    raise ServiceUnavailable(f"could not find {count} free TCP ports on {LOOPBACK}")


def free_port() -> int:
    """Return one loopback TCP port that nothing is listening on (see ``free_ports``)."""
    return free_ports(1)[0]


class Server(ABC):
    """One private server process, its temporary directory and its ports.

    Ports are chosen once, at construction, and kept for the object's life, so clients
    can be configured before ``start()`` and a restarted server is found where it was.
    """

    #: Used in messages and in the temporary directory's name.
    name: ClassVar[str]
    #: The signal that asks the server for a prompt, clean shutdown.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    host: ClassVar[str] = LOOPBACK

    def __init__(self, *, startup_timeout: float = 30.0, stop_timeout: float = 10.0) -> None:
        """Check that the server can run here; nothing is started until ``start()``.

        :param startup_timeout: seconds to wait for the server to answer after launch.
        :param stop_timeout: seconds to wait for a clean shutdown before SIGKILL.
        """
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._setpriv = find_binary("setpriv", "util-linux")
        #: The OS user to run the server as, when it must not be the current one.
        self._user: str | None = None
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- what a concrete server provides ------------------------------------------------

    @abstractmethod
    def _command(self) -> list[str]:
        """The command line that runs the server in the foreground."""

    @abstractmethod
    def _is_ready(self) -> bool:
        """Whether the server answers requests yet; must not raise while it is starting."""

    @abstractmethod
    def _prepare(self) -> None:
        """Lay out a fresh working directory (config files, a data directory) before launch."""

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        """The server's temporary directory, holding its data, config and log."""
        if self._workdir is None:
            raise RuntimeError(f"{self.name} has no working directory: call start() first")
        return self._workdir

    @property
    def log_path(self) -> Path:
        """The file that collects the server's stdout and stderr (appended across restarts)."""
        return self.workdir / "server.log"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Launch the server and block until it answers.

        After ``stop(keep_data=True)`` this resumes on the same data directory and ports.
        On failure everything is cleaned up and ``ServiceUnavailable`` is raised with the
        tail of the server's log.
        """
        if self._process is not None:
            raise RuntimeError(f"{self.name} is already running")
        try:
            if self._workdir is None:
                self._workdir = Path(tempfile.mkdtemp(prefix=f"clipsync-{self.name}-"))
                if self._user is not None:
                    user = pwd.getpwnam(self._user)
                    os.chown(self._workdir, user.pw_uid, user.pw_gid)
                self._prepare()
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    self._as_user(self._command()),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._workdir,
                    process_group=0,
                )
            self._wait_until_ready(self._process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, *, keep_data: bool = False) -> None:
        """Shut the server down and, unless ``keep_data``, delete its directory.

        The stop signal goes to the server itself, which knows how to shut down its
        helpers; if it has not exited after ``stop_timeout`` seconds, or any process of
        its group is left, the whole group is killed. Calling this on a stopped server
        is harmless.
        """
        process, self._process = self._process, None
        if process is not None:
            self._terminate(process)
        if not keep_data and self._workdir is not None:
            shutil.rmtree(self._workdir)
            self._workdir = None

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
        return f"<{type(self).__name__} {state} workdir={self._workdir}>"

    # -- helpers ---------------------------------------------------------------------------

    def _as_user(self, command: list[str]) -> list[str]:
        """Wrap ``command`` so it dies with this process and runs as ``self._user``.

        setpriv exec()s the command, so the server keeps setpriv's pid and process group.
        """
        wrapper = [str(self._setpriv), "--pdeathsig", "KILL"]
        if self._user is not None:
            wrapper += [f"--reuid={self._user}", f"--regid={self._user}", "--init-groups"]
        return [*wrapper, "--", *command]

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            status = process.poll()
            if status is not None:
                raise ServiceUnavailable(
                    f"{self.name} exited with status {status} while starting{self._log_tail()}"
                )
            if self._is_ready():
                return
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"{self.name} did not answer within {self.startup_timeout:g}s{self._log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(self.stop_signal)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(self.stop_timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError as error:
            return f"\n(no log: {error})"
        tail = "\n".join(lines[-_LOG_TAIL_LINES:])
        return f"\n--- end of {self.name}'s log ---\n{tail}"


class RedisServer(Server):
    """A Redis that keeps everything in memory and never writes to disk."""

    name = "redis-server"

    def __init__(self, *, startup_timeout: float = 30.0, stop_timeout: float = 10.0) -> None:
        super().__init__(startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self._binary = find_binary("redis-server", "redis-server")
        self.port = free_port()

    @property
    def url(self) -> str:
        """A URL for ``redis.Redis.from_url``, on database 0."""
        return f"redis://{self.host}:{self.port}/0"

    def _prepare(self) -> None:
        """Nothing to lay out: Redis is configured entirely on its command line."""

    def _command(self) -> list[str]:
        return [
            str(self._binary),
            *("--port", str(self.port)),
            *("--bind", self.host),
            *("--save", ""),
            *("--appendonly", "no"),
            *("--daemonize", "no"),
            *("--dir", str(self.workdir)),
        ]

    def _is_ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False


def _postgres_bindir() -> Path:
    """The bin directory of the newest PostgreSQL installed.

    Debian installs each major version side by side under /usr/lib/postgresql and keeps
    initdb and postgres off PATH; elsewhere (e.g. Homebrew) they are on PATH.
    """
    installed = [initdb.parent for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if installed:
        return max(installed, key=lambda bindir: _version_key(bindir.parent.name))
    on_path = shutil.which("initdb")
    if on_path is None:
        raise _missing("initdb", "postgresql")
    return Path(on_path).parent


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


class PostgresServer(Server):
    """A PostgreSQL cluster tuned for speed over durability, with trust authentication.

    PostgreSQL refuses to run as root, so under root initdb and the server run as the
    ``postgres`` OS user that Debian's package creates; otherwise as the current user.
    Every connection authenticates as the database superuser ``postgres``.
    """

    name = "postgres"
    # SIGTERM is PostgreSQL's "smart" shutdown, which waits for every client to
    # disconnect; SIGINT is the "fast" one, which ends sessions and exits at once.
    stop_signal = signal.SIGINT

    superuser: ClassVar[str] = "postgres"

    def __init__(self, *, startup_timeout: float = 30.0, stop_timeout: float = 10.0) -> None:
        super().__init__(startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self.bindir = _postgres_bindir()
        if os.geteuid() == 0:
            self._user = "postgres"
            try:
                pwd.getpwnam(self._user)
            except KeyError:
                raise ServiceUnavailable(
                    "PostgreSQL cannot run as root and there is no 'postgres' OS user: "
                    "apt-get install postgresql, which creates it"
                ) from None
        self.port = free_port()

    @property
    def datadir(self) -> Path:
        """The cluster's data directory."""
        return self.workdir / "data"

    def dsn(self, database: str = "postgres") -> str:
        """A ``postgres://`` URL for ``database``, as asyncpg and Tortoise ORM take it."""
        return f"postgres://{self.superuser}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database called ``name`` and return its DSN."""
        result = subprocess.run(
            [str(self.bindir / "createdb"), *self._client_args(), name],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"createdb {name!r} failed: {result.stderr.strip()}")
        return self.dsn(name)

    def _client_args(self) -> list[str]:
        return ["--host", self.host, "--port", str(self.port), "--username", self.superuser]

    def _prepare(self) -> None:
        initdb = [
            str(self.bindir / "initdb"),
            *("--pgdata", str(self.datadir)),
            *("--username", self.superuser),
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",  # the C locale: the same sort order on every machine
            "--no-sync",
            "--no-instructions",
        ]
        with self.log_path.open("ab") as log:
            try:
                result = subprocess.run(
                    self._as_user(initdb),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    timeout=self.startup_timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as error:
                raise ServiceUnavailable(
                    f"initdb did not finish within {self.startup_timeout:g}s{self._log_tail()}"
                ) from error
        if result.returncode != 0:
            raise ServiceUnavailable(
                f"initdb exited with status {result.returncode}{self._log_tail()}"
            )

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": self.host,
            "unix_socket_directories": str(self.workdir),
            # Throwaway data: never wait for the disk.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        return [
            str(self.bindir / "postgres"),
            "-D",
            str(self.datadir),
            "-p",
            str(self.port),
            *options,
        ]

    def _is_ready(self) -> bool:
        result = subprocess.run(
            [str(self.bindir / "pg_isready"), "--quiet", *self._client_args(), "--timeout=1"],
            stdin=subprocess.DEVNULL,
            check=False,
        )
        return result.returncode == 0


_CLICKHOUSE_USERS_CONFIG = Path("/etc/clickhouse-server/users.xml")

_CLICKHOUSE_CONFIG = """\
<?xml version="1.0"?>
<yandex>
    <!-- Log to the console, which the harness collects into server.log. -->
    <logger>
        <level>information</level>
        <console>1</console>
    </logger>
    <listen_host>{host}</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <!-- No interserver_http_port: without replication nothing needs it. -->
    <path>{workdir}/data/</path>
    <tmp_path>{workdir}/tmp/</tmp_path>
    <user_files_path>{workdir}/user_files/</user_files_path>
    <format_schema_path>{workdir}/format_schemas/</format_schema_path>
    <users_config>{users_config}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <!-- The same DateTime rendering whatever the machine's time zone. -->
    <timezone>UTC</timezone>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
</yandex>
"""


class ClickHouseServer(Server):
    """A ClickHouse (Debian's 18.16 build) with the packaged users: ``default``, no password.

    ``port`` is the native protocol port (for ``clickhouse_driver.Client``), ``http_port``
    the HTTP interface. ``stop(keep_data=True)`` then ``start()`` restarts it on the same
    data and ports, for tests of how the application rides out a ClickHouse outage.
    """

    name = "clickhouse-server"

    def __init__(self, *, startup_timeout: float = 30.0, stop_timeout: float = 10.0) -> None:
        super().__init__(startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self._binary = find_binary("clickhouse-server", "clickhouse-server")
        if not _CLICKHOUSE_USERS_CONFIG.is_file():
            raise _missing(str(_CLICKHOUSE_USERS_CONFIG), "clickhouse-server")
        self.port, self.http_port = free_ports(2)

    @property
    def config_path(self) -> Path:
        """The server's configuration file, written into its working directory."""
        return self.workdir / "config.xml"

    def _prepare(self) -> None:
        self.config_path.write_text(
            _CLICKHOUSE_CONFIG.format(
                host=self.host,
                tcp_port=self.port,
                http_port=self.http_port,
                workdir=self.workdir,
                users_config=_CLICKHOUSE_USERS_CONFIG,
            )
        )

    def _command(self) -> list[str]:
        return [str(self._binary), f"--config-file={self.config_path}"]

    def _is_ready(self) -> bool:
        # http.client rather than urllib: urllib would send a loopback request through
        # any proxy configured in the environment.
        conn = http.client.HTTPConnection(self.host, self.http_port, timeout=1)
        try:
            conn.request("GET", "/ping")
            return conn.getresponse().read() == b"Ok.\n"
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()


import json  # noqa: E402  (appended with S3Server)
import sys  # noqa: E402

# An IAM policy that allows everything, for the S3 server's test user.
_ALLOW_ALL_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


class S3Server(Server):
    """moto's standalone server: a real S3 HTTP endpoint that enforces signatures.

    (Unless ``enforce_auth=False``: see ``__init__``.)

    moto accepts any request until ``INITIAL_NO_AUTH_ACTION_COUNT`` unauthenticated
    actions have been made; ``start()`` spends exactly those on IAM (boto3 against the
    same endpoint) to create two users, so from then on every request must be signed:

    - ``access_key`` / ``secret_key``: a user with an allow-all policy;
    - ``denied_access_key`` / ``denied_secret_key``: a user with no policy at all,
      whose every S3 call is refused with AccessDenied.

    Readiness is checked on ``/moto-api/``, which does not count as an action.
    """

    name = "moto-server"
    #: create_user, create_policy, attach_user_policy, create_access_key (allowed user)
    #: + create_user, create_access_key (denied user).
    setup_actions: ClassVar[int] = 6
    region: ClassVar[str] = "us-east-1"

    def __init__(
        self,
        *,
        enforce_auth: bool = True,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        """:param enforce_auth: False runs moto as it runs by default, taking any keys.

        moto 5.2 checks neither the signature nor the expiry of a presigned URL, and
        with signatures enforced it answers every presigned request with HTTP 500 (it
        looks for an Authorization header): presigned URLs can only be fetched from
        a server started with ``enforce_auth=False``.
        """
        super().__init__(startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self.enforce_auth = enforce_auth
        self._binary = self._find_moto_server()
        self._env = find_binary("env", "coreutils")
        self.port = free_port()
        self.access_key = ""
        self.secret_key = ""
        self.denied_access_key = ""
        self.denied_secret_key = ""

    @staticmethod
    def _find_moto_server() -> Path:
        beside = Path(sys.executable).parent / "moto_server"
        if beside.is_file():
            return beside
        found = shutil.which("moto_server")
        if found is None:
            raise ServiceUnavailable(
                f"moto_server not found next to {sys.executable} or on PATH: "
                'pip install "moto[server]" into this virtualenv '
                '(or pip install -e ".[test]")'
            )
        return Path(found)

    @property
    def endpoint(self) -> str:
        """``host:port``, as the minio SDK and ``[plugins.storage_s3] endpoint`` take it."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def plugin_table(self, **overrides: object) -> dict[str, object]:
        """A ``[plugins.storage_s3]`` table pointing at this server."""
        table: dict[str, object] = {
            "endpoint": self.endpoint,
            "secure": False,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region": self.region,
        }
        table.update(overrides)
        return table

    def start(self) -> Self:
        super().start()
        try:
            self._create_users()
        except BaseException:
            self.stop()
            raise
        return self

    def _create_users(self) -> None:
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="clipsync")
        policy = iam.create_policy(PolicyName="allow-all", PolicyDocument=_ALLOW_ALL_POLICY)
        iam.attach_user_policy(UserName="clipsync", PolicyArn=policy["Policy"]["Arn"])
        key = iam.create_access_key(UserName="clipsync")["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        self.denied_access_key, self.denied_secret_key = key["AccessKeyId"], key["SecretAccessKey"]

    def _prepare(self) -> None:
        """Nothing to lay out: moto keeps everything in memory."""

    def _command(self) -> list[str]:
        # `env` exec()s moto_server, so the server keeps the pid the harness watches.
        count = self.setup_actions if self.enforce_auth else "inf"
        return [
            str(self._env),
            f"INITIAL_NO_AUTH_ACTION_COUNT={count}",
            str(self._binary),
            *("-H", self.host),
            *("-p", str(self.port)),
        ]

    def _is_ready(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=1)
        try:
            conn.request("GET", "/moto-api/")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()


# ClamAV's test string (EICAR's), split so that this file is not itself detected.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE = "Eicar-Test-Signature"

_CLAMD_CONFIG = """\
Foreground yes
LocalSocket {socket}
TCPSocket {port}
TCPAddr {host}
DatabaseDirectory {database}
TemporaryDirectory {temp}
PidFile {workdir}/clamd.pid
LogFile {workdir}/clamd.log
LogTime yes
LogClean yes
StreamMaxLength {stream_max_bytes}
{options}"""


class ClamdServer(Server):
    """clamd (Debian's clamav-daemon) with a signature database made here, no freshclam.

    The public database cannot be downloaded here, so the database holds only
    ``signatures``: names and the byte strings they match anywhere in a file (an
    ``.ndb`` database); by default EICAR's test string as ``Eicar-Test-Signature``.
    clamd answers on a unix socket (``socket_path``) and on TCP (``host``, ``port``),
    and reads at most ``stream_max_bytes`` of one INSTREAM (its StreamMaxLength);
    ``options`` adds lines to its clamd.conf (``{"MaxFileSize": "1M"}``).
    ``scans()`` lists the verdicts it gave; ``pause()`` freezes it (SIGSTOP):
    connections are then accepted and never answered.
    """

    name = "clamd"

    def __init__(
        self,
        *,
        signatures: dict[str, bytes] | None = None,
        stream_max_bytes: int = 100 * 1024 * 1024,
        options: dict[str, str] | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self._binary = find_binary("clamd", "clamav-daemon")
        self.signatures = signatures if signatures is not None else {EICAR_SIGNATURE: EICAR}
        self.stream_max_bytes = stream_max_bytes
        self.options = options or {}
        self.port = free_port()

    @property
    def socket_path(self) -> Path:
        return self.workdir / "clamd.sock"

    @property
    def config_path(self) -> Path:
        return self.workdir / "clamd.conf"

    def scans(self) -> list[str]:
        """clamd's log lines of the scans so far: "instream(local): OK", "… FOUND"."""
        log = self.workdir / "clamd.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return [line.split(" -> ", 1)[-1] for line in lines if "instream(" in line]

    def pause(self) -> None:
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGCONT)

    def _prepare(self) -> None:
        database = self.workdir / "database"
        database.mkdir()
        (self.workdir / "tmp").mkdir()
        # name:target type (0, any file):offset (* anywhere):the bytes in hex
        (database / "tests.ndb").write_text(
            "".join(f"{name}:0:*:{data.hex()}\n" for name, data in self.signatures.items())
        )
        self.config_path.write_text(
            _CLAMD_CONFIG.format(
                socket=self.socket_path,
                port=self.port,
                host=self.host,
                database=database,
                temp=self.workdir / "tmp",
                workdir=self.workdir,
                stream_max_bytes=self.stream_max_bytes,
                options="".join(f"{key} {value}\n" for key, value in self.options.items()),
            )
        )

    def _command(self) -> list[str]:
        return [str(self._binary), f"--config-file={self.config_path}"]

    def _is_ready(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(1)
                conn.connect(str(self.socket_path))
                conn.sendall(b"zPING\0")
                return conn.recv(64) == b"PONG\0"
        except OSError:
            return False

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)  # a paused clamd could not stop
        super()._terminate(process)


import secrets  # noqa: E402  (appended with RadosGwServer)
import uuid  # noqa: E402

# A one-node cluster: every pool has one copy on the one OSD, placement groups are
# spread over OSDs rather than hosts, and nothing asks for a manager daemon. The
# health warnings such a cluster raises by design are silenced; the OSD's block
# device is a sparse file, so "10 GiB" costs only what is written.
_CEPH_CONFIG = """\
[global]
fsid = {fsid}
mon_host = [v2:{host}:{mon_port}]
public_addr = {host}
cluster_addr = {host}
ms_bind_msgr1 = false
ms_bind_port_min = {first_port}
ms_bind_port_max = {last_port}
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
keyring = {workdir}/keyring
run_dir = {workdir}/run
log_to_file = false
log_to_stderr = true
err_to_stderr = true
mon_cluster_log_to_file = false
debug_rocksdb = 0/0
debug_bluestore = 0/0
debug_bluefs = 0/0
debug_bdev = 0/0
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 1

[mon]
mon_data = {workdir}/mon

[osd]
osd_data = {workdir}/osd
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = 10737418240
osd_memory_target = 536870912

[client.rgw.a]
rgw_frontends = beast endpoint={host}:{port}
rgw_data = {workdir}/rgw
"""

# Each daemon's cephx identity and what it may do.
_CEPH_ENTITIES: dict[str, list[tuple[str, str]]] = {
    "mon.": [("mon", "allow *")],
    "client.admin": [("mon", "allow *"), ("osd", "allow *"), ("mgr", "allow *")],
    "osd.0": [("mon", "allow profile osd"), ("mgr", "allow profile osd"), ("osd", "allow *")],
    "client.rgw.a": [("mon", "allow rw"), ("osd", "allow rwx")],
}
# The OSD's messenger listens on four ports (public, cluster and two heartbeats).
_CEPH_OSD_PORTS = 8
_CEPH_COMMAND_TIMEOUT = 60.0


def _free_port_block(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (see ``free_ports``).

    Ceph daemons take their ports from a range, ``ms_bind_port_min`` to ``_max``.
    """
    ephemeral = _ephemeral_port_range()
    starts = list(range(_LOWEST_PORT, 65536 - count))
    random.shuffle(starts)
    for start in starts[:200]:
        block = range(start, start + count)
        if any(port in ephemeral for port in block):
            continue
        with contextlib.ExitStack() as stack:
            try:
                for port in block:
                    probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    probe.bind((LOOPBACK, port))
            except OSError:
                continue
            return start
    raise ServiceUnavailable(f"could not find {count} consecutive free TCP ports on {LOOPBACK}")


class RadosGwServer(Server):
    """Ceph's S3 gateway on a throwaway one-node cluster: a production S3 implementation.

    Unlike moto, radosgw checks what AWS checks: a presigned URL's signature and
    expiry, that objects are private (an unsigned read is refused), and a bucket's
    CORS rules before a browser may read cross-origin. One ``ceph-mon``, one
    ``ceph-osd`` (bluestore on a sparse file) and ``radosgw`` (beast) run from one
    temporary folder on loopback ports; ``start()`` makes the S3 user
    (``access_key`` / ``secret_key``, allowed everything in its own buckets) with
    ``radosgw-admin``. A new cluster answers in about 20 s, so start one per session.

    radosgw is the process the harness watches; the monitor and the OSD are its
    helpers, started before it and stopped after it. ``stop(keep_data=True)`` then
    ``start()`` brings the same cluster back (about 6 s).
    """

    name = "radosgw"
    region: ClassVar[str] = "us-east-1"

    def __init__(self, *, startup_timeout: float = 60.0, stop_timeout: float = 10.0) -> None:
        super().__init__(startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self._binaries = {
            "ceph-mon": find_binary("ceph-mon", "ceph-mon"),
            "ceph-osd": find_binary("ceph-osd", "ceph-osd"),
            "radosgw": find_binary("radosgw", "radosgw"),
            "radosgw-admin": find_binary("radosgw-admin", "ceph-common"),
            "ceph": find_binary("ceph", "ceph-common"),
            "ceph-authtool": find_binary("ceph-authtool", "ceph-common"),
            "monmaptool": find_binary("monmaptool", "ceph-base"),
        }
        self.port, self.mon_port = free_ports(2)
        self._first_osd_port = _free_port_block(_CEPH_OSD_PORTS)
        self._fsid, self._osd_uuid = str(uuid.uuid4()), str(uuid.uuid4())
        self._helpers: list[subprocess.Popen[bytes]] = []
        self.access_key = ""
        self.secret_key = ""

    @property
    def endpoint(self) -> str:
        """``host:port``, as the minio SDK and ``[plugins.storage_s3] endpoint`` take it."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def config_path(self) -> Path:
        """The cluster's ``ceph.conf``, in its working directory."""
        return self.workdir / "ceph.conf"

    def plugin_table(self, **overrides: object) -> dict[str, object]:
        """A ``[plugins.storage_s3]`` table pointing at this gateway."""
        table: dict[str, object] = {
            "endpoint": self.endpoint,
            "secure": False,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region": self.region,
        }
        table.update(overrides)
        return table

    # -- lifecycle: the monitor and the OSD before radosgw, and after it -------------------

    def start(self) -> Self:
        if self._process is not None:
            raise RuntimeError(f"{self.name} is already running")
        fresh = self._workdir is None
        try:
            if fresh:
                self._workdir = Path(tempfile.mkdtemp(prefix=f"clipsync-{self.name}-"))
                self._prepare()
            self._spawn("ceph-mon", "-i", "a")
            if fresh:
                self._ceph("ceph", "osd", "new", self._osd_uuid, "0")
                self._ceph("ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", self._osd_uuid)
            self._spawn("ceph-osd", "-i", "0")
            super().start()  # radosgw, once it answers HTTP
            if fresh:
                self._create_user()
                self._warm_up()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop radosgw, then the OSD, then the monitor; see ``Server.stop``."""
        process, self._process = self._process, None
        if process is not None:
            self._terminate(process)
        while self._helpers:
            self._terminate(self._helpers.pop())
        super().stop(keep_data=keep_data)

    def _spawn(self, daemon: str, *args: str) -> None:
        command = [str(self._binaries[daemon]), "-f", "-c", str(self.config_path), *args]
        with self.log_path.open("ab") as log:
            self._helpers.append(
                subprocess.Popen(
                    self._as_user(command),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    process_group=0,
                )
            )

    def _ceph(self, program: str, *args: str) -> str:
        """Run a Ceph tool against this cluster; return its standard output."""
        command = [str(self._binaries[program]), "-c", str(self.config_path), *args]
        if program == "ceph":
            command[1:1] = ["--connect-timeout", str(int(_CEPH_COMMAND_TIMEOUT))]
        with self.log_path.open("ab") as log:
            try:
                result = subprocess.run(
                    self._as_user(command),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    cwd=self.workdir,
                    timeout=_CEPH_COMMAND_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as error:
                raise ServiceUnavailable(
                    f"{program} {args[0]} did not finish within "
                    f"{_CEPH_COMMAND_TIMEOUT:g}s{self._log_tail()}"
                ) from error
        if result.returncode != 0:
            raise ServiceUnavailable(
                f"{program} {' '.join(args[:2])} exited with status "
                f"{result.returncode}{self._log_tail()}"
            )
        return result.stdout.decode(errors="replace")

    def _prepare(self) -> None:
        """Write ceph.conf and the keyring, and make the monitor's store."""
        for folder in ("mon", "osd", "run", "rgw"):
            (self.workdir / folder).mkdir()
        self.config_path.write_text(
            _CEPH_CONFIG.format(
                fsid=self._fsid,
                host=self.host,
                mon_port=self.mon_port,
                port=self.port,
                first_port=self._first_osd_port,
                last_port=self._first_osd_port + _CEPH_OSD_PORTS - 1,
                workdir=self.workdir,
            )
        )
        keyring = str(self.workdir / "keyring")
        for number, (entity, caps) in enumerate(_CEPH_ENTITIES.items()):
            options = ["--create-keyring"] if number == 0 else []
            pairs = [arg for kind, cap in caps for arg in ("--cap", kind, cap)]
            self._ceph("ceph-authtool", keyring, *options, "--gen-key", "-n", entity, *pairs)
        monmap = str(self.workdir / "monmap")
        address = f"[v2:{self.host}:{self.mon_port}]"
        self._ceph("monmaptool", "--create", "--fsid", self._fsid, "--addv", "a", address, monmap)
        self._ceph("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", keyring)

    def _create_user(self) -> None:
        access_key, secret_key = secrets.token_hex(10).upper(), secrets.token_urlsafe(30)
        self._ceph(
            "radosgw-admin",
            *("user", "create", "--uid=clipsync", "--display-name=ClipSync tests"),
            f"--access-key={access_key}",
            f"--secret-key={secret_key}",
        )
        self.access_key, self.secret_key = access_key, secret_key

    def _warm_up(self) -> None:
        """Store one object, so the pools of bucket indexes and data exist (about 4 s).

        radosgw creates them on first use: the first test would pay for it otherwise.
        """
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )
        s3.create_bucket(Bucket="clipsync-warm-up")
        s3.put_object(Bucket="clipsync-warm-up", Key="warm-up", Body=b"warm-up")
        s3.delete_object(Bucket="clipsync-warm-up", Key="warm-up")
        s3.delete_bucket(Bucket="clipsync-warm-up")

    def _command(self) -> list[str]:
        return [
            str(self._binaries["radosgw"]),
            *("-f", "-c", str(self.config_path)),
            *("-n", "client.rgw.a"),
        ]

    def _is_ready(self) -> bool:
        # An anonymous "list buckets" answers 200 once the gateway has its pools.
        conn = http.client.HTTPConnection(self.host, self.port, timeout=1)
        try:
            conn.request("GET", "/")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()
