"""Render a template folder once per distinct answer set (a per-session cache)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from copier import run_copy

from tests.support.answers import QUESTIONS, context_for

RenderFn = Callable[..., Path]


def tree_digest(root: Path) -> str:
    """A short digest of every file's path and bytes under `root`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def renderer(
    template: Path,
    workdir: Callable[[], Path],
    shared: Path | None = None,
    *,
    current: bool = False,
) -> RenderFn:
    """A render function for `template`; `workdir()` gives a fresh empty folder.

    With `shared` (a folder every xdist worker of this run sees, for the same
    template), a render one worker made is reused by the others instead of
    rendered again. `current`: `template` is the working tree's, whose
    copier.yml decides the defaults, so answer sets that differ only by naming
    a default share one render. Callers must treat the returned folder as
    read-only (copy it first to change anything).
    """
    cache: dict[str, Path] = {}

    def _render(**answers: Any) -> Path:
        unknown = set(answers) - set(QUESTIONS)
        assert not unknown, f"answers not in copier.yml: {sorted(unknown)}"
        key = json.dumps(context_for(answers) if current else answers, sort_keys=True, default=str)
        if key not in cache:
            cache[key] = _shared(shared, key, answers) if shared else _fresh(workdir(), answers)
        return cache[key]

    def _fresh(dst: Path, answers: dict[str, Any]) -> Path:
        run_copy(str(template), str(dst), data=answers, defaults=True, unsafe=True, quiet=True)
        return dst

    def _shared(store: Path, key: str, answers: dict[str, Any]) -> Path:
        store.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        dst, done = store / digest, store / f"{digest}.done"
        # One worker renders while the others wait for it (a render takes a
        # second or two; rendering it again would cost the same).
        with (store / f"{digest}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                shutil.rmtree(dst, ignore_errors=True)  # a render cut short
                dst.mkdir()
                _fresh(dst, answers)
                done.touch()
        return dst

    return _render
