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

from extensions.slipway import duration_text, load_rollout, percent
from tests.conftest import RenderFn
from tests.support.deploy import ENVS, build, load_docs

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


@pytest.mark.parametrize("provider", list(CANARY))
def test_readme_quotes_the_registry(render: RenderFn, provider: str) -> None:
    # The rollout prose lives in the generated docs/deploying.md (the README
    # links to it since issue 13).
    readme = (render(**CANARY[provider]) / "docs" / "deploying.md").read_text()
    rollout = load_rollout()
    staging = " → ".join(
        "analysis"
        if s == "analysis"
        else f"{s['weight']} %"
        if "weight" in s
        else duration_text(s["pause"])
        for s in rollout["canary"]["staging"]
    )
    assert f"- staging: {staging} → 100 %;" in readme
    analysis = rollout["analysis"]
    if provider == "web":
        smoke = analysis["smoke"]
        assert f"{smoke['count']} times {duration_text(smoke['interval'])} apart" in readme
    else:
        assert f"at or above {percent(analysis['success_rate']['minimum'])} %" in readme
        assert f"under {analysis['latency']['p95_below_seconds']} s" in readme


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
