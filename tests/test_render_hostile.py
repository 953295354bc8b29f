"""A description full of hostile punctuation lands literally and is never evaluated."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt

from extensions.slipway import gha_safe
from tests.support.answers import evaluate, render_context

pytestmark = pytest.mark.xdist_group("render")

SENTINEL = "SentinelQX7"  # no punctuation, so it survives every kind of escaping
HOSTILE = (
    f"{SENTINEL} \"dq\" 'sq' back\\slash {{{{ 7*7 }}}} {{% if 1 %}}x{{% endif %}} "
    "${{ github.token }} $(id) `tick` # hash: colon - dash <script>alert(1)</script> "
    "&amp; *em* _u_ [link](http://x) | pipe ~tilde~ \t tab Zoë ☃ 名前 🚀 end"
)
WORKFLOW_EVALUATED_KEYS = {"run", "script"}  # shell and actions/github-script bodies
USES_DESCRIPTION = re.compile(r"(\{\{|\{%)[^}%]*\bdescription\b")


@pytest.fixture(scope="module")
def hostile(render: Any) -> Path:
    return Path(render(description=HOSTILE))


@pytest.fixture(scope="module")
def plain(render: Any) -> Path:
    return Path(render())


def _files_using_description(root: Path, template: Path) -> list[Path]:
    """Rendered files whose template source uses the `description` answer."""
    context = render_context(root / ".copier-answers.yml")
    found = []
    for source in template.rglob("*.jinja"):
        if not USES_DESCRIPTION.search(source.read_text(encoding="utf-8")):
            continue
        rel = source.relative_to(template)
        names = [*rel.parts[:-1], rel.name.removesuffix(".jinja")]
        parts = [evaluate(name, context) for name in names]
        if all(parts):
            found.append(root / Path(*parts))
    return sorted(found)


def _strings(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    if isinstance(node, dict):
        out = [(path, str(k)) for k in node]
        for key, value in node.items():
            out += _strings(value, (*path, key))
        return out
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in _strings(v, (*path, i))]
    return [(path, node)] if isinstance(node, str) else []


def _shape(node: Any, path: tuple[Any, ...] = ()) -> set[tuple[Any, ...]]:
    if isinstance(node, dict):
        return {(*path, k) for k in node} | {
            p for k, v in node.items() for p in _shape(v, (*path, k))
        }
    if isinstance(node, list):
        return {p for i, v in enumerate(node) for p in _shape(v, (*path, i))}
    return set()


def _load(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix in {".yml", ".yaml"}:
        return list(yaml.safe_load_all(text))
    if path.suffix == ".toml":
        return [tomllib.loads(text)]
    return [json.loads(text)]


def _check_structured(path: Path, plain_path: Path, in_github: bool) -> None:
    docs = _load(path)
    strings = _strings(docs)
    # in GitHub files the filter gha_safe breaks `${{` (and only that)
    expected = gha_safe(HOSTILE) if in_github else HOSTILE
    assert any(expected in v for _, v in strings), f"{path.name}: not one literal string value"
    # no key appeared, vanished or moved: nothing in the text was read as syntax
    assert _shape(docs) == _shape(_load(plain_path)), f"{path.name}: structure changed"
    if in_github:
        for where, value in strings:
            if SENTINEL not in value:
                continue
            assert "${{" not in value, f"{path.name}: evaluable expression at {where}"
            keys = {k for k in where if isinstance(k, str)}
            assert not keys & WORKFLOW_EVALUATED_KEYS, f"{path.name}: inside {where}"


def _check_markdown(path: Path) -> None:
    tokens = (
        MarkdownIt("commonmark")
        .enable("table")
        .enable("strikethrough")
        .parse(path.read_text(encoding="utf-8"))
    )
    inline = [t for t in tokens if t.type == "inline" and SENTINEL in t.content]
    assert inline, f"{path.name}: the description is not in a text block"
    for token in inline:
        kinds = {child.type for child in token.children or []}
        assert kinds <= {"text", "text_special", "softbreak"}, f"{path.name}: markup {kinds}"
        text = "".join(child.content for child in token.children or [])
        assert " ".join(HOSTILE.split()) in " ".join(text.split()), f"{path.name}: {text!r}"
    html = MarkdownIt("commonmark").render(path.read_text(encoding="utf-8"))
    assert "<script" not in html


def _check_python(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    assert HOSTILE in constants, f"{path.name}: not one string literal"


def test_description_lands_literally_in_every_file_that_uses_it(
    hostile: Path, plain: Path, template_snapshot: Path
) -> None:
    using = _files_using_description(hostile, template_snapshot / "template")
    assert using, "no template uses the description"
    for path in using:
        rel = path.relative_to(hostile)
        in_github = rel.parts[0] == ".github"
        if path.suffix in {".yml", ".yaml", ".toml", ".json"}:
            _check_structured(path, plain / rel, in_github)
        elif path.suffix == ".md":
            _check_markdown(path)
        elif path.suffix == ".py":
            _check_python(path)
        else:
            pytest.fail(f"{rel}: the description lands in a format this test cannot check")


def test_description_appears_only_where_checked(hostile: Path, template_snapshot: Path) -> None:
    using = set(_files_using_description(hostile, template_snapshot / "template"))
    for path in sorted(p for p in hostile.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8")
        if path.name == ".copier-answers.yml":
            assert yaml.safe_load(text)["description"] == HOSTILE
            continue
        if SENTINEL in text:
            assert path in using, f"{path.relative_to(hostile)} has the description unchecked"
