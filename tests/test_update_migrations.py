"""extensions/migrations.py: version windows, answer rewrites, clear refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version

from extensions.migrations import (
    STEPS_FILE,
    MigrationError,
    Step,
    apply_steps,
    load_steps,
    main,
    parse_steps,
    select_steps,
)

HEADER = "# Changes here will be overwritten by Copier; NEVER EDIT MANUALLY\n"
STEPS = parse_steps(
    {
        "steps": [
            {"version": "0.3.0", "values": {"registry": {"gcr": "gar"}}},
            {"version": "0.2.0", "rename": {"rollout_strategy": "deploy_strategy"}},
            {"version": "0.5.0rc1", "rename": {"cloud": "cluster"}},
        ]
    }
)


def versions(steps: list[Step]) -> list[str]:
    return [str(s.version) for s in steps]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("0.1.0", "0.2.0", ["0.2.0"]),
        ("0.1.0", "0.3.0", ["0.2.0", "0.3.0"]),  # oldest first
        ("0.2.0", "0.3.0", ["0.3.0"]),  # 0.2.0's step already ran
        ("0.2.0", "0.2.0", []),  # re-applying a release (e.g. --data) runs nothing
        ("0.3.0", "0.4.0", []),
        ("0.4.0", "0.5.0rc1", ["0.5.0rc1"]),  # a pre-release that ships the change
        ("0.5.0rc1", "0.5.0", []),  # ... does not run it again at the final release
        ("0.4.0", "0.5.0", ["0.5.0rc1"]),
        ("0.1.0", "0.2.0.post1.dev3+g1234abc", ["0.2.0"]),  # untagged template commit
    ],
)
def test_steps_run_once_in_their_version_window(old: str, new: str, expected: list[str]) -> None:
    assert versions(select_steps(STEPS, Version(old), Version(new))) == expected


def test_a_rename_keeps_the_old_answer() -> None:
    answers: dict[str, Any] = {"rollout_strategy": "canary", "registry": "gcr"}
    changes = apply_steps(answers, select_steps(STEPS, Version("0.1.0"), Version("0.5.0")))
    assert answers == {"deploy_strategy": "canary", "registry": "gar"}
    assert changes == [
        "0.2.0: renamed answer 'rollout_strategy' to 'deploy_strategy'",
        "0.3.0: 'registry' value 'gcr' is now 'gar'",
    ]


def test_an_explicit_new_answer_wins_over_the_old_one() -> None:
    answers: dict[str, Any] = {"rollout_strategy": "canary", "deploy_strategy": "blue-green"}
    changes = apply_steps(answers, select_steps(STEPS, Version("0.1.0"), Version("0.2.0")))
    assert answers == {"deploy_strategy": "blue-green"}
    assert changes == ["0.2.0: dropped 'rollout_strategy' ('deploy_strategy' is already answered)"]


def test_a_hand_edited_non_scalar_answer_is_left_for_copier_to_refuse() -> None:
    answers: dict[str, Any] = {"registry": ["gcr"], "deploy_strategy": {"x": 1}}
    steps = [Step(Version("0.3.0"), values={"registry": {"gcr": "gar"}, "deploy_strategy": {}})]
    assert apply_steps(answers, steps) == []
    assert answers == {"registry": ["gcr"], "deploy_strategy": {"x": 1}}


def test_nothing_to_do_changes_nothing() -> None:
    answers: dict[str, Any] = {"deploy_strategy": "canary", "registry": "ecr"}
    assert apply_steps(answers, STEPS) == []
    assert answers == {"deploy_strategy": "canary", "registry": "ecr"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a mapping"),
        ({"steps": {"version": "1"}}, "`steps` must be a list"),
        ({"steps": [{"rename": {"a": "b"}}]}, r"steps\[0\]: `version` is required"),
        ({"steps": [{"version": "one", "rename": {"a": "b"}}]}, "'one' is not a PEP 440"),
        ({"steps": [{"version": "1.0"}]}, "needs `rename` or `values`"),
        # `version: 0.10` unquoted: YAML makes it 0.1, a different window.
        ({"steps": [{"version": 0.10, "rename": {"a": "b"}}]}, r"quoted string \(YAML read 0\.1\)"),
        ({"steps": [{"version": "1.0", "renames": {"a": "b"}}]}, r"unknown keys \['renames'\]"),
        ({"steps": [{"version": "1.0", "values": {"a": "b"}}]}, r"values\.a: expected a mapping"),
    ],
)
def test_a_broken_steps_file_is_refused_with_a_reason(data: Any, message: str) -> None:
    with pytest.raises(MigrationError, match=message):
        parse_steps(data)


def test_the_shipped_steps_file_is_valid() -> None:
    load_steps(STEPS_FILE)


def _answers_file(tmp_path: Path, answers: dict[str, Any]) -> Path:
    path = tmp_path / ".copier-answers.yml"
    path.write_text(HEADER + yaml.safe_dump(answers))
    return path


def _steps_file(tmp_path: Path) -> Path:
    path = tmp_path / "steps.yml"
    path.write_text(yaml.safe_dump({"steps": [{"version": "0.2.0", "rename": {"old": "new"}}]}))
    return path


def test_cli_rewrites_the_answers_file_keeping_its_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = _answers_file(tmp_path, {"_commit": "0.1.0", "old": "x", "other": 1})
    steps = _steps_file(tmp_path)
    assert main(["--from", "0.1.0", "--to", "0.2.0", "--steps", str(steps), str(answers)]) == 0
    text = answers.read_text()
    assert text.startswith(HEADER)
    assert yaml.safe_load(text) == {"_commit": "0.1.0", "new": "x", "other": 1}
    assert "renamed answer 'old' to 'new'" in capsys.readouterr().err


def test_cli_leaves_the_file_alone_outside_the_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = _answers_file(tmp_path, {"_commit": "0.2.0", "old": "x"})
    before = answers.read_text()
    steps = _steps_file(tmp_path)
    assert main(["--from", "0.2.0", "--to", "0.3.0", "--steps", str(steps), str(answers)]) == 0
    assert answers.read_text() == before
    assert "0.2.0 -> 0.3.0: nothing to migrate" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "latest", "--to", "0.2.0"], "--from: 'latest' is not a PEP 440 version"),
        (["--from", "0.1.0", "--to", "0.2.0", "missing.yml"], "No such file"),
        (["--from", "0.1.0", "--to", "0.2.0", "latin1.yml"], "can't decode"),
    ],
)
def test_cli_refuses_bad_input_with_a_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    answers = _answers_file(tmp_path, {"a": 1})
    argv = [*args] if args[-1].endswith(".yml") else [*args, str(answers)]
    (tmp_path / "latin1.yml").write_bytes(b"project_name: Caf\xe9\n")  # a hand edit, not UTF-8
    argv = [str(tmp_path / a) if a in {"missing.yml", "latin1.yml"} else a for a in argv]
    done = subprocess.run(
        [sys.executable, str(STEPS_FILE.with_name("migrations.py")), *argv],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "slipway answer migrations failed" in done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
