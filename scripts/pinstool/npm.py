"""Newest release of an npm package (registry metadata), optionally within one major."""

from __future__ import annotations

from typing import Any

import httpx

from .gitrefs import SourceError
from .versions import stable_key

NPM_BASE = "https://registry.npmjs.org/"


def newest_release(
    package: str, base: str = NPM_BASE, major: int | None = None, timeout: float = 30.0
) -> str:
    url = f"{base.rstrip('/')}/{package}"
    try:
        reply = httpx.get(
            url,
            timeout=timeout,
            follow_redirects=True,
            # The abbreviated document lists versions without their READMEs.
            headers={"Accept": "application/vnd.npm.install-v1+json"},
        )
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if reply.status_code != 200:
        raise SourceError(f"{url}: HTTP {reply.status_code}")
    versions: dict[str, Any] = reply.json().get("versions", {})
    found: dict[tuple[int, int, int], str] = {}
    for text, meta in versions.items():
        key = stable_key(text)  # X.Y.Z only: prereleases are never newest
        if key is None or (major is not None and key[0] != major):
            continue
        if isinstance(meta, dict) and meta.get("deprecated"):
            continue  # a withdrawn release is not one to move to
        found[key] = text
    if not found:
        within = f" in major {major}" if major is not None else ""
        raise SourceError(f"{url}: no stable release{within} listed")
    return found[max(found)]
