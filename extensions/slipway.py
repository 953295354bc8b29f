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

STACKS_FILE = Path(__file__).with_name("stacks.yml")
ROLLOUT_FILE = Path(__file__).with_name("rollout.yml")

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


@cache
def load_rollout(path: Path = ROLLOUT_FILE) -> dict[str, Any]:
    """Canary steps per environment and analysis settings (extensions/rollout.yml)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not {"canary", "analysis", "deadlines", "blue_green"} <= set(
        data
    ):
        raise ValueError(
            f"{path}: expected `canary:`, `analysis:`, `deadlines:` and `blue_green:` mappings"
        )
    for env, steps in data["canary"].items():
        for step in steps:
            if step not in ("analysis", "gate") and not (
                isinstance(step, dict) and len(step) == 1 and {*step} <= {"weight", "pause"}
            ):
                raise ValueError(f"{path}: canary.{env} has an unknown step {step!r}")
    analysis = data["analysis"]
    window = _duration_seconds("query_window", analysis["query_window"])
    for metric in ("success_rate", "latency"):
        if _duration_seconds(metric, analysis[metric]["initial_delay"]) < window:
            raise ValueError(
                f"{path}: analysis.{metric}.initial_delay is shorter than query_window"
                f" ({analysis['query_window']}): its first measurement would see a partial window"
            )
    return data


def duration_text(value: Any) -> str:
    """`15s` -> `15 s`, `1m` -> `1 min`: Argo Rollouts' durations in prose."""
    match = re.fullmatch(r"(\d+)([smh])", str(value))
    if not match:
        raise ValueError(f"not a duration like 15s, 1m or 1h: {value!r}")
    return f"{match[1]} {dict(s='s', m='min', h='h')[match[2]]}"


def analysis_seconds(metric: str) -> int:
    """How long one analysis metric of extensions/rollout.yml runs
    (initial delay + count x interval)."""
    settings = load_rollout()["analysis"][str(metric)]
    return _duration_seconds(metric, settings.get("initial_delay", "0s")) + int(
        settings["count"]
    ) * _duration_seconds(metric, settings["interval"])


def _duration_seconds(metric: str, value: Any) -> int:
    seconds = {"s": 1, "m": 60, "h": 3600}
    found = re.fullmatch(r"(\d+)([smh])", str(value))
    if not found:
        raise ValueError(f"{ROLLOUT_FILE}: {metric} has duration {value!r}")
    return int(found[1]) * seconds[found[2]]


def span_text(seconds: Any) -> str:
    """60 -> `1 minute`, 300 -> `5 minutes`, 45 -> `45 s`."""
    value = int(seconds)
    if value % 60:
        return f"{value} s"
    minutes = value // 60
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def duration_seconds(value: Any) -> int:
    """`2m` -> 120: an Argo Rollouts duration in seconds."""
    return _duration_seconds("duration", value)


def span_adjective(seconds: Any) -> str:
    """120 -> `2-minute`, 45 -> `45-second`: a span before a noun."""
    value = int(seconds)
    return f"{value // 60}-minute" if value % 60 == 0 else f"{value}-second"


def percent(value: Any) -> str:
    """0.99 -> `99`, 0.995 -> `99.5`: a ratio as a percentage in prose."""
    return f"{float(value) * 100:.10g}"


@cache
def load_stacks(path: Path = STACKS_FILE) -> dict[str, Any]:
    """Read the stack registry (which stacks exist, and what differs per stack)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not {"stacks", "migration_tools"} <= set(data):
        raise ValueError(f"{path}: expected `stacks:` and `migration_tools:` mappings")
    for tool, entry in data["migration_tools"].items():
        unknown = set(entry["stacks"]) - set(data["stacks"])
        if unknown:
            raise ValueError(f"{path}: {tool} names stacks not under `stacks:`: {sorted(unknown)}")
    return data


def stacks_by_tool() -> dict[str, tuple[str, ...]]:
    """Which stacks each migration tool works with; the first is its default."""
    return {tool: tuple(e["stacks"]) for tool, e in load_stacks()["migration_tools"].items()}


def available_pairs() -> frozenset[tuple[str, str]]:
    """(migration tool, stack) pairs whose service template this version ships.

    A choice outside them is refused by its validator instead of rendering a
    half-built service.
    """
    return frozenset(
        (tool, stack)
        for tool, entry in load_stacks()["migration_tools"].items()
        for stack, pair in entry["stacks"].items()
        if pair.get("available")
    )


def available_stacks() -> list[str]:
    """Stacks that render with at least one migration tool, in registry order."""
    pairs = available_pairs()
    return [s for s in load_stacks()["stacks"] if any(s == stack for _, stack in pairs)]


def stack_profile(migration_tool: str, stack: str) -> dict[str, Any]:
    """Everything the registry says about one (tool, stack) pair, in one mapping."""
    data = load_stacks()
    pair = data["migration_tools"].get(str(migration_tool), {}).get("stacks", {}).get(stack, {})
    base = data["stacks"].get(stack, {})
    profile = {"name": stack, **base, **pair}
    if "tool_configs" in pair:  # a pair's tool settings come on top of the stack's
        profile["tool_configs"] = [*base.get("tool_configs", []), *pair["tool_configs"]]
    if "platform_requires" in pair:  # a pair replaces only the groups it names
        profile["platform_requires"] = {
            **base.get("platform_requires", {}),
            **pair["platform_requires"],
        }
    return profile


def service_owned(migration_tool: str, stack: str | None = None) -> list[str]:
    """Paths an update never touches: the stack's code and tests, its
    dependency manifests and locks, the migrations the team adds, and local.mk
    (the team's own make targets)."""
    stack = stack or default_stack(migration_tool)
    profile = stack_profile(migration_tool, stack)
    paths = [*profile.get("service_owned", []), *profile.get("manifests", [])]
    paths += profile.get("locks", [])
    if profile.get("migrations_dir"):
        paths.append(profile["migrations_dir"])
    return list(dict.fromkeys([*paths, "local.mk"]))  # a lock may also be listed as code


_PIN_REF = re.compile(r"\{(tools|runtimes)\.([A-Za-z0-9_]+)\}")


def _resolve_pins(text: str, pins: dict[str, Any]) -> str:
    def resolve(match: re.Match[str]) -> str:
        section, name = match.groups()
        value = pins.get(section, {}).get(name)
        if value is None:
            raise ValueError(f"{STACKS_FILE}: {match.group()} is not in {PINS_FILE}")
        return str(value)

    return _PIN_REF.sub(resolve, text)


def prerequisites(profile: dict[str, Any], pins: dict[str, Any]) -> list[str]:
    """What to install before `make setup`, for one (tool, stack) pair."""
    wanted = load_stacks()["prerequisites"]
    names = []
    for key in profile.get("toolchain", []):
        if key not in wanted["toolchain"]:
            raise ValueError(f"{STACKS_FILE}: toolchain entry {key} has no `prerequisites:` name")
        if wanted["toolchain"][key]:
            names.append(_resolve_pins(wanted["toolchain"][key], pins))
    return list(dict.fromkeys([*names, *wanted["always"]]))


def platform_requires(profile: dict[str, Any], pins: dict[str, Any]) -> list[str]:
    """`group:requirement` for each dependency the stack's gates need, pins resolved."""
    return [
        f"{group}:{_resolve_pins(requirement, pins)}"
        for group, requirements in (profile.get("platform_requires") or {}).items()
        for requirement in requirements
    ]


def exclude_on_update(migration_tool: str, stack: str | None = None) -> str:
    """copier.yml `_exclude` lines (anchored at the repo root) for service-owned paths."""
    return "\n".join(f"/{path}" for path in service_owned(migration_tool, stack))


def choices(question: str) -> str:
    """A question's choices from the registry, as the YAML Copier reads.

    A (tool, stack) pair this version does not ship stays listed (so the
    answer can be named) but carries a validator that refuses it.
    """
    data = load_stacks()
    if question == "migration_tool":
        entries = {}
        for tool, entry in data["migration_tools"].items():
            validator = "{{ " + json.dumps(tool) + " | stack_unavailable }}"
            entries[entry["label"]] = (
                tool
                if any((tool, s) in available_pairs() for s in entry["stacks"])
                else {"value": tool, "validator": validator}
            )
        return json.dumps(entries)
    if question == "stack":
        return json.dumps({entry["label"]: stack for stack, entry in data["stacks"].items()})
    raise ValueError(f"the stack registry has no choices for {question!r}")


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


# CODEOWNERS owners: a user login, or a team of the repository's owner
# (GitHub ignores a team of any other organisation). Team slugs are
# letters, digits, hyphens and underscores.
CODEOWNER_RE = re.compile(
    r"^@(?P<login>[A-Za-z0-9-]+)(?:/(?P<team>[A-Za-z0-9][A-Za-z0-9_-]{0,99}))?$"
)


def codeowner_error(value: str, github_owner: str) -> str:
    value = str(value)
    owner = str(github_owner)
    example = f"@{owner.lower()}/platform"
    match = CODEOWNER_RE.match(value)
    if not match or not GITHUB_OWNER_RE.match(match["login"]):
        return (
            f"'{value}' is not a GitHub team or user handle: use @<org>/<team> or @<login> "
            f"(letters, digits, single hyphens; teams may use underscores), e.g. {example}."
        )
    if match["team"] and match["login"].lower() != owner.lower():
        return (
            f"The team '{value}' belongs to '{match['login']}', but only teams of the "
            f"repository's owner '{owner}' can be code owners: use @{owner}/<team> "
            f"(e.g. {example}) or a user @<login>."
        )
    return ""


def default_stack(migration_tool: str) -> str:
    by_tool = stacks_by_tool()
    return by_tool.get(str(migration_tool), next(iter(by_tool.values())))[0]


def stack_unavailable(migration_tool: str) -> str:
    """Per-choice validator: refuse a migration tool whose stacks are not built yet."""
    tool = str(migration_tool)
    stacks, available = stacks_by_tool()[tool], available_pairs()
    if any((tool, stack) in available for stack in stacks):
        return ""
    built = ", ".join(sorted({t for t, _ in available}))
    return (
        f"{tool} needs a {'/'.join(stacks)} service, which this template "
        f"version does not ship yet; choose one of: {built}."
    )


def stack_error(migration_tool: str, stack: str) -> str:
    allowed = stacks_by_tool().get(str(migration_tool), ())
    if stack not in allowed:
        return (
            f"{migration_tool} cannot be used with a {stack} service; "
            f"allowed: {', '.join(allowed)}."
        )
    if (migration_tool, stack) not in available_pairs():
        built = [s for t, s in sorted(available_pairs()) if t == migration_tool]
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
    "codeowner_error": codeowner_error,
    "default_stack": default_stack,
    "stack_unavailable": stack_unavailable,
    "stack_error": stack_error,
    "registry_choices": choices,
    "exclude_on_update": exclude_on_update,
    "json_str": json_str,
    "yaml_str": yaml_str,
    "toml_str": toml_str,
    "md_text": md_text,
    "gha_safe": gha_safe,
    "duration_text": duration_text,
    "percent": percent,
    "analysis_seconds": analysis_seconds,
    "span_text": span_text,
    "span_adjective": span_adjective,
    "duration_seconds": duration_seconds,
    "uses": uses,
}


# --- derived context --------------------------------------------------------


def image_ref(entry: dict[str, Any]) -> str:
    """`name:tag@sha256:...` - readable tag, immutable digest."""
    return f"{entry['image']}:{entry['tag']}@{entry['digest']}"


def derive(context: dict[str, Any], pins: dict[str, Any]) -> dict[str, Any]:
    """Values computed from the answers and the pins, never asked."""
    slug = str(context.get("project_slug") or "service")
    tool = str(context.get("migration_tool") or next(iter(stacks_by_tool())))
    stack = context.get("stack") or default_stack(tool)
    profile = stack_profile(tool, stack)
    images = {
        name: {**entry, "ref": image_ref(entry)} for name, entry in pins.get("images", {}).items()
    }
    return {
        "pins": pins,
        "stack": stack,
        "package_name": slug.replace("-", "_"),
        "runtime": pins.get("runtimes", {}).get(stack, {}),
        "stack_profile": profile,
        "service_owned": service_owned(tool, stack),
        "platform_requires": platform_requires(profile, pins),
        "prerequisites": prerequisites(profile, pins),
        "images": images,
        "tools": pins.get("tools", {}),
        "actions": pins.get("actions", {}),
        "rollout": load_rollout(),
        "ci_gates": load_stacks()["ci_gates"],
        "contract_gates": load_stacks()["contract_gates"],
    }


class SlipwayContext(ContextHook):
    """Adds the pins, derived values and filters to every render."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters.update(FILTERS)

    def hook(self, context: dict[str, Any]) -> None:
        context.update(derive(context, load_pins()))
