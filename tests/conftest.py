"""Shared fixtures: one template snapshot, cached renders, one PostgreSQL."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import run_copy

from tests.support.postgres import PostgresServer, start_postgres

ROOT = Path(__file__).resolve().parent.parent


def _questions() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "copier.yml").read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


QUESTIONS = _questions()


@pytest.fixture(scope="session")
def template_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree's template as a plain folder (no git), rendered as is.

    Copier would otherwise clone the repository for every render and use the
    latest tag; a snapshot is faster and always shows the change under test.
    """
    dst = tmp_path_factory.mktemp("template")
    shutil.copy2(ROOT / "copier.yml", dst / "copier.yml")
    shutil.copytree(ROOT / "template", dst / "template")
    shutil.copytree(
        ROOT / "extensions", dst / "extensions", ignore=shutil.ignore_patterns("__pycache__")
    )
    return dst


RenderFn = Callable[..., Path]


@pytest.fixture(scope="session")
def render(template_snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> RenderFn:
    """Render once per distinct set of answers; later calls reuse the result.

    Callers must treat the returned folder as read-only (copy it first to
    change anything).
    """
    cache: dict[str, Path] = {}

    def _render(**answers: Any) -> Path:
        unknown = set(answers) - set(QUESTIONS)
        assert not unknown, f"answers not in copier.yml: {sorted(unknown)}"
        key = json.dumps(answers, sort_keys=True)
        if key not in cache:
            dst = tmp_path_factory.mktemp("render")
            run_copy(
                str(template_snapshot),
                str(dst),
                data=answers,
                defaults=True,
                unsafe=True,
                quiet=True,
            )
            cache[key] = dst
        return cache[key]

    return _render


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A PostgreSQL for the session: DATABASE_URL's if set, else a throwaway one."""
    with start_postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server
