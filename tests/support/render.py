"""Render a template folder once per distinct answer set (a per-session cache)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from copier import run_copy

from tests.support.answers import QUESTIONS

RenderFn = Callable[..., Path]


def renderer(template: Path, workdir: Callable[[], Path]) -> RenderFn:
    """A render function for `template`; `workdir()` gives a fresh empty folder.

    Callers must treat the returned folder as read-only (copy it first to
    change anything).
    """
    cache: dict[str, Path] = {}

    def _render(**answers: Any) -> Path:
        unknown = set(answers) - set(QUESTIONS)
        assert not unknown, f"answers not in copier.yml: {sorted(unknown)}"
        key = json.dumps(answers, sort_keys=True)
        if key not in cache:
            dst = workdir()
            run_copy(str(template), str(dst), data=answers, defaults=True, unsafe=True, quiet=True)
            cache[key] = dst
        return cache[key]

    return _render
