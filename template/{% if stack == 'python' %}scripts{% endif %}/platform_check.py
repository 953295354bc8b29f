# Managed by Slipway (platform-owned): `copier update` keeps this file current.
"""`make platform-check`: uv.lock holds what this Slipway release relies on.

pyproject.toml and uv.lock are yours, so a template update can neither add a
dependency the platform's gates need nor raise its minimum. The Makefile
passes this release's requirements; each one missing from the lock, or locked
below the minimum, is named with the command that fixes it.

    python scripts/platform_check.py uv.lock main:'alembic>=1.16' dev:'ruff>=0.6' ...
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version
except ImportError:  # packaging comes with pytest, which the gates need anyway
    sys.exit("platform-check: the `packaging` library is missing; run: uv add --dev 'pytest>=8'")

# uv's flag for each dependency group a requirement belongs in.
ADD = {"main": "uv add", "dev": "uv add --dev"}


def problems(lock_file: Path, wanted: list[str]) -> list[str]:
    lock = tomllib.loads(lock_file.read_text(encoding="utf-8"))
    locked = {
        canonicalize_name(package["name"]): package.get("version", "")
        for package in lock.get("package", [])
    }
    found = []
    for entry in wanted:
        group, _, spec = entry.partition(":")
        requirement = Requirement(spec)
        fix = f"{ADD[group]} '{requirement}'"
        version = locked.get(canonicalize_name(requirement.name))
        if version is None:
            found.append(f"{requirement.name} is not in uv.lock; Slipway needs {spec}: {fix}")
            continue
        try:
            ok = requirement.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            found.append(f"{requirement.name} {version} is locked; Slipway needs {spec}: {fix}")
    return found


def main(argv: list[str]) -> int:
    lock_file, *wanted = argv
    found = problems(Path(lock_file), wanted)
    for problem in found:
        print(f"platform-check: {problem}", file=sys.stderr)
    if found:
        print(
            "platform-check: this Slipway release's gates need the dependencies above "
            "(its CHANGELOG upgrade note says why); commit pyproject.toml and uv.lock",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
