"""Links inside a generated repo's Markdown go somewhere: every relative file
link names a rendered file, every `#anchor` a heading of its target page
(GitHub's slugs), for each stack."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conformance.stacks import STACKS
from tests.conftest import RenderFn

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8")))}


def broken_links(root: Path) -> list[str]:
    problems = []
    for page in sorted([root / "README.md", *root.glob("docs/*.md")]):
        text = FENCE.sub("", page.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(root)}: ({target})"
            if not linked.exists():
                problems.append(f"{where} names a file the render does not have")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"{where} names no heading of {linked.name}")
    return problems


def test_slugs_follow_github() -> None:
    assert slug("The API contract") == "the-api-contract"
    assert slug("`make ci`: what it runs (and why)") == "make-ci-what-it-runs-and-why"


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_every_relative_link_resolves(stack: str, render: RenderFn, tmp_path: Path) -> None:
    root = render(**STACKS[stack].answers)
    assert broken_links(root) == []
    # Proven red: a link to a heading that does not exist.
    planted = tmp_path / "repo"
    (planted / "docs").mkdir(parents=True)
    (planted / "README.md").write_text("# Title\n\nSee [gone](docs/api.md#nowhere).\n")
    (planted / "docs" / "api.md").write_text("# API\n")
    assert broken_links(planted) == ["README.md: (docs/api.md#nowhere) names no heading of api.md"]
