"""The documentation and the packaging keep up with the code."""

from __future__ import annotations

import ast
import inspect
import re
import tomllib
from pathlib import Path

from clipsync import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(
    name
    for name, value in vars(hookspecs).items()
    if inspect.isfunction(value) and hasattr(value, "clipsync_spec")
)


def test_there_are_hooks() -> None:
    assert "user_registered" in HOOKS and "register_storage_backends" in HOOKS


def test_every_hook_is_documented_with_its_signature() -> None:
    guide = (ROOT / "docs" / "plugins.md").read_text()
    for name in HOOKS:
        arguments = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"### {name}({arguments})" in guide, f"docs/plugins.md lacks ### {name}({arguments})"


def test_every_hook_has_a_docstring() -> None:
    for name in HOOKS:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name


def test_every_hook_is_tested() -> None:
    tested = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_hook_"
            ):
                tested.update(h for h in HOOKS if h in node.name)
    assert set(HOOKS) - tested == set(), "hooks with no test_hook_<name> test"


def test_every_package_is_installed_by_pyproject() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    mapped = pyproject["tool"]["setuptools"]["package-dir"]
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "clipsync").rglob("__init__.py")
    }
    found |= {init.parent.name for init in (ROOT / "plugins").glob("*/__init__.py")}
    missing = {p for p in found if p not in listed}
    assert not missing, f"packages missing from pyproject.toml: {sorted(missing)}"
    for name in (p for p in listed if "." not in p and p != "clipsync"):
        assert name in mapped, f"{name} needs a package-dir entry"


def test_every_builtin_plugin_is_registered() -> None:
    from clipsync.plugins import BUILTIN_PLUGINS

    on_disk = {p.parent.name for p in (ROOT / "plugins").glob("*/__init__.py")}
    assert set(BUILTIN_PLUGINS) == on_disk


def test_readme_shows_the_two_commands_first() -> None:
    readme = (ROOT / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:40])
    assert "make run" in first_screen and "make test" in first_screen


def test_no_module_is_too_long() -> None:
    for path in [*ROOT.glob("clipsync/**/*.py"), *ROOT.glob("plugins/**/*.py")]:
        lines = len(path.read_text().splitlines())
        assert lines <= 600, f"{path.relative_to(ROOT)} has {lines} lines: split it by concern"


def test_ci_runs_make_test() -> None:
    assert re.search(r"\bmake test\b", (ROOT / ".ci" / "run").read_text())


def test_every_module_is_in_the_module_map() -> None:
    guide = (ROOT / "docs" / "development.md").read_text()
    table = guide.split("Inside `clipsync/`:", 1)[1].split("\n\n")[1]
    rows = dict(re.findall(r"^\| `([^`]+)` \| (.*) \|$", table, re.MULTILINE))
    package = ROOT / "clipsync"
    missing = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        parts = path.relative_to(package).parts
        if len(parts) == 1:
            if parts[0] not in rows:
                missing.append(f"{parts[0]} (a row of its own)")
            continue
        # A sub-package's modules are named inside its row: `early_playback.py` in `services/`.
        name = "/".join(parts[1:])
        row = rows.get(f"{parts[0]}/", "")
        if not re.search(rf"(?<![\w./]){re.escape(name)}(?!\w)", row):
            missing.append(f"{name} (in the `{parts[0]}/` row)")
    assert not missing, f"docs/development.md's module map lacks: {', '.join(missing)}"


def test_every_builtin_plugin_is_in_the_layout() -> None:
    guide = (ROOT / "docs" / "development.md").read_text()
    row = next(line for line in guide.splitlines() if line.startswith("| `plugins/clipsync_"))
    names = [
        p.parent.name.removeprefix("clipsync_") for p in (ROOT / "plugins").glob("*/__init__.py")
    ]
    missing = sorted(name for name in names if f"`{name}`" not in row)
    assert not missing, f"docs/development.md's plugins row lacks: {missing}"
