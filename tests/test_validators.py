"""Invalid answers are refused by copier with the validator's message, writing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from copier import run_copy

from extensions.slipway import available_pairs, stacks_by_tool

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    # (id, answers, fragments the message must contain)
    ("name-empty", {"project_name": "   "}, ["project name must not be empty"]),
    ("slug-empty", {"project_slug": ""}, ["slug must not be empty"]),
    ("slug-too-long", {"project_slug": "a" * 41}, ["41 characters", "at most 40"]),
    ("slug-uppercase", {"project_slug": "Orders-api"}, ["'Orders-api'", "DNS-1123"]),
    ("slug-leading-digit", {"project_slug": "9lives"}, ["'9lives'", "start with a letter"]),
    ("slug-trailing-hyphen", {"project_slug": "orders-"}, ["'orders-'", "end with a letter"]),
    ("slug-underscore", {"project_slug": "orders_api"}, ["'orders_api'", "DNS-1123"]),
    ("slug-space", {"project_slug": "orders api"}, ["DNS-1123"]),
    (
        "owner-leading-hyphen",
        {"github_owner": "-acme"},
        ["'-acme'", "not starting or ending with a hyphen"],
    ),
    ("owner-trailing-hyphen", {"github_owner": "acme-"}, ["'acme-'", "not a valid GitHub"]),
    ("owner-double-hyphen", {"github_owner": "ac--me"}, ["'ac--me'", "single hyphens"]),
    ("owner-too-long", {"github_owner": "a" * 40}, ["not a valid GitHub", "1 to 39"]),
    ("owner-bad-chars", {"github_owner": "ac_me!"}, ["'ac_me!'", "letters, digits"]),
    ("owner-empty", {"github_owner": ""}, ["not a valid GitHub"]),
    (
        "platform-team-without-at",
        {"platform_team": "acme/platform"},
        ["'acme/platform' is not a GitHub team or user handle", "use @<org>/<team> or @<login>"],
    ),
    (
        "platform-team-of-another-org",
        {"platform_team": "@evil/platform"},
        ["belongs to 'evil'", "only teams of the repository's owner 'acme'", "@acme/<team>"],
    ),
    ("platform-team-empty", {"platform_team": ""}, ["is not a GitHub team or user handle"]),
    ("platform-team-space", {"platform_team": "@acme/plat form"}, ["e.g. @acme/platform"]),
    ("platform-team-nested", {"platform_team": "@acme/a/b"}, ["not a GitHub team or user"]),
    ("description-empty", {"description": "  "}, ["description must not be empty"]),
    ("description-too-long", {"description": "x" * 301}, ["301 characters", "at most 300"]),
    (
        "alembic-with-go",
        {"migration_tool": "alembic", "stack": "go"},
        ["alembic cannot be used with a go service", "allowed: python"],
    ),
    (
        "alembic-with-typescript",
        {"migration_tool": "alembic", "stack": "typescript"},
        ["alembic cannot be used with a typescript service"],
    ),
    ("unknown-tool", {"migration_tool": "flyway"}, ["'flyway' is not in"]),
    ("unknown-registry", {"registry": "quay"}, ["'quay' is not in"]),
    ("unknown-strategy", {"deploy_strategy": "rolling"}, ["'rolling' is not in"]),
]


def _unshipped() -> list[tuple[str, dict[str, Any], list[str]]]:
    """Every (tool, stack) pair the registry does not ship yet is refused, naming
    the stacks the tool ships with, or the tools that do ship if it has none."""
    shipped = sorted({tool for tool, _ in available_pairs()})
    cases = []
    for tool, stacks in stacks_by_tool().items():
        built = sorted(s for t, s in available_pairs() if t == tool)
        for stack in stacks:
            if (tool, stack) not in available_pairs():
                answers = {"migration_tool": tool, **({"stack": stack} if len(stacks) > 1 else {})}
                named = [stack, f"available with {tool}: {', '.join(built)}"] if built else shipped
                cases.append((f"{tool}-{stack}-unshipped", answers, [tool, *named]))
    return cases


CASES += _unshipped()


@pytest.mark.parametrize(
    ("answers", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_invalid_answer_is_refused_with_its_message(
    template_snapshot: Path, tmp_path: Path, answers: dict[str, Any], fragments: list[str]
) -> None:
    dst = tmp_path / "out"
    with pytest.raises(ValueError) as refused:
        run_copy(
            str(template_snapshot), str(dst), data=answers, defaults=True, unsafe=True, quiet=True
        )
    message = str(refused.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert not dst.exists() or not any(dst.iterdir()), "files were written before the refusal"


@pytest.mark.parametrize(
    "answers",
    [
        {"project_slug": "a" * 40},
        {"github_owner": "a" * 39},
        {"description": "x" * 300},
        {"project_name": "Ünïcode ☃ Service"},
        {"github_owner": "Acme", "platform_team": "@acme/Platform_Ops"},
    ],
    ids=["slug-40", "owner-39", "description-300", "unicode-name", "team-case-insensitive"],
)
def test_answers_at_the_limits_are_accepted(render: Any, answers: dict[str, Any]) -> None:
    assert (render(**answers) / ".copier-answers.yml").is_file()
