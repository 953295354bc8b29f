"""A stack's other (tool, stack) pairs run its first pair's service code.

That is what lets them run only the schema-dependent conformance modules
(`EVERY_PAIR` in tests/conformance/conftest.py): what they serve over HTTP
comes from the same code and the same dependency versions, so only the schema
their migrations build can make them answer differently.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from extensions.slipway import load_stacks
from tests.conformance.stacks import STACKS
from tests.conftest import RenderFn

OTHER_PAIRS = sorted(key for key, stack in STACKS.items() if key != stack.name)


def code_files(root: Path, stack: str) -> dict[str, bytes]:
    """The service's own code: its service-owned paths but its tests."""
    files: dict[str, bytes] = {}
    for owned in load_stacks()["stacks"][stack]["service_owned"]:
        if owned.rstrip("/") == "tests":
            continue
        path = root / owned
        found = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in (f for f in found if f.is_file()):
            files[str(file.relative_to(root))] = file.read_bytes()
    return files


def locked_versions(lock: Path) -> dict[str, str]:
    """Package → version from a uv.lock or package-lock.json (a stack whose
    lock is another kind gets a parser with its first second pair)."""
    text = lock.read_text(encoding="utf-8")
    if lock.name == "uv.lock":
        return {p["name"]: p["version"] for p in tomllib.loads(text)["package"] if "version" in p}
    if lock.name == "package-lock.json":
        packages = json.loads(text)["packages"]
        return {name: p["version"] for name, p in packages.items() if name and "version" in p}
    raise AssertionError(f"no parser for {lock.name}")


def differences(mine: Path, first: Path, stack: str) -> list[str]:
    """Where a pair's render departs from its stack's first pair in what it serves."""
    code, first_code = code_files(mine, stack), code_files(first, stack)
    found = [
        f"service code: {path}"
        for path in sorted(code.keys() | first_code.keys())
        if code.get(path) != first_code.get(path)
    ]
    for lock in load_stacks()["stacks"][stack]["locks"]:
        versions, first_versions = locked_versions(mine / lock), locked_versions(first / lock)
        found += [
            f"{lock}: {name} {versions[name]} (first pair: {first_versions[name]})"
            for name in sorted(versions.keys() & first_versions.keys())
            if versions[name] != first_versions[name]
        ]
    return found


@pytest.mark.parametrize("pair", OTHER_PAIRS)
def test_another_pair_serves_the_same_code_and_dependencies(pair: str, render: RenderFn) -> None:
    stack = STACKS[pair].name
    mine, first = render(**STACKS[pair].answers), render(**STACKS[stack].answers)
    assert code_files(mine, stack), f"{pair}: no service code found"
    assert differences(mine, first, stack) == []


@pytest.mark.parametrize("pair", OTHER_PAIRS)
def test_a_changed_file_or_version_is_reported(pair: str, render: RenderFn, tmp_path: Path) -> None:
    stack = STACKS[pair].name
    mine = tmp_path / "pair"
    shutil.copytree(render(**STACKS[pair].answers), mine)
    source = next(p for p in sorted(code_files(mine, stack)) if p.startswith("src/"))
    (mine / source).write_text((mine / source).read_text() + "\n// planted\n")
    first = render(**STACKS[stack].answers)
    name = load_stacks()["stacks"][stack]["locks"][0]
    lock, text = mine / name, (mine / name).read_text()
    common = locked_versions(lock).keys() & locked_versions(first / name).keys()
    # a shared package whose version string occurs once: the edit hits that entry
    version = next(
        v
        for p, v in sorted(locked_versions(lock).items())
        if p in common and text.count(f'"{v}"') == 1
    )
    lock.write_text(text.replace(f'"{version}"', '"0.0.0-planted"'))
    found = differences(mine, first, stack)
    assert f"service code: {source}" in found, found
    assert any(line.startswith(f"{lock.name}: ") and "0.0.0-planted" in line for line in found), (
        found
    )
