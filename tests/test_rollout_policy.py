"""Canary steps and analysis settings come from one place, extensions/rollout.yml.

The built manifests of each environment, the AnalysisTemplates and the README
must say what that file says; the production overlay replaces the whole step
list instead of patching steps by position.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.slipway import (
    analysis_seconds,
    duration_seconds,
    duration_text,
    load_rollout,
    percent,
    span_adjective,
)
from scripts.snapshot import copy_template
from tests.conftest import RenderFn
from tests.support.deploy import ENVS, build, load_docs
from tests.support.render import renderer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("deploy-manifests")]

ROOT = Path(__file__).resolve().parent.parent
CANARY = {
    "web": {"deploy_strategy": "canary"},
    "prometheus": {"deploy_strategy": "canary", "analysis_provider": "prometheus"},
}


def expected_steps(env: str) -> list[Any]:
    """The registry's steps in the shape Argo Rollouts reads (analysis as a marker)."""
    shapes: list[Any] = []
    for step in load_rollout()["canary"][env]:
        if step == "analysis":
            shapes.append("analysis")
        elif step == "gate":
            shapes.append({"pause": {}})
        elif "weight" in step:
            shapes.append({"setWeight": step["weight"]})
        else:
            shapes.append({"pause": {"duration": step["pause"]}})
    return shapes


def built_steps(root: Path, env: str) -> list[Any]:
    (rollout,) = [d for d in load_docs(build(root, env)) if d["kind"] == "Rollout"]
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    return ["analysis" if "analysis" in s else s for s in steps]


@pytest.mark.parametrize("provider", list(CANARY))
def test_each_environment_runs_the_registry_steps(render: RenderFn, provider: str) -> None:
    root = render(**CANARY[provider])
    for env in ENVS:
        assert built_steps(root, env) == expected_steps(env), env


def test_the_production_overlay_patches_no_step_by_position() -> None:
    overlay = ROOT / "template/deploy/overlays/production/defaults/kustomization.yaml.jinja"
    assert not re.search(r"/steps/\d", overlay.read_text())


@pytest.mark.parametrize("provider", list(CANARY))
def test_analysis_templates_use_the_registry_settings(render: RenderFn, provider: str) -> None:
    settings = load_rollout()["analysis"]
    docs = load_docs((render(**CANARY[provider]) / "deploy/base/analysis.yaml").read_text())
    names = {"ready": "health", "list-items": "smoke", "success-rate": "success_rate"}
    names["p95-latency"] = "latency"
    seen = set()
    for doc in docs:
        for metric in doc["spec"]["metrics"]:
            wanted = settings[names[metric["name"]]]
            seen.add(metric["name"])
            assert metric["interval"] == wanted["interval"]
            assert metric["failureLimit"] == wanted["failure_limit"]
            assert metric["consecutiveErrorLimit"] == settings["consecutive_error_limit"]
    assert seen, "no analysis metric rendered"


# Numbers unlike the shipped ones: prose that retypes a number instead of
# rendering it from extensions/rollout.yml stops matching the data.
ALTERED: dict[str, Any] = {
    "canary": {
        "staging": [{"weight": 15}, "analysis", {"pause": "3m"}, {"weight": 40}, {"pause": "4m"}],
        "production": [{"weight": 5}, "analysis", "gate", {"weight": 35}, {"pause": "7m"}],
    },
    "analysis": {
        "health": {"interval": "11s", "count": 7, "failure_limit": 0},
        "smoke": {"interval": "13s", "count": 6, "failure_limit": 0},
        "query_window": "3m",
        "success_rate": {
            "initial_delay": "3m",
            "interval": "2m",
            "count": 4,
            "failure_limit": 2,
            "minimum": 0.97,
        },
        "latency": {
            "initial_delay": "4m",
            "interval": "2m",
            "count": 2,
            "failure_limit": 2,
            "p95_below_seconds": 0.7,
        },
        "min_requests": 31,
        "consecutive_error_limit": 2,
    },
    "deadlines": {"progress_seconds": 777, "rollout_timeout_seconds": 1555},
    "blue_green": {"scale_down_delay_seconds": {"web": 333, "prometheus": 999}},
}
ANSWER_SETS = {
    "canary-web": {"deploy_strategy": "canary"},
    "canary-prometheus": {"deploy_strategy": "canary", "analysis_provider": "prometheus"},
    "blue-green-web": {"deploy_strategy": "blue-green", "analysis_provider": "web"},
    "blue-green-prometheus": {"deploy_strategy": "blue-green", "analysis_provider": "prometheus"},
}


@pytest.fixture(scope="module")
def render_altered(tmp_path_factory: pytest.TempPathFactory) -> RenderFn:
    """Renders of a template whose extensions/rollout.yml holds ALTERED."""
    template = copy_template(tmp_path_factory.mktemp("altered-template"))
    (template / "extensions/rollout.yml").write_text(yaml.safe_dump(ALTERED))
    return renderer(template, lambda: tmp_path_factory.mktemp("altered-render"))


def steps_text(steps: list[Any], gate: str) -> str:
    words = [
        "analysis"
        if s == "analysis"
        else gate
        if s == "gate"
        else f"{s['weight']} %"
        if "weight" in s
        else duration_text(s["pause"])
        for s in steps
    ]
    return " → ".join([*words, "100 %"])


def rollout_phrases(rollout: dict[str, Any], strategy: str, provider: str) -> list[str]:
    """What docs/deploying.md must say, from the data alone."""
    a = rollout["analysis"]
    deadlines = rollout["deadlines"]
    errors = ["once", "twice", "three times"][a["consecutive_error_limit"]]
    phrases = [
        f"`progressDeadlineSeconds` ({deadlines['progress_seconds']} s:",
        f"`ROLLOUT_TIMEOUT` ({deadlines['rollout_timeout_seconds']} s by default;",
        f"(timeout, non-2xx answer) {errors} in a row",
    ]
    if strategy == "blue-green":
        health, smoke = a["health"], a["smoke"]
        phrases += [
            f"`ready` {health['count']} times {duration_text(health['interval'])} apart",
            f"must work {smoke['count']} times {duration_text(smoke['interval'])} apart",
        ]
        if provider == "prometheus":
            phrases += [
                f"(at least {percent(a['success_rate']['minimum'])} %)",
                f"(under {a['latency']['p95_below_seconds']} s)",
            ]
        return phrases
    gate = "promotion gate (the deploy script promotes it once the analysis passed)"
    phrases += [
        f"- staging: {steps_text(rollout['canary']['staging'], 'promotion gate')};",
        f"- production: {steps_text(rollout['canary']['production'], gate)}.",
    ]
    if provider == "web":
        smoke = a["smoke"]
        phrases.append(f"{smoke['count']} times {duration_text(smoke['interval'])} apart")
    else:
        phrases += [
            f"at or above {percent(a['success_rate']['minimum'])} %",
            f"under {a['latency']['p95_below_seconds']} s",
        ]
    return phrases


def _prose(path: Path) -> str:
    return " ".join(path.read_text().split())


@pytest.mark.parametrize("data", ["shipped", "altered"])
@pytest.mark.parametrize("answers", list(ANSWER_SETS))
def test_docs_and_scripts_quote_the_registry(
    render: RenderFn, render_altered: RenderFn, answers: str, data: str
) -> None:
    # The rollout prose lives in the generated docs/deploying.md (the README
    # links to it since issue 13); the deadlines also sit in the Rollout and
    # deploy/rollout.sh, the query window in the Prometheus queries.
    rollout = load_rollout() if data == "shipped" else ALTERED
    root = (render if data == "shipped" else render_altered)(**ANSWER_SETS[answers])
    strategy, provider = answers.rsplit("-", 1)
    prose = _prose(root / "docs" / "deploying.md")
    missing = [p for p in rollout_phrases(rollout, strategy, provider) if p not in prose]
    assert not missing, f"docs/deploying.md does not say: {missing}"

    deadlines = rollout["deadlines"]
    (base,) = load_docs((root / "deploy/base/rollout.yaml").read_text())
    assert base["spec"]["progressDeadlineSeconds"] == deadlines["progress_seconds"]
    script = (root / "deploy/rollout.sh").read_text()
    assert f"ROLLOUT_TIMEOUT=${{ROLLOUT_TIMEOUT:-{deadlines['rollout_timeout_seconds']}}}" in script
    if provider == "prometheus":
        a = rollout["analysis"]
        windows = re.findall(r"\}\[(\w+)\]", (root / "deploy/base/analysis.yaml").read_text())
        assert windows and set(windows) == {a["query_window"]}, windows
        adjective = span_adjective(duration_seconds(a["query_window"]))
        wanted = f"`min-requests` ({a['min_requests']}) requests of the new version in its"
        assert f"{wanted} {adjective} window" in _prose(root / "docs/deploying.md")
        assert f"`min-requests` ({a['min_requests']}) user requests" in _prose(root / "README.md")


def test_the_deploy_script_outwaits_production_steps() -> None:
    # ROLLOUT_TIMEOUT must leave room for production's bake times and its
    # step analysis, or a healthy rollout is undone for being slow.
    rollout = load_rollout()
    steps = rollout["canary"]["production"]
    pauses = sum(_seconds(s["pause"]) for s in steps if isinstance(s, dict) and "pause" in s)
    analysis = max(analysis_seconds("smoke"), analysis_seconds("latency"))
    assert pauses + analysis < rollout["deadlines"]["rollout_timeout_seconds"]


def test_a_query_window_longer_than_the_initial_delay_is_refused(tmp_path: Path) -> None:
    data = load_rollout()
    changed = {**data, "analysis": {**data["analysis"], "query_window": "5m"}}
    path = tmp_path / "rollout.yml"
    path.write_text(yaml.safe_dump(changed))
    with pytest.raises(ValueError, match="shorter than query_window"):
        load_rollout(path)


def _seconds(duration: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([smh])", duration).groups()  # type: ignore[union-attr]
    return int(number) * {"s": 1, "m": 60, "h": 3600}[unit]


@pytest.mark.parametrize("provider", ["web", "prometheus"])
def test_blue_green_keeps_old_pods_longer_than_the_post_promotion_analysis(
    render: RenderFn, provider: str
) -> None:
    root = render(analysis_provider=provider)
    docs = load_docs(build(root, "production"))
    (rollout,) = [d for d in docs if d["kind"] == "Rollout"]
    blue_green = rollout["spec"]["strategy"]["blueGreen"]
    delay = blue_green["scaleDownDelaySeconds"]
    assert delay == load_rollout()["blue_green"]["scale_down_delay_seconds"][provider]
    names = {t["templateName"] for t in blue_green["postPromotionAnalysis"]["templates"]}
    templates = [d for d in docs if d["kind"] == "AnalysisTemplate"]
    longest = max(
        m["count"] * _seconds(m["interval"])
        for t in templates
        if t["metadata"]["name"] in names
        for m in t["spec"]["metrics"]
    )
    assert delay > longest, f"old pods go after {delay} s; the analysis runs {longest} s"
