"""Slipway's Copier extension: pinned data, derived values and safe-quoting filters.

Copier loads this module by path through copier-template-extensions, so it may
only import the standard library, Jinja and PyYAML (all of which Copier has).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from copier_template_extensions import ContextHook
from jinja2 import Environment

PINS_FILE = Path(__file__).with_name("pins.yml")

# (migration tool, stack) pairs whose service template exists. A choice not
# listed here is refused by its per-choice validator instead of rendering a
# half-built service.
AVAILABLE = frozenset({("alembic", "python"), ("prisma", "typescript")})

# Which stack each migration tool implies; golang-migrate is plain SQL and
# works with every stack (Go is its natural default).
STACKS_BY_TOOL = {
    "alembic": ("python",),
    "prisma": ("typescript",),
    "golang-migrate": ("go", "python", "typescript"),
}

# What the deploy manifests need from each stack's image: the migration
# command (the image's ENTRYPOINT runs the service, so the Job overrides it)
# and whether the runtime needs a writable /tmp under a read-only root.
STACK_DEPLOY = {
    "python": {
        "migrate_command": ["/app/.venv/bin/python", "-m", "alembic", "upgrade", "head"],
        "writable_tmp": True,
    },
    # The image's ENTRYPOINT is node itself (distroless); the Prisma CLI is a
    # production dependency so that the Job migrates from the same digest.
    "typescript": {
        "migrate_command": [
            "/nodejs/bin/node",
            "node_modules/prisma/build/index.js",
            "migrate",
            "deploy",
        ],
        "writable_tmp": True,
    },
}

# Kubernetes Service names are RFC 1035 labels (must start with a letter), and
# the slug is also the Python package name's source, so the stricter rule wins.
SLUG_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
SLUG_MAX = 40
# GitHub: alphanumerics and single hyphens, no leading/trailing hyphen, <= 39.
GITHUB_OWNER_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")

# Characters that start inline markup anywhere; block markers (#, -, +, 1.)
# only count at the start of a line, which md_text handles separately, so
# ordinary punctuation such as "." stays readable in the raw file.
_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
_MD_ORDERED = re.compile(r"^(\d{1,9})([.)])")


@cache
def load_pins(path: Path = PINS_FILE) -> dict[str, Any]:
    """Read the one data file of everything pinned."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


# --- validators (return "" when the answer is fine) -------------------------


def slugify(value: str) -> str:
    """A default slug: lowercase, runs of other characters become one hyphen."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-")
    slug = slug[:SLUG_MAX].rstrip("-")
    slug = re.sub(r"^[^a-z]+", "", slug)
    return slug or "service"


def slug_error(value: str) -> str:
    value = str(value)
    if not value:
        return "The project slug must not be empty."
    if len(value) > SLUG_MAX:
        return (
            f"The project slug '{value}' is {len(value)} characters long; at most "
            f"{SLUG_MAX} are allowed (it becomes Kubernetes names with suffixes)."
        )
    if not SLUG_RE.match(value):
        return (
            f"The project slug '{value}' is not a DNS-1123 label: use lowercase letters, "
            "digits and hyphens, start with a letter and end with a letter or digit "
            "(for example 'orders-api')."
        )
    return ""


def github_owner_error(value: str) -> str:
    value = str(value)
    if GITHUB_OWNER_RE.match(value):
        return ""
    return (
        f"'{value}' is not a valid GitHub user or organisation name: use 1 to 39 letters, "
        "digits or single hyphens, not starting or ending with a hyphen."
    )


def default_stack(migration_tool: str) -> str:
    return STACKS_BY_TOOL.get(str(migration_tool), ("python",))[0]


def stack_unavailable(migration_tool: str) -> str:
    """Per-choice validator: refuse a migration tool whose stacks are not built yet."""
    tool = str(migration_tool)
    if any((tool, stack) in AVAILABLE for stack in STACKS_BY_TOOL[tool]):
        return ""
    built = ", ".join(sorted({t for t, _ in AVAILABLE}))
    return (
        f"{tool} needs a {'/'.join(STACKS_BY_TOOL[tool])} service, which this template "
        f"version does not ship yet; choose one of: {built}."
    )


def stack_error(migration_tool: str, stack: str) -> str:
    allowed = STACKS_BY_TOOL.get(str(migration_tool), ())
    if stack not in allowed:
        return (
            f"{migration_tool} cannot be used with a {stack} service; "
            f"allowed: {', '.join(allowed)}."
        )
    if (migration_tool, stack) not in AVAILABLE:
        built = [s for t, s in sorted(AVAILABLE) if t == migration_tool]
        return (
            f"A {stack} service with {migration_tool} is not part of this template version "
            f"yet; available with {migration_tool}: {', '.join(built) or 'none'}."
        )
    return ""


# --- safe quoting -----------------------------------------------------------


def json_str(value: Any) -> str:
    """A JSON string literal (also a valid YAML double-quoted scalar)."""
    return json.dumps(str(value), ensure_ascii=False)


# JSON leaves these raw, but YAML readers reject them (DEL, C1 controls,
# U+FFFE/U+FFFF) or fold them as line breaks (NEL, U+2028/2029), and TOML
# rejects DEL; a \uXXXX escape means the same character in JSON, YAML and TOML.
_JSON_RAW_BUT_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _escape_unsafe(quoted: str) -> str:
    return _JSON_RAW_BUT_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def yaml_str(value: Any) -> str:
    """A YAML scalar that reads back as exactly `value`, whatever it contains."""
    return _escape_unsafe(json_str(value))


def toml_str(value: Any) -> str:
    """A TOML basic string. Not ensure_ascii: TOML has no surrogate pairs, so
    characters beyond U+FFFF must stay literal (UTF-8)."""
    return _escape_unsafe(json_str(value))


def md_text(value: Any) -> str:
    """Plain text for Markdown: markup characters escaped, HTML neutralised."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_INLINE.sub(r"\\\1", text)
    if ordered := _MD_ORDERED.match(text):
        return f"{ordered[1]}\\{ordered[2]}{text[ordered.end() :]}"
    if text[:1] in ("#", "-", "+", "="):
        return "\\" + text
    return text


def gha_safe(value: Any) -> str:
    """Text that GitHub Actions will not evaluate: break `${{` sequences."""
    return str(value).replace("${{", "$ {{")


# --- GitHub Actions pins ----------------------------------------------------

SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def uses(action: str) -> str:
    """The value of a `uses:` line, `owner/repo[/path]@<sha> # <tag>`, from the pins.

    Workflows never spell a SHA: Dependabot in generated repos and
    `scripts/pins` here update one place. A sub-action path (`owner/repo/path`)
    shares its repository's pin.
    """
    name = str(action)
    repo = "/".join(name.split("/")[:2])
    entry = load_pins().get("actions", {}).get(repo)
    if not entry:
        raise ValueError(f"action '{repo}' is not pinned: add it under `actions:` in {PINS_FILE}")
    sha = str(entry.get("sha", ""))
    if not SHA_RE.match(sha):
        raise ValueError(f"action '{repo}' in {PINS_FILE} has sha '{sha}', not a 40-hex commit")
    return f"{name}@{sha} # {entry['tag']}"


FILTERS = {
    "slugify": slugify,
    "slug_error": slug_error,
    "github_owner_error": github_owner_error,
    "default_stack": default_stack,
    "stack_unavailable": stack_unavailable,
    "stack_error": stack_error,
    "json_str": json_str,
    "yaml_str": yaml_str,
    "toml_str": toml_str,
    "md_text": md_text,
    "gha_safe": gha_safe,
    "uses": uses,
}


# --- derived context --------------------------------------------------------


def image_ref(entry: dict[str, Any]) -> str:
    """`name:tag@sha256:...` - readable tag, immutable digest."""
    return f"{entry['image']}:{entry['tag']}@{entry['digest']}"


def derive(context: dict[str, Any], pins: dict[str, Any]) -> dict[str, Any]:
    """Values computed from the answers and the pins, never asked."""
    slug = str(context.get("project_slug") or "service")
    stack = context.get("stack") or default_stack(str(context.get("migration_tool", "alembic")))
    images = {
        name: {**entry, "ref": image_ref(entry)} for name, entry in pins.get("images", {}).items()
    }
    return {
        "pins": pins,
        "stack": stack,
        "package_name": slug.replace("-", "_"),
        "runtime": pins.get("runtimes", {}).get(stack, {}),
        "stack_deploy": STACK_DEPLOY.get(stack, {}),
        "images": images,
        "tools": pins.get("tools", {}),
        "actions": pins.get("actions", {}),
    }


class SlipwayContext(ContextHook):
    """Adds the pins, derived values and filters to every render."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters.update(FILTERS)

    def hook(self, context: dict[str, Any]) -> None:
        context.update(derive(context, load_pins()))
