"""Release tags: which are stable, which is newest."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Exactly MAJOR.MINOR.PATCH after the prefix, optionally after a single `v`:
# prereleases (-rc1, -beta), moving majors (v4) and typos (vv4.0.0) all fail it.
# Leading zeros are allowed: calendar versions (2025.01.07) zero-pad, and
# refusing them would make an older unpadded tag look like the newest.
_SEMVER = r"v?(\d+)\.(\d+)\.(\d+)"


def stable_key(tag: str, prefix: str = "") -> tuple[int, int, int] | None:
    """(major, minor, patch) of a stable release tag, None for anything else."""
    if not tag.startswith(prefix):
        return None
    match = re.fullmatch(_SEMVER, tag[len(prefix) :])
    if not match:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def newest_stable(tags: Iterable[str], prefix: str = "", like: str = "") -> str | None:
    """The highest stable tag; between spellings of one version (`0.35.0` and
    `v0.35.0`) the one written like `like` wins."""
    wants_v = like[len(prefix) :].startswith("v") if like.startswith(prefix) else True
    best: tuple[tuple[int, int, int], bool, str] | None = None
    for tag in tags:
        key = stable_key(tag, prefix)
        if key is None:
            continue
        same_style = tag[len(prefix) :].startswith("v") == wants_v
        candidate = (key, same_style, tag)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else None
