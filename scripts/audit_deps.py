"""Known vulnerabilities in what ClipSync ships: `make audit` (and so `make test`) runs this.

    .venv/bin/python scripts/audit_deps.py [--unreachable=fail|warn] [--no-npm]
                                           [-- PIP-AUDIT ARGUMENTS]

Two audits, each against its registry's advisory service:

- Python: `pip-audit` over every package installed in the virtual environment
  (`--local`), pinned at the version really installed. The editable `clipsync` itself
  is ours and not on PyPI (`--skip-editable`). Arguments after `--` replace that
  target, e.g. `-- -r requirements.txt --no-deps --disable-pip`.
- Front end: `npm audit --omit=dev` over package-lock.json: the libraries bundled
  into clipsync/static/vendor.

A known vulnerability always fails the audit (exit 1), with its id and the versions
that fix it. A package that could not be checked at all (the advisory service is
unreachable or does not answer for that version) is a different failure: pip-audit
itself only *skips* such a package and then reports "No known vulnerabilities found",
which would pass an audit that asked nobody. Here it is named as not audited, and
fails unless `--unreachable=warn`, which still prints it, loudly, and exits 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PIP_AUDIT = Path(sys.executable).parent / "pip-audit"
DEFAULT_TARGET = ["--local", "--skip-editable"]
# How pip-audit names a package it left out on purpose (`--skip-editable`), not for
# want of an answer.
SKIPPED_EDITABLE = "distribution marked as editable"


@dataclass
class Findings:
    """What one audit found: vulnerabilities, and packages it could not check."""

    vulnerable: list[str] = field(default_factory=list)
    unaudited: list[str] = field(default_factory=list)


def audit_python(target: list[str]) -> Findings:
    """Runs pip-audit on `target` and sorts its JSON answer into `Findings`."""
    command = [str(PIP_AUDIT), *target, "--format=json", "--progress-spinner=off"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        # pip-audit stopped before it had a report: a service error, a resolution error.
        reason = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return Findings(unaudited=[f"pip-audit failed: {reason[0]}"])
    found = Findings()
    for dependency in report.get("dependencies", []):
        name = f"{dependency['name']} {dependency.get('version', '')}".strip()
        if dependency.get("skip_reason") == SKIPPED_EDITABLE:
            continue
        if "skip_reason" in dependency:
            found.unaudited.append(f"{name}: {dependency['skip_reason']}")
        for vuln in dependency.get("vulns", []):
            ids = ", ".join([vuln["id"], *sorted(vuln.get("aliases", []))])
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed version yet"
            found.vulnerable.append(f"{name}: {ids} (fixed in {fixes})")
    return found


def audit_npm() -> Findings:
    """Runs `npm audit --omit=dev` and sorts its JSON answer into `Findings`."""
    command = ["npm", "audit", "--omit=dev", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        return Findings(unaudited=[f"npm audit gave no report (exit status {done.returncode})"])
    if "error" in report or "vulnerabilities" not in report:
        reason = report.get("message") or json.dumps(report.get("error"))
        return Findings(unaudited=[f"package-lock.json: npm audit failed: {reason}"])
    found = Findings()
    for name, entry in sorted(report["vulnerabilities"].items()):
        advisories = [v["url"] for v in entry.get("via", []) if isinstance(v, dict) and "url" in v]
        where = ", ".join(advisories) or "through " + ", ".join(map(str, entry.get("via", [])))
        found.vulnerable.append(f"{name} {entry.get('range', '')}: {entry['severity']}, {where}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--unreachable",
        choices=("fail", "warn"),
        default="fail",
        help="what a package that could not be checked does (default: fail)",
    )
    parser.add_argument("--no-npm", action="store_true", help="audit the Python packages only")
    parser.add_argument("target", nargs="*", help="pip-audit arguments (after --)")
    args = parser.parse_args(argv)

    audits = {"Python packages": audit_python(args.target or DEFAULT_TARGET)}
    if not args.no_npm:
        audits["front end (npm)"] = audit_npm()

    failed = False
    for what, found in audits.items():
        if found.vulnerable:
            failed = True
            print(f"KNOWN VULNERABILITIES in the {what}:")
            print("".join(f"  {line}\n" for line in found.vulnerable), end="")
        if found.unaudited:
            failed = failed or args.unreachable == "fail"
            print(f"NOT AUDITED: {len(found.unaudited)} of the {what} could not be checked:")
            print("".join(f"  {line}\n" for line in found.unaudited[:10]), end="")
            if len(found.unaudited) > 10:
                print(f"  … and {len(found.unaudited) - 10} more")
        if not found.vulnerable and not found.unaudited:
            print(f"{what}: no known vulnerabilities")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
