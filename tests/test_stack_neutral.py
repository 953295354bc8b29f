"""Shared templates never branch on the stack's name.

What differs per stack is registry data (extensions/stacks.yml, read through
`stack_profile`) or a fragment under partials/stacks/<stack>/; files of one
stack alone carry the condition in their path. So adding a stack is what
docs/maintaining.md's "Add a stack" says, and nothing in shared files.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `stack == 'go'`, `stack != "python"`, `stack in [...]`, `'go' == stack`.
BRANCH = re.compile(r"""\bstack\s*(?:==|!=|in\b)|['"]\s*(?:==|!=)\s*stack\b""")


def shared_files(root: Path) -> list[Path]:
    files = [root / "copier.yml"]
    for path in sorted((root / "template").rglob("*")):
        rel = path.relative_to(root / "template").as_posix()
        if path.is_file() and "stack" not in rel:  # a stack's own path names its stack
            files.append(path)
    for path in sorted((root / "partials").rglob("*")):
        if path.is_file() and "stacks" not in path.relative_to(root / "partials").parts:
            files.append(path)
    return files


def branches(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    return [
        f"{path.name}:{number}: {line.strip()[:100]}"
        for number, line in enumerate(text.splitlines(), 1)
        if BRANCH.search(line)
    ]


def test_shared_templates_do_not_branch_on_the_stack_name() -> None:
    found = [hit for path in shared_files(ROOT) for hit in branches(path)]
    assert not found, "put these differences in extensions/stacks.yml or a fragment:\n" + (
        "\n".join(found)
    )


def test_a_planted_branch_is_found(tmp_path: Path) -> None:
    planted = tmp_path / "README.md.jinja"
    planted.write_text("x {% if stack == 'go' %}Go{% endif %}\n{% if 'go' != stack %}{% endif %}\n")
    assert len(branches(planted)) == 2
