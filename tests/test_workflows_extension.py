"""The `uses` filter: every `uses:` line of the workflows comes from the pins."""

from __future__ import annotations

import re

import pytest

from extensions import slipway
from extensions.slipway import load_pins, uses


def test_uses_renders_the_pinned_sha_and_its_tag() -> None:
    entry = load_pins()["actions"]["actions/checkout"]
    assert uses("actions/checkout") == f"actions/checkout@{entry['sha']} # {entry['tag']}"


def test_uses_pins_a_sub_action_with_its_repository() -> None:
    # Any pinned repository (actions such as github/codeql-action/init live
    # in a sub-folder of theirs).
    repo, entry = next(iter(load_pins()["actions"].items()))
    assert uses(f"{repo}/init") == f"{repo}/init@{entry['sha']} # {entry['tag']}"


def test_uses_refuses_an_action_that_is_not_pinned() -> None:
    with pytest.raises(
        ValueError, match=r"'nobody/unpinned' is not pinned: add it under `actions:`"
    ):
        uses("nobody/unpinned")


def test_uses_refuses_a_pin_that_is_not_a_full_commit_sha(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pins = {"actions": {"acme/moving": {"tag": "v1", "sha": "v1"}}}
    monkeypatch.setattr(slipway, "load_pins", lambda: pins)
    with pytest.raises(ValueError, match="not a 40-hex commit"):
        uses("acme/moving")


def test_every_pinned_action_is_a_full_sha_with_a_tag() -> None:
    for name, entry in load_pins()["actions"].items():
        assert re.fullmatch(r"[0-9a-f]{40}", str(entry["sha"])), name
        assert re.fullmatch(r"v?\d+(\.\d+)*", str(entry["tag"])), name
