"""Unit tests of extensions/slipway.py: pins, validators, derived values, quoting."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from jinja2 import Environment
from markdown_it import MarkdownIt

from extensions import slipway
from extensions.slipway import (
    FILTERS,
    derive,
    gha_safe,
    github_owner_error,
    json_str,
    load_pins,
    md_text,
    slug_error,
    slugify,
    stack_error,
    stack_unavailable,
    toml_str,
    yaml_str,
)

SHA1 = re.compile(r"^[0-9a-f]{40}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Text a user could type or paste: any Unicode scalar value that can be
# written to a UTF-8 file (lone surrogates cannot).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
HOSTILE = [
    "",
    '"',
    "'",
    "\\",
    "{{ 7*7 }}",
    "${{ github.token }}",
    "# not a comment",
    "key: value",
    "- item",
    "<script>alert(1)</script>",
    "line\nbreak\r\n",
    "tab\there",
    "\x00\x07\x1b\x7f",
    "\u2028\u2029\x85",
    "Zoë ☃ 名前 🚀",
    "\ufeffBOM",
    "'''\"\"\"",
    "null",
    "true",
    "1e3",
    "~",
    "@at `tick` |pipe >gt",
]


# --- pins ---------------------------------------------------------------------


def test_pins_file_has_the_sections_templates_read() -> None:
    pins = load_pins()
    assert {"runtimes", "images", "tools", "actions"} <= set(pins)


@pytest.mark.parametrize("name", sorted(load_pins().get("images") or {}))
def test_every_image_is_pinned_by_digest_with_its_source(name: str) -> None:
    entry = load_pins()["images"][name]
    assert {"image", "tag", "digest", "source", "checked"} <= set(entry), name
    assert DIGEST.match(entry["digest"]), f"{name}: {entry['digest']!r}"
    assert entry["tag"] not in {"", "latest"}, f"{name}: a moving tag"
    assert str(entry["source"]).strip(), name
    assert ISO_DATE.match(str(entry["checked"])), f"{name}: checked {entry['checked']!r}"
    assert derive({}, load_pins())["images"][name]["ref"] == (
        f"{entry['image']}:{entry['tag']}@{entry['digest']}"
    )


@pytest.mark.parametrize("name", sorted(load_pins()["actions"]))
def test_every_action_has_a_full_sha_and_its_tag(name: str) -> None:
    entry = load_pins()["actions"][name]
    assert SHA1.match(str(entry["sha"])), f"{name}: {entry['sha']!r}"
    assert re.match(r"^v\d+(\.\d+)*$", str(entry["tag"])), f"{name}: tag {entry['tag']!r}"
    assert re.match(r"^[A-Za-z0-9-]+/[A-Za-z0-9._/-]+$", name), name


EXACT_VERSION = re.compile(r"^v?\d+(\.\d+){1,3}$")  # no ranges, no `latest`
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
GO_SUM = re.compile(r"^h1:[A-Za-z0-9+/]{43}=$")


def test_tools_are_exact_versions_or_checksums() -> None:
    for name, value in load_pins()["tools"].items():
        if name.endswith("_sha256"):
            assert SHA256_HEX.match(str(value)), f"{name}: {value!r}"
        elif name.endswith("_go_sum"):
            assert GO_SUM.match(str(value)), f"{name}: {value!r}"
        else:
            assert EXACT_VERSION.match(str(value)), f"{name}: {value!r}"


class _StrictLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a pin must be stated once."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        duplicated = sorted({str(k) for k in keys if keys.count(k) > 1})
        assert not duplicated, f"duplicate keys {duplicated} at line {node.start_mark.line + 1}"
        return super().construct_mapping(node, deep=deep)


def test_pins_file_states_every_key_once() -> None:
    yaml.load(slipway.PINS_FILE.read_text(encoding="utf-8"), Loader=_StrictLoader)


def test_load_pins_refuses_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "pins.yml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_pins.__wrapped__(bad)


# --- validators ---------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["a", "orders-api", "svc2", "a-b-c", "a" * 40, "x1-2y"])
def test_valid_slugs_pass(slug: str) -> None:
    assert slug_error(slug) == ""


@pytest.mark.parametrize(
    ("slug", "says"),
    [
        ("", "must not be empty"),
        ("a" * 41, "at most 40"),
        ("Orders", "DNS-1123"),
        ("1api", "start with a letter"),
        ("api-", "end with a letter or digit"),
        ("-api", "DNS-1123"),
        ("my_api", "DNS-1123"),
        ("my api", "DNS-1123"),
        ("api.v2", "DNS-1123"),
        ("ápi", "DNS-1123"),
    ],
)
def test_invalid_slugs_say_why(slug: str, says: str) -> None:
    assert says in slug_error(slug)


@given(TEXT)
@example("Demo Service")
@example("123 !!! ---")
@example("Ünïcode Ñame")
@example("a" * 100)
def test_slugify_always_yields_a_valid_slug(name: str) -> None:
    assert slug_error(slugify(name)) == ""


def test_slugify_examples() -> None:
    assert slugify("Demo Service") == "demo-service"
    assert slugify("  Orders  API v2 ") == "orders-api-v2"
    assert slugify("42 things") == "things"
    assert slugify("!!!") == "service"


@pytest.mark.parametrize("owner", ["acme", "a", "Acme-Corp", "a1-b2", "x" * 39, "0day"])
def test_valid_github_owners_pass(owner: str) -> None:
    assert github_owner_error(owner) == ""


@pytest.mark.parametrize(
    "owner", ["", "-acme", "acme-", "ac--me", "x" * 40, "ac_me", "ac.me", "ac me", "äcme"]
)
def test_invalid_github_owners_say_why(owner: str) -> None:
    message = github_owner_error(owner)
    assert "not a valid GitHub user or organisation name" in message
    assert repr(owner)[1:-1] in message or owner in message


def test_available_tools_pass_and_the_others_name_what_exists() -> None:
    available_tools = {tool for tool, _ in slipway.available_pairs()}
    assert available_tools, "the registry ships no (tool, stack) pair"
    for tool in slipway.stacks_by_tool():
        message = stack_unavailable(tool)
        if tool in available_tools:
            assert message == ""
        else:
            assert tool in message
            assert all(t in message for t in available_tools), message


def test_stack_error_covers_every_pair() -> None:
    stacks = list(slipway.load_stacks()["stacks"])
    for tool, allowed in slipway.stacks_by_tool().items():
        for stack in stacks:
            message = stack_error(tool, stack)
            if (tool, stack) in slipway.available_pairs():
                assert message == ""
            elif stack not in allowed:
                assert f"allowed: {', '.join(allowed)}" in message
            else:
                assert "not part of this template version" in message


def test_default_stack_follows_the_tool() -> None:
    assert slipway.default_stack("alembic") == "python"
    assert slipway.default_stack("prisma") == "typescript"
    assert slipway.default_stack("golang-migrate") == "go"


def test_registry_choices_name_every_tool_and_stack() -> None:
    registry = slipway.load_stacks()
    tools = yaml.safe_load(slipway.choices("migration_tool"))
    values = [v["value"] if isinstance(v, dict) else v for v in tools.values()]
    assert values == list(registry["migration_tools"])
    for value in tools.values():  # refused exactly when no pair of the tool ships
        tool = value["value"] if isinstance(value, dict) else value
        assert isinstance(value, dict) == (stack_unavailable(tool) != ""), tool
    assert list(yaml.safe_load(slipway.choices("stack")).values()) == list(registry["stacks"])


def test_every_available_pair_says_what_its_deploy_needs() -> None:
    for tool, stack in slipway.available_pairs():
        profile = slipway.stack_profile(tool, stack)
        assert profile["migrate_command"], (tool, stack)
        assert profile["migrations_dir"].endswith("/"), (tool, stack)
        assert profile["toolchain"] and profile["locks"] and profile["start"], (tool, stack)
        assert isinstance(profile["writable_tmp"], bool)


def test_a_registry_naming_an_unknown_stack_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(slipway.STACKS_FILE.read_text())
    data["migration_tools"]["alembic"]["stacks"]["cobol"] = {"available": False}
    bad = tmp_path / "stacks.yml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="cobol"):
        slipway.load_stacks(bad)


def test_update_excludes_the_service_owned_paths() -> None:
    lines = slipway.exclude_on_update("alembic", "").splitlines()
    assert lines == [
        "/src/",
        "/tests/",
        "/pyproject.toml",
        "/uv.lock",
        "/migrations/versions/",
        "/local.mk",
    ]


# --- derived values -------------------------------------------------------------------


def test_derive_exposes_pins_and_computed_names() -> None:
    pins = load_pins()
    derived = derive({"project_slug": "orders-api", "migration_tool": "alembic"}, pins)
    assert derived["package_name"] == "orders_api"
    assert derived["stack"] == "python"
    assert derived["runtime"] == pins["runtimes"]["python"]
    assert derived["actions"] == pins["actions"]
    assert derived["tools"] == pins["tools"]
    assert set(derived["images"]) == set(pins.get("images") or {})


def test_derive_prefers_an_explicit_stack() -> None:
    derived = derive({"migration_tool": "golang-migrate", "stack": "python"}, load_pins())
    assert derived["stack"] == "python"


def test_filters_are_registered_on_the_environment() -> None:
    env = Environment()
    slipway.SlipwayContext(env)
    assert set(FILTERS) <= set(env.filters)
    assert env.from_string("{{ 'a: b' | yaml_str }}").render() == '"a: b"'


# --- quoting filters round-trip ------------------------------------------------------


def _roundtrips(value: str) -> None:
    assert json.loads(json_str(value)) == value
    assert yaml.safe_load(f"key: {yaml_str(value)}\n") == {"key": value}
    assert yaml.safe_load(f"- {yaml_str(value)}\n") == [value]
    assert tomllib.loads(f"key = {toml_str(value)}\n") == {"key": value}
    # a single line: each filter's output can sit in a one-line context
    for quoted in (json_str(value), yaml_str(value), toml_str(value)):
        assert "\n" not in quoted and "\r" not in quoted


@pytest.mark.parametrize("value", HOSTILE)
def test_quoting_filters_round_trip_hostile_strings(value: str) -> None:
    _roundtrips(value)


@given(TEXT)
def test_quoting_filters_round_trip_any_text(value: str) -> None:
    _roundtrips(value)


# --- markdown and GitHub expressions -------------------------------------------------

_MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")


def _markdown_text(source: str) -> tuple[set[str], str]:
    tokens = _MD.parse(source)
    inline = [t for t in tokens if t.type == "inline"]
    children = [c for t in inline for c in t.children or []]
    return {c.type for c in children}, "".join(c.content for c in children)


# CommonMark replaces NUL by U+FFFD by definition; nobody means a NUL in prose.
@pytest.mark.parametrize("value", [v for v in HOSTILE if v.strip() and "\x00" not in v])
def test_md_text_renders_as_the_literal_text(value: str) -> None:
    kinds, text = _markdown_text(md_text(value))
    assert kinds <= {"text", "text_special"}, kinds
    assert text == " ".join(value.split())


@given(TEXT.filter(lambda s: s.strip() and s.isprintable()))
@example("*em* _u_ [x](y) `c` <b> &amp; # h ~~s~~ | t | 1. 2) - + > q")
def test_md_text_never_produces_markup(value: str) -> None:
    kinds, text = _markdown_text(f"Before {md_text(value)} after")
    assert kinds <= {"text", "text_special"}, (value, kinds)
    assert text == f"Before {' '.join(value.split())} after"


@given(TEXT)
@example("${{ github.token }}")
@example("$${{{{")
@example("${{${{")
def test_gha_safe_leaves_no_expression_opening(value: str) -> None:
    assert "${{" not in gha_safe(value)


def test_gha_safe_changes_nothing_else() -> None:
    assert gha_safe("plain $HOME {{ x }} $ {") == "plain $HOME {{ x }} $ {"
    assert gha_safe("${{ github.token }}") == "$ {{ github.token }}"


def test_json_str_is_a_string_for_non_strings() -> None:
    values: list[Any] = [1, None, True, 1.5]
    assert [json.loads(json_str(v)) for v in values] == ["1", "None", "True", "1.5"]


# --- rollout data and platform requirements -------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"), [("15s", "15 s"), ("1m", "1 min"), ("2h", "2 h"), (" 1m", None)]
)
def test_duration_text(value: str, text: str | None) -> None:
    if text is None:
        with pytest.raises(ValueError, match="not a duration"):
            slipway.duration_text(value)
    else:
        assert slipway.duration_text(value) == text


def test_percent_keeps_only_meaningful_digits() -> None:
    assert [slipway.percent(v) for v in (0.99, 0.995, 1, 0.5)] == ["99", "99.5", "100", "50"]


def test_a_rollout_file_with_an_unknown_step_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(slipway.ROLLOUT_FILE.read_text())
    data["canary"]["production"].append({"setWeight": 75})  # Argo's spelling, not ours
    bad = tmp_path / "rollout.yml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="unknown step"):
        slipway.load_rollout(bad)


def test_platform_requirements_resolve_pins_and_refuse_unknown_ones() -> None:
    pins = load_pins()
    profile = {"platform_requires": {"dev": ["squawk-cli=={tools.squawk}"], "main": ["x>=1"]}}
    assert slipway.platform_requires(profile, pins) == [
        f"dev:squawk-cli=={pins['tools']['squawk']}",
        "main:x>=1",
    ]
    with pytest.raises(ValueError, match=r"\{tools\.nope\}"):
        slipway.platform_requires({"platform_requires": {"dev": ["y=={tools.nope}"]}}, pins)


def test_analysis_seconds_and_span_text() -> None:
    health = slipway.load_rollout()["analysis"]["health"]
    assert slipway.analysis_seconds("health") == health["count"] * int(health["interval"][:-1])
    assert [slipway.span_text(s) for s in (60, 300, 45)] == ["1 minute", "5 minutes", "45 s"]
