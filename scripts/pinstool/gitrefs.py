"""Tags of a remote git repository, annotated tags peeled to their commit."""

from __future__ import annotations

import os
import subprocess
import tempfile

GIT_TIMEOUT = 120  # seconds; a large repository's tag list can take a while


class SourceError(Exception):
    """An upstream could not be read; the message says which and why."""


def _git(*args: str, cwd: str | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # fail, never prompt for a login
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"git {args[0]} timed out after {GIT_TIMEOUT}s") from exc
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()
        raise SourceError(f"git {args[0]} failed: {detail[-1] if detail else result.returncode}")
    return result.stdout


def remote_tags(url: str) -> dict[str, str]:
    """tag name -> commit SHA. For an annotated tag ls-remote lists the tag
    object and then `name^{}` with the commit it points to; the commit wins."""
    tags: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in _git("ls-remote", "--tags", url).splitlines():
        sha, _, ref = line.partition("\t")
        if not ref.startswith("refs/tags/"):
            continue
        name = ref.removeprefix("refs/tags/")
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        else:
            tags[name] = sha
    return {name: peeled.get(name, sha) for name, sha in tags.items()}


def tag_commit_date(url: str, tag: str) -> str:
    """Committer date (YYYY-MM-DD) of the commit a remote tag points to, read
    from a depth-1 fetch of that tag alone."""
    with tempfile.TemporaryDirectory(prefix="pins-") as tmp:
        _git("init", "--quiet", "--bare", tmp)
        _git("fetch", "--quiet", "--depth=1", url, f"refs/tags/{tag}", cwd=tmp)
        return _git("log", "-1", "--format=%cs", "FETCH_HEAD^{commit}", cwd=tmp).strip()
