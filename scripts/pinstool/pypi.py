"""Newest final release of a PyPI project (JSON API)."""

from __future__ import annotations

from typing import Any

import httpx
from packaging.version import InvalidVersion, Version

from .gitrefs import SourceError

PYPI_BASE = "https://pypi.org/pypi/"


def _usable(files: list[dict[str, Any]]) -> bool:
    # A release whose every file is yanked is not one to move to.
    return bool(files) and not all(f.get("yanked") for f in files)


def newest_release(project: str, base: str = PYPI_BASE, timeout: float = 30.0) -> str:
    url = f"{base.rstrip('/')}/{project}/json"
    try:
        reply = httpx.get(url, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if reply.status_code != 200:
        raise SourceError(f"{url}: HTTP {reply.status_code}")
    releases: dict[str, list[dict[str, Any]]] = reply.json().get("releases", {})
    finals: dict[Version, str] = {}
    for text, files in releases.items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if not (version.is_prerelease or version.is_devrelease) and _usable(files):
            finals[version] = text  # as published, not PEP 440-normalised
    if not finals:
        raise SourceError(f"{url}: no final release listed")
    return finals[max(finals)]
