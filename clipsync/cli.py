"""The `clipsync` command: serve, worker, migrate, plugins, doctor, user, storage, backups."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from clipsync import __version__, db, metrics
from clipsync.errors import ClipSyncError, ConfigError
from clipsync.logs import setup_logging
from clipsync.models import Role
from clipsync.settings import Settings, load_settings

if TYPE_CHECKING:
    from clipsync.context import ClipSyncApp
    from clipsync.services.storage_migration import Outcome, Tally

log = logging.getLogger("clipsync")


def config_path(given: str | None) -> Path | None:
    """`--config`, else `$CLIPSYNC_CONFIG`, else `./config.toml` when there is one."""
    chosen = given or os.environ.get("CLIPSYNC_CONFIG")
    if chosen:
        return Path(chosen)
    default = Path("config.toml")
    return default if default.is_file() else None


def serving_app(path: str | None) -> ClipSyncApp:
    from clipsync.app import create_app_from_config, setup_job_consumer

    app = create_app_from_config(path)
    setup_job_consumer(app, Path(path) if path else None)
    return app


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    pending = asyncio.run(db.pending_migrations(settings))
    if pending:
        print(
            f"The database needs {len(pending)} migration(s) first: run `clipsync migrate`.",
            file=sys.stderr,
        )
        return 1
    path = str(settings.source) if settings.source else None
    # Every worker reads its settings again: --host and --port reach them as the
    # overrides they are, so the links they build (the default public_url) agree.
    if args.host:
        os.environ["CLIPSYNC_SERVER_HOST"] = args.host
    if args.port:
        os.environ["CLIPSYNC_SERVER_PORT"] = str(args.port)
    if args.access_log:
        os.environ["CLIPSYNC_LOGGING_ACCESS_LOG"] = "true"
    metrics.prepare_run(settings, "serve")
    loader = AppLoader(factory=partial(serving_app, path))
    app = loader.load()
    # Built: the keys it generated are known. A second host with keys of its own stops here.
    check_generated_keys(settings)
    app.prepare(
        host=args.host or settings.server.host,
        port=args.port or settings.server.port,
        workers=settings.server.workers,
        # ClipSync writes its own access line, with the route, user and request id.
        access_log=False,
        motd=False,
    )
    print(f"ClipSync {__version__} on http://{app.state.host}:{app.state.port}", flush=True)
    Sanic.serve(primary=app, app_loader=loader)
    return 0


def check_generated_keys(settings: Settings) -> None:
    """Raise ConfigError when another host sharing the database has other generated keys."""
    from clipsync import generated_keys

    async def check() -> None:
        try:
            await db.open_database(settings)
            await generated_keys.check_shared(settings)
        finally:
            await db.close_database()

    if db.dialect(settings.database_url) == "postgres":
        asyncio.run(check())


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    metrics.prepare_run(settings, "worker")
    from clipsync.jobs.consumer import run_consumer

    run_consumer(str(settings.source) if settings.source else None)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    def waiting() -> None:
        print("Another `clipsync migrate` is running: waiting for it to end.", flush=True)

    applied = asyncio.run(db.migrate(settings, waiting))
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("The database is up to date.")
    return 0


def cmd_plugins(args: argparse.Namespace, settings: Settings) -> int:
    from clipsync.backends import Backends, select_all
    from clipsync.plugins import create_plugin_host

    host = create_plugin_host(settings)
    backends = Backends(select_all(host, settings))
    if args.json:
        print(json.dumps({"plugins": host.describe(), "backends": backends.describe()}, indent=2))
        return 0
    print("Plugins:")
    for plugin in host.describe():
        print(f"  {plugin['name']} {plugin['version']} ({plugin['source']})")
    print("Backends:")
    for backend in backends.describe():
        print(
            f"  {backend['kind']}: {backend['active']} from {backend['plugin']}"
            f" (configured: {backend['configured']}; {backend['reason']})"
        )
        for name, probe in backend["probes"].items():
            state = "available" if probe["ok"] else "unavailable"
            print(f"    {name}: {state}: {probe['reason']}")
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from clipsync import doctor

    checks = asyncio.run(doctor.run_checks(settings))
    if args.json:
        print(json.dumps(doctor.as_json(checks), indent=2))
    else:
        print(doctor.report(checks, settings))
    return 1 if any(check.failed for check in checks) else 0


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise ConfigError(
            "No terminal to ask for a password: pass --password-stdin and pipe it in."
        )
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        raise ConfigError("The two passwords do not match.")
    return first


async def create_user(
    settings: Settings, email: str, password: str, role: Role, category: str | None
) -> str:
    from clipsync.backends import Backends, select_all
    from clipsync.plugins import create_plugin_host
    from clipsync.services.accounts import AccountService

    host = create_plugin_host(settings)
    backends = Backends(select_all(host, settings))
    await db.open_database(settings)
    try:
        user = await AccountService(settings, backends.auth, host).create_user(
            email, password, role=role, category=category
        )
        return f"created {user.role} {user.email} (category {user.category})"
    finally:
        await db.close_database()


def cmd_user_create(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password(args.password_stdin)
    print(asyncio.run(create_user(settings, args.email, password, Role(args.role), args.category)))
    return 0


# A progress line every this many files, and at least every this many seconds.
PROGRESS_FILES = 50
PROGRESS_SECONDS = 15.0


def cmd_storage_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from clipsync.config_file import write_setting
    from clipsync.services import storage_migration as migration
    from clipsync.sizes import format_size

    plan = migration.plan_migration(settings, args.to, switch=not args.copy_only)
    source, target = plan.source.name, plan.target.name
    mode = " (dry run: nothing is copied or changed)" if args.dry_run else ""
    print(f"Moving media from {source} to {target}{mode}")
    print(f"  from {source}: {plan.source.where}")
    print(f"  to   {target}: {plan.target.where}")
    if migration.server_answers(settings):
        print(
            f"Warning: something answers on {settings.server.host}:{settings.server.port}. "
            "If ClipSync is running, files uploaded or transcoded during the copy may be "
            "missed: stop `clipsync serve` and `clipsync worker` before the run that switches."
        )
    elif not (args.dry_run or args.copy_only):
        print("ClipSync (serve and worker) should be stopped while this runs.")

    last = time.monotonic()

    def listed(tally: Tally) -> None:
        where = ", ".join(f"{prefix}/" for prefix in migration.COPIED_PREFIXES)
        print(f"{tally.files} files ({format_size(tally.bytes)}) under {where} in {source}")

    def progress(outcome: Outcome, tally: Tally) -> None:
        nonlocal last
        if outcome.state == "failed":
            print(f"  failed {outcome.key}: {outcome.reason}", flush=True)
        now = time.monotonic()
        if tally.done % PROGRESS_FILES == 0 or now - last >= PROGRESS_SECONDS:
            print(tally.line(args.dry_run), flush=True)
            last = now

    still = f'[storage] backend is still "{source}" ({settings.describe()})'
    try:
        tally = asyncio.run(
            migration.copy_all(
                plan,
                concurrency=args.concurrency,
                size_only=args.size_only,
                dry_run=args.dry_run,
                on_listed=listed,
                on_outcome=progress,
            )
        )
    except KeyboardInterrupt:
        print(
            f"\nInterrupted: nothing was switched; {still}. Run the command again: "
            "it copies only what is missing or different.",
            file=sys.stderr,
        )
        return 130
    print(tally.summary(args.dry_run))
    if args.dry_run:
        print(f'A real run would then set [storage] backend = "{target}" in {plan.config}.')
        return 0
    if not tally.ok:
        stopped = f" (stopped after {len(tally.failures)} failures)" if tally.stopped_early else ""
        print(
            f"{len(tally.failures)} file(s) could not be copied{stopped}: nothing was switched; "
            f"{still}. Fix the cause and run the command again: it copies only what is "
            "missing or different.",
            file=sys.stderr,
        )
        return 1
    if args.copy_only:
        print(
            f"Copied without switching: {still}. Stop ClipSync, run the command again "
            "without --copy-only to copy what changed meanwhile and switch, then start it."
        )
        return 0
    if plan.config is None:  # plan_migration refuses this; never write to no file
        raise ConfigError("no configuration file to switch: pass --config FILE")
    old = write_setting(plan.config, "storage", "backend", target)
    if load_settings(plan.config).storage.backend != target:
        raise ConfigError(f"{plan.config}: [storage] backend did not change; set it by hand")
    print(f'Switched: [storage] backend = "{target}" in {plan.config} (was "{old or source}").')
    print(f"Restart ClipSync (serve and worker) so that it uses {target}.")
    print(
        f"The files in {source} were left in place ({plan.source.where}). Once ClipSync "
        f"works from {target}, delete videos/ there to free the space; to go back instead, "
        f"run `clipsync storage migrate --to {source}`."
    )
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from clipsync.backup import failures, open_install
    from clipsync.backup.progress import Bars
    from clipsync.backup.schedule import prune
    from clipsync.backup.snapshot import create_backup
    from clipsync.backup.targets import open_target

    install = open_install(settings)
    target = open_target(args.to, settings, install.s3_settings)
    bars = Bars()
    try:
        outcome = asyncio.run(
            create_backup(
                install.sources,
                target,
                media=args.media,
                include_secrets=args.include_secrets,
                progress=bars,
            )
        )
        if args.keep:
            deleted = asyncio.run(prune(target, args.keep))
    except failures() as exc:
        print(f"clipsync: the backup failed: {exc}", file=sys.stderr)
        return 1
    finally:
        bars.close()
    print(outcome.summary())
    if args.keep:
        print(f"Kept the newest {args.keep} backup(s); deleted {deleted}.")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from clipsync.backup import failures, open_install
    from clipsync.backup.progress import Bars
    from clipsync.backup.restore import restore_backup
    from clipsync.backup.targets import open_target

    install = open_install(settings)
    source = open_target(args.source, settings, install.s3_settings)
    bars = Bars()
    try:
        restored = asyncio.run(
            restore_backup(
                settings,
                install.sources.storage,
                source,
                media=args.media,
                analytics_db=install.sources.analytics_db,
                progress=bars,
            )
        )
    except failures() as exc:
        print(f"clipsync: the restore failed: {exc}", file=sys.stderr)
        return 1
    finally:
        bars.close()
    print(restored.summary())
    pending = asyncio.run(db.pending_migrations(settings))
    if pending:
        print(f"The database needs {len(pending)} migration(s): run `clipsync migrate`.")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="clipsync", description="ClipSync video platform")
    top.add_argument(
        "--config", help="configuration file (default: $CLIPSYNC_CONFIG or ./config.toml)"
    )
    top.add_argument("--version", action="version", version=f"clipsync {__version__}")
    commands = top.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web server (and the job consumer)")
    serve.add_argument("--host", help="address to listen on (default: [server] host)")
    serve.add_argument("--port", type=int, help="port to listen on (default: [server] port)")
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log every request, whatever [logging] access_log says",
    )
    serve.set_defaults(run=cmd_serve)

    worker = commands.add_parser("worker", help="run only the job consumer")
    worker.set_defaults(run=cmd_worker)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(run=cmd_migrate)

    plugins = commands.add_parser("plugins", help="list plugins and the active backends")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(run=cmd_plugins)

    doctor = commands.add_parser(
        "doctor", help="check ffmpeg, the data folder, database, queue, storage and transcoders"
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.set_defaults(run=cmd_doctor)

    user = commands.add_parser("user", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    create = user.add_parser("create", help="create an account (e.g. the first admin)")
    create.add_argument("--email", required=True)
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.USER.value)
    create.add_argument("--category", help="category name (default: the default category)")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    create.set_defaults(run=cmd_user_create)

    storage = commands.add_parser(
        "storage", help="move media to another storage backend (storage migrate --to NAME)"
    ).add_subparsers(dest="action", required=True)
    move = storage.add_parser(
        "migrate",
        help="copy every media file to another storage backend, verify it, and switch to it",
        description=(
            "Copy every stored file (videos/) from the active storage backend to BACKEND, "
            "verify each copy (size and sha256 read back), and only then set "
            "[storage] backend in the config file. Stop ClipSync first. An interrupted "
            "or failed run switches nothing; run it again to copy only what is missing "
            "or different. The old store's files are left in place."
        ),
    )
    move.add_argument(
        "--to", required=True, metavar="BACKEND", help='the storage backend to move to, e.g. "s3"'
    )
    move.add_argument(
        "--config", default=argparse.SUPPRESS, help="configuration file (as before the command)"
    )
    move.add_argument(
        "--dry-run", action="store_true", help="say what would be copied; change nothing"
    )
    move.add_argument(
        "--concurrency",
        type=positive,
        default=4,
        metavar="N",
        help="files copied at once (default: 4)",
    )
    move.add_argument(
        "--size-only",
        action="store_true",
        help="take a file already in the target with the same size as copied, without "
        "hashing both (faster re-runs; new copies are still verified)",
    )
    move.add_argument(
        "--copy-only",
        action="store_true",
        help="copy and verify but do not switch (a first pass while ClipSync still runs)",
    )
    move.set_defaults(run=cmd_storage_migrate)

    backup = commands.add_parser(
        "backup",
        help="back up the database, config, analytics and media list (media with --media)",
        description=(
            "Write a consistent backup into a new folder of TARGET: the database (SQLite "
            "online backup, or pg_dump), the SQLite analytics, config.toml with its secrets "
            "masked, and a manifest of every media object with its size and sha256. "
            "ClipSync may keep running. See docs/operations.md, Backups."
        ),
    )
    backup.add_argument(
        "--to", required=True, metavar="TARGET", help="a folder, or s3://bucket/prefix"
    )
    backup.add_argument(
        "--media",
        action="store_true",
        help="copy the media too (only what the target does not hold yet)",
    )
    backup.add_argument(
        "--include-secrets",
        action="store_true",
        help="keep config.toml's secrets and the token signing key (guard the backup)",
    )
    backup.add_argument(
        "--keep", type=positive, metavar="N", help="then delete all but the newest N backups"
    )
    backup.set_defaults(run=cmd_backup)

    restore = commands.add_parser(
        "restore",
        help="restore a backup into an empty install and verify every media checksum",
        description=(
            "Restore the backup SOURCE names (one backup folder, or the newest in a target) "
            "into this install, which must be empty (no users, no videos): the database, "
            "the SQLite analytics and, with --media, the media into the configured store. "
            "Every media object is then read back and its sha256 compared with the "
            "manifest. Stop ClipSync first."
        ),
    )
    restore.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="SOURCE",
        help="a backup folder or target, or s3://bucket/prefix",
    )
    restore.add_argument(
        "--media", action="store_true", help="copy the media from the backup into the store"
    )
    restore.set_defaults(run=cmd_restore)
    return top


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings(config_path(args.config))
        setup_logging(settings.logging)
        return args.run(args, settings)
    except ConfigError as exc:
        print(f"clipsync: {exc}", file=sys.stderr)
        return 2
    except ClipSyncError as exc:
        print(f"clipsync: {exc.message}", file=sys.stderr)
        return 1
