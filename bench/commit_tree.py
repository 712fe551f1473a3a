"""Running another commit's ClipSync beside this tree's, for before/after benchmarks.

`unpack` extracts a commit with `git archive` and makes a folder of links, named as
pyproject's package-dir names the installed packages, to put on PYTHONPATH: every
import of that server, its plugins, themes and migrations then comes from the commit,
with this tree's virtual environment. `BenchServer` runs `clipsync serve` so.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from browser import LiveServer  # noqa: E402


class BenchFailed(Exception):
    """Something could not be run; the message says what."""


def unpack(commit: str, folder: Path) -> Path:
    """`git archive` of `commit` in `folder`, and a folder of links to put on PYTHONPATH."""
    tree = folder / "tree"
    tree.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise BenchFailed(f"git archive {commit} failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    links = folder / "path"
    links.mkdir()
    (links / "clipsync").symlink_to(tree / "clipsync")
    (links / "clipsync_themes").symlink_to(tree / "themes")
    (links / "clipsync_migrations").symlink_to(tree / "migrations")
    for plugin in (tree / "plugins").glob("clipsync_*"):
        (links / plugin.name).symlink_to(plugin)
    return links


class BenchServer(LiveServer):
    """`LiveServer` importing ClipSync from `pythonpath` (when given), without the access log."""

    def __init__(self, workdir: Path, extra_toml: str, pythonpath: Path | None) -> None:
        super().__init__(workdir, extra_toml, startup_timeout=120)
        self.pythonpath = pythonpath

    def _command(self, *args: str) -> list[str]:
        return super()._command(*(a for a in args if a != "--access-log"))

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        env.pop("PYTHONPATH", None)
        if self.pythonpath is not None:
            env["PYTHONPATH"] = str(self.pythonpath)
        return env
