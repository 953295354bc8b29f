"""Round-trip pins.yml: values change, comments, order and quoting stay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, ScalarString


def _yaml() -> YAML:
    handler = YAML(typ="rt")
    handler.preserve_quotes = True
    handler.width = 4096  # never re-wrap a long `source:` line
    handler.indent(mapping=2, sequence=4, offset=2)
    return handler


def load(path: Path) -> CommentedMap:
    data = _yaml().load(path.read_text(encoding="utf-8"))
    if not isinstance(data, CommentedMap):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def dump(data: CommentedMap, path: Path) -> None:
    # Write next to the file and rename: a crash never leaves half a pins.yml.
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        _yaml().dump(data, out)
    tmp.replace(path)


def set_value(mapping: CommentedMap, key: str, value: str) -> None:
    """Replace a string value in the old value's quoting style; quote it when a
    plain scalar would read back as something else (a date, a float)."""
    old: Any = mapping.get(key)
    if isinstance(old, ScalarString):
        new: str = type(old)(value)
    elif pyyaml.safe_load(value) != value:
        new = DoubleQuotedScalarString(value)
    else:
        new = value
    mapping[key] = new
