"""Compare each pin with upstream: one Finding per entry of pins.yml."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

from . import gitrefs, npm, oci, pypi
from .gitrefs import SourceError
from .sources import (
    BUMPED_WITH_IMAGE,
    CLUSTER_SOURCES,
    FOLLOWS_IMAGE,
    POLICY_KEYS,
    TOOL_SOURCES,
    GitTags,
    Npm,
    Pypi,
    companion_owner,
)
from .versions import newest_stable, stable_key

CURRENT, STALE, HIJACK, MANUAL, ERROR = "current", "stale", "HIJACK?", "manual", "error"


@dataclass(frozen=True)
class Config:
    git_base: str = "https://github.com/"
    registry_base: str | None = None  # None: each image's own registry
    pypi_base: str = pypi.PYPI_BASE
    npm_base: str = npm.NPM_BASE
    today: str = ""


@dataclass
class Finding:
    kind: str  # actions | images | tools | cluster
    name: str
    pinned: str
    upstream: str = ""
    status: str = CURRENT
    detail: str = ""
    updates: dict[str, str] = field(default_factory=dict)  # field -> new value


def repo_url(config: Config, repo: str) -> str:
    return f"{config.git_base.rstrip('/')}/{repo}"


def check_action(config: Config, name: str, row: Mapping[str, Any]) -> Finding:
    tag, sha = str(row.get("tag", "")), str(row.get("sha", ""))
    if not tag or not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise ValueError(f"actions.{name} needs a `tag` and a full 40-character commit `sha`")
    found = Finding("actions", name, f"{tag} {sha[:12]}")
    tags = gitrefs.remote_tags(repo_url(config, name))
    if tag in tags and tags[tag] != sha:
        # The tag we pinned now names another commit: someone moved it.
        found.status, found.upstream = HIJACK, f"{tag} {tags[tag][:12]}"
        found.detail = f"tag {tag} re-pointed from {sha} to {tags[tag]}: possible tag hijack"
        return found
    if tag not in tags:
        found.status, found.upstream = HIJACK, "(tag gone)"
        found.detail = f"pinned tag {tag} no longer exists upstream: deleted or rewritten"
        return found
    newest = newest_stable(tags, like=tag)
    if newest is None:
        raise SourceError(f"{name}: no stable release tag upstream")
    found.upstream = f"{newest} {tags[newest][:12]}"
    pinned_key, newest_key = stable_key(tag), stable_key(newest)
    if newest != tag and (
        pinned_key is None or (newest_key is not None and newest_key > pinned_key)
    ):
        found.status = STALE
        found.updates = {"tag": newest, "sha": tags[newest]}
    return found


def check_image(config: Config, name: str, row: Mapping[str, Any]) -> Finding:
    if not row.get("image") or not row.get("tag"):
        raise ValueError(f"images.{name} needs both `image` and `tag`")
    image, tag, digest = str(row["image"]), str(row["tag"]), str(row.get("digest", ""))
    found = Finding("images", name, f"{image}:{tag}@{digest[:19]}")
    current, media_type = oci.resolve_digest(image, tag, config.registry_base)
    found.upstream = f"{current[:19]} ({media_type or 'unknown type'})"
    found.updates = {
        "source": f"registry: {oci.manifest_url(image, tag, config.registry_base)}",
        "checked": config.today,
    }
    if current != digest:
        found.status = STALE
        found.updates["digest"] = current
    return found


def _bare(version: str, prefix: str = "") -> str:
    return version.removeprefix(prefix).removeprefix("v")


def _is_ahead(source: Pypi | GitTags | Npm, pinned: str, newest: str) -> bool:
    """Whether the pinned version sorts after upstream's newest (False when
    it cannot be compared: then it is stale like any other difference)."""
    if isinstance(source, Pypi):
        try:
            return Version(pinned) > Version(newest)
        except InvalidVersion:
            return False
    pinned_key, newest_key = stable_key(pinned), stable_key(newest)
    return pinned_key is not None and newest_key is not None and pinned_key > newest_key


def check_tool(config: Config, name: str, pinned: str, companions: list[str]) -> Finding:
    found = Finding("tools", name, pinned)
    source = TOOL_SOURCES[name]
    if isinstance(source, Pypi):
        newest = pypi.newest_release(source.project, config.pypi_base)
    elif isinstance(source, Npm):
        key = stable_key(_bare(pinned))
        major = key[0] if source.same_major and key is not None else None
        newest = npm.newest_release(source.package, config.npm_base, major)
    else:
        assert isinstance(source, GitTags)
        tags = gitrefs.remote_tags(repo_url(config, source.repo))
        tag = newest_stable(tags, source.prefix)
        if tag is None:
            raise SourceError(f"{source.repo}: no stable {source.prefix}vX.Y.Z tag")
        newest = _bare(tag, source.prefix)
    found.upstream = newest
    if _is_ahead(source, _bare(pinned), newest):
        # A pre-release or a since-withdrawn release: moving "up" to the
        # newest stable one would be a silent downgrade.
        found.status = MANUAL
        found.detail = (
            f"pinned {pinned} is newer than upstream's newest release {newest}; not changed"
        )
    elif _bare(pinned) != newest:
        value = f"v{newest}" if pinned.startswith("v") else newest
        if companions:
            found.status = MANUAL
            found.detail = f"refresh {', '.join(companions)} by hand, then set {name}: {value}"
        else:
            found.status = STALE
            found.updates = {name: value}
    return found


def check_cluster(config: Config, name: str, pinned: str, kubernetes_min: str) -> Finding:
    """A cluster pin moves to the newest patch of its minor on its own; a newer
    minor changes what the deploy tests prove, so a person bumps it."""
    found = Finding("cluster", name, pinned)
    source = CLUSTER_SOURCES.get(name)
    if source is None:
        raise SourceError(
            f"no upstream known for cluster.{name}: add it to scripts/pinstool/sources.py"
        )
    pinned_key = stable_key(pinned)
    if pinned_key is None:
        raise ValueError(f"cluster.{name} must be a release version like v1.2.3, not {pinned!r}")
    tags = gitrefs.remote_tags(repo_url(config, source.repo))
    if source.same_major:
        tags = {t: sha for t, sha in tags.items() if (stable_key(t) or ())[:1] == pinned_key[:1]}
    newest = newest_stable(tags, like=pinned)
    if newest is None:
        raise SourceError(f"{source.repo}: no stable vX.Y.Z tag")
    found.upstream = _bare(newest)
    newest_key = stable_key(newest) or pinned_key
    same_minor = newest_stable(
        (tag for tag in tags if (stable_key(tag) or ())[:2] == pinned_key[:2]), like=pinned
    )
    same_minor_key = stable_key(same_minor or "") or pinned_key
    if name == "kubernetes" and ".".join(map(str, pinned_key[:2])) != kubernetes_min:
        # The test cluster is the oldest Kubernetes the manifests support.
        found.status = MANUAL
        found.detail = f"must be a {kubernetes_min} release (tools.kubernetes_min), not {pinned}"
    elif same_minor is not None and same_minor_key > pinned_key:
        found.status, found.updates = STALE, {name: same_minor}
        found.upstream = _bare(same_minor)
    elif newest_key > pinned_key:
        found.status = MANUAL
        found.detail = (
            f"{newest} is a newer minor: bump by hand and run the deploy tests "
            "(the cluster cache is keyed on versions)"
        )
    return found


# (section, name, pinned value as shown, check function, its arguments)
Job = tuple[str, str, str, Callable[..., Finding], tuple[Any, ...]]


def plan(data: Mapping[str, Any], only: set[str]) -> list[Job]:
    """Every check to run."""
    jobs: list[Job] = []
    if "actions" in only:
        for name, row in (data.get("actions") or {}).items():
            shown = f"{row.get('tag', '')} {str(row.get('sha', ''))[:12]}"
            jobs.append(("actions", name, shown, check_action, (name, row)))
    if "images" in only:
        for name, row in (data.get("images") or {}).items():
            shown = f"{row.get('image', '')}:{row.get('tag', '')}"
            jobs.append(("images", name, shown, check_image, (name, row)))
    if "tools" in only:
        tools: Mapping[str, Any] = data.get("tools") or {}
        names = {key for key in tools if key in TOOL_SOURCES}
        for key, value in tools.items():
            if key in TOOL_SOURCES:
                companions = [k for k in tools if companion_owner(k, names) == key]
                image = FOLLOWS_IMAGE.get(key) or BUMPED_WITH_IMAGE.get(key)
                if image in (data.get("images") or {}):
                    companions.append(f"images.{image} (tag and digest)")
                jobs.append(("tools", key, str(value), check_tool, (key, str(value), companions)))
            elif key not in POLICY_KEYS and companion_owner(key, names) is None:
                jobs.append(("tools", key, str(value), _unknown_tool, (key, str(value))))
    if "cluster" in only:
        kubernetes_min = str((data.get("tools") or {}).get("kubernetes_min", ""))
        for key, value in (data.get("cluster") or {}).items():
            args = (key, str(value), kubernetes_min)
            jobs.append(("cluster", key, str(value), check_cluster, args))
    return jobs


def _unknown_tool(config: Config, name: str, value: str) -> Finding:
    raise SourceError(f"no upstream known for tools.{name}: add it to scripts/pinstool/sources.py")


def run_all(config: Config, data: Mapping[str, Any], only: set[str]) -> list[Finding]:
    jobs = plan(data, only)

    def run(job: Job) -> Finding:
        kind, name, shown, function, args = job
        try:
            return function(config, *args)
        except (SourceError, ValueError) as exc:
            return Finding(kind, name, shown, status=ERROR, detail=str(exc))

    # Network-bound: a few lookups at a time keeps a full check to seconds.
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(run, jobs))
