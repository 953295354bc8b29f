"""`scripts/pins check|update`: report or refresh stale pins.

Exit status: 0 all current, 1 something stale (or suspicious), 2 a source
could not be read (the message names it).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from . import gitrefs, pinsfile
from .checks import CURRENT, ERROR, HIJACK, MANUAL, STALE, Config, Finding, repo_url, run_all
from .gitrefs import SourceError

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("actions", "images", "tools", "cluster")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--pins", type=Path, default=ROOT / "extensions" / "pins.yml")
    common.add_argument(
        "--only", action="append", choices=KINDS, help="check only this section (repeatable)"
    )
    common.add_argument(
        "--git-base",
        default=os.environ.get("PINS_GIT_BASE", "https://github.com/"),
        help="URL prefix of owner/repo git remotes (env PINS_GIT_BASE)",
    )
    common.add_argument(
        "--registry-base",
        default=os.environ.get("PINS_REGISTRY_BASE") or None,
        help="one registry URL used instead of every image's own (env PINS_REGISTRY_BASE)",
    )
    common.add_argument(
        "--pypi-base",
        default=os.environ.get("PINS_PYPI_BASE", "https://pypi.org/pypi/"),
        help="PyPI JSON API root (env PINS_PYPI_BASE)",
    )
    common.add_argument(
        "--npm-base",
        default=os.environ.get("PINS_NPM_BASE", "https://registry.npmjs.org/"),
        help="npm registry root (env PINS_NPM_BASE)",
    )
    parser = argparse.ArgumentParser(prog="scripts/pins", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", parents=[common], help="list stale pins, change nothing")
    commands.add_parser("update", parents=[common], help="rewrite pins.yml with current values")
    return parser


def _table(findings: Sequence[Finding]) -> str:
    rows = [("SECTION", "NAME", "PINNED", "UPSTREAM", "STATUS")]
    rows += [(f.kind, f.name, f.pinned, f.upstream, f.status) for f in findings]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in rows
    ]
    for f in findings:
        if f.detail:
            lines.append(f"  {f.kind}.{f.name}: {f.detail}")
    return "\n".join(lines)


def _warn_hijacks(findings: Sequence[Finding]) -> None:
    for f in findings:
        if f.status == HIJACK:
            print(
                f"!!! POSSIBLE TAG HIJACK: {f.name}: {f.detail}. Not updated; compare the "
                "release with upstream's announcements before pinning anything from it.",
                file=sys.stderr,
            )


def _exit_code(findings: Sequence[Finding]) -> int:
    if any(f.status == ERROR for f in findings):
        return 2
    return 1 if any(f.status != CURRENT for f in findings) else 0


def _apply(config: Config, data: CommentedMap, finding: Finding) -> None:
    if finding.kind in ("tools", "cluster"):
        section = data[finding.kind]
        for key, value in finding.updates.items():
            pinsfile.set_value(section, key, value)
        return
    row = data[finding.kind][finding.name]
    updates = dict(finding.updates)
    if finding.kind == "actions":
        # ls-remote has no dates: read the new commit's own.
        updates["date"] = gitrefs.tag_commit_date(repo_url(config, finding.name), updates["tag"])
    for key, value in updates.items():
        pinsfile.set_value(row, key, value)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        data = pinsfile.load(args.pins)
    except (OSError, ValueError, YAMLError) as exc:
        print(f"scripts/pins: cannot read {args.pins}: {exc}", file=sys.stderr)
        return 2
    config = Config(
        git_base=args.git_base,
        registry_base=args.registry_base,
        pypi_base=args.pypi_base,
        npm_base=args.npm_base,
        today=datetime.date.today().isoformat(),
    )
    findings = run_all(config, data, set(args.only or KINDS))
    _warn_hijacks(findings)
    if args.command == "update":
        for finding in findings:
            if finding.status == STALE or (finding.kind == "images" and finding.status == CURRENT):
                try:
                    _apply(config, data, finding)
                except SourceError as exc:
                    finding.status, finding.detail = ERROR, f"not updated: {exc}"
                    continue
                if finding.status == STALE:
                    finding.status, finding.detail = CURRENT, "updated"
                    change = f"{finding.pinned} -> {finding.upstream}"
                    print(f"updated {finding.kind}.{finding.name}: {change}")
        pinsfile.dump(data, args.pins)
    shown = [f for f in findings if f.status != CURRENT]
    checked = len(findings)
    if shown:
        print(_table(shown))
    counts = {s: sum(f.status == s for f in findings) for s in (STALE, HIJACK, MANUAL, ERROR)}
    print(
        f"{checked} pins checked: {counts[STALE]} stale, {counts[HIJACK]} suspicious, "
        f"{counts[MANUAL]} need a person, {counts[ERROR]} unreadable"
    )
    return _exit_code(findings)
