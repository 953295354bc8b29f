"""Every pin in extensions/pins.yml is used by something Slipway ships or runs.

An unused pin is a defect: nobody notices when it goes stale, and
`scripts/pins` spends its checks on it. "Used" means referenced by a
template, a partial, the stack registry, the extension, copier.yml or the
template repository's own scripts and workflows sources; tests do not count.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PINS = ROOT / "extensions" / "pins.yml"
# tests/support/cluster builds the deploy tests' control plane from the
# `cluster` pins: a tool of the template's own suite, like scripts/.
SOURCES = (
    "template",
    "partials",
    "scripts",
    "tests/support/cluster",
    "extensions/stacks.yml",
    "copier.yml",
    "Makefile",
)
# Pins kept for a stack that is being built on another branch: name -> why.
# Remove an entry once that stack is merged (test_reservations_are_still_needed).
RESERVED: dict[str, str] = {}


def source_text(root: Path = ROOT) -> str:
    texts = []
    for name in SOURCES:
        path = root / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts:
                continue
            try:
                texts.append(file.read_text(encoding="utf-8"))
            except UnicodeDecodeError:
                continue
    return "\n".join(texts)


def references(section: str, key: str) -> list[re.Pattern[str]]:
    """How templates and scripts name a pin."""
    if section == "actions":  # `'owner/repo[/path]' | uses`
        return [re.compile(rf"[\"']{re.escape(key)}(/[^\"']*)?[\"']\s*\|\s*uses\b")]
    quoted = rf"\[\s*[\"']{section}[\"']\s*\]\s*\[\s*[\"']{re.escape(key)}[\"']\s*\]"
    return [re.compile(rf"\b{section}\.{re.escape(key)}\b"), re.compile(quoted)]


def unused_pins(pins: dict[str, Any], text: str) -> list[str]:
    found = []
    for section, entries in pins.items():
        for key in entries or {}:
            if not any(p.search(text) for p in references(section, key)):
                found.append(f"{section}.{key}")
    return found


def test_every_pin_is_used() -> None:
    pins = yaml.safe_load(PINS.read_text(encoding="utf-8"))
    unused = [name for name in unused_pins(pins, source_text()) if name not in RESERVED]
    assert not unused, f"unused pins in {PINS.name} (remove them): {unused}"


def test_reservations_are_still_needed() -> None:
    pins = yaml.safe_load(PINS.read_text(encoding="utf-8"))
    unused = set(unused_pins(pins, source_text()))
    stale = [name for name in RESERVED if name not in unused]
    assert not stale, f"reserved pins are used now or gone; drop them from RESERVED: {stale}"


def test_a_planted_unused_pin_is_reported() -> None:
    pins = yaml.safe_load(PINS.read_text(encoding="utf-8"))
    pins["tools"]["planted_tool"] = "1.0.0"
    pins["actions"]["acme/planted"] = {"tag": "v1", "sha": "0" * 40}
    text = source_text()
    assert {"tools.planted_tool", "actions.acme/planted"} <= set(unused_pins(pins, text))
    # and a reference in any form counts as a use
    used = text + "\n{{ tools.planted_tool }} {{ 'acme/planted/sub' | uses }}\n"
    assert not {"tools.planted_tool", "actions.acme/planted"} & set(unused_pins(pins, used))
