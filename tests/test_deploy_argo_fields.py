"""Rollout and AnalysisTemplate fields whose meaning in Argo Rollouts v1.9.1 is
not what their names suggest, checked against what the manifests and the
docs (README.md, docs/deploying.md) say they do.

The CRD schemas (test_deploy_manifests.py) accept any integer here; these
tests pin the semantics read from v1.9.1's source.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RenderFn
from tests.support.deploy import ENVS, build_render, combo_id, load_docs, manifest_combos

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("deploy-manifests")]

# The Rollout and AnalysisTemplates do not depend on the migration runner.
COMBOS = [a for a in manifest_combos() if a["migration_runner"] == "job"]
WORDS = {"once": 1, "twice": 2, "two": 2, "three times": 3, "three": 3}


@pytest.fixture(scope="module")
def projects(render: RenderFn) -> dict[str, Path]:
    return {combo_id(answers): render(**answers) for answers in COMBOS}


def built(project: Path, env: str, kind: str) -> list[dict[str, Any]]:
    return [d for d in load_docs(build_render(project, env)) if d["kind"] == kind]


@pytest.mark.parametrize("combo", [combo_id(a) for a in COMBOS])
def test_an_aborted_version_is_scaled_down(projects: dict[str, Path], combo: str) -> None:
    """utils/defaults.GetAbortScaleDownDelaySecondsOrDefault: 0 means the aborted
    canary/preview ReplicaSet is never scaled down (nil = 30 s, N = N s)."""
    for env in ENVS:
        (rollout,) = built(projects[combo], env, "Rollout")
        ((kind, strategy),) = rollout["spec"]["strategy"].items()
        delay = strategy.get("abortScaleDownDelaySeconds")
        assert delay is None or delay > 0, f"{kind} keeps an aborted version's pods forever"


def _times(text: str, pattern: str) -> int:
    found = re.search(pattern, text)
    assert found, f"no {pattern!r} in the text"
    return WORDS[found.group(1)]


@pytest.mark.parametrize("combo", [combo_id(a) for a in COMBOS])
def test_documented_error_tolerance_is_the_configured_one(
    projects: dict[str, Path], combo: str
) -> None:
    """analysis/analysis.go fails a metric once consecutiveError > the limit:
    N errors in a row fail the run when consecutiveErrorLimit is N - 1."""
    project = projects[combo]
    deploying = (project / "docs" / "deploying.md").read_text()
    promised = _times(
        deploying,
        r"errors\s+\(timeout,\s+non-2xx\s+answer\)\s+(once|twice|three times)\s+in\s+a\s+row",
    )
    comments = (project / "deploy" / "base" / "analysis.yaml").read_text()
    for env in ENVS:
        for template in built(project, env, "AnalysisTemplate"):
            for metric in template["spec"]["metrics"]:
                limit = metric["consecutiveErrorLimit"]
                assert limit + 1 == promised, (
                    f"{template['metadata']['name']}/{metric['name']}: docs/deploying.md says "
                    f"{promised} errors in a row fail the run; consecutiveErrorLimit "
                    f"{limit} fails it at {limit + 1}"
                )
    if "name: ready" in comments:
        said = _times(comments, r"(one|two|three)\s+in\s+a\s+row\s+fail\s+the\s+run")
        assert said == promised


@pytest.mark.parametrize("combo", [combo_id(a) for a in COMBOS])
def test_the_docs_grant_what_the_plugin_needs(projects: dict[str, Path], combo: str) -> None:
    """promote/abort/retry patch the status subresource and fall back only on
    NotFound, so Forbidden fails them; `status` waits, before its --timeout
    applies, until its informers have listed these kinds (viewcontroller.go)."""
    docs = (projects[combo] / "docs" / "deploying.md").read_text()
    paragraph = docs.split("The identity the deploy workflow uses needs", 1)[1].split("\n\n")[0]
    rights = " ".join(paragraph.split())
    assert "`rollouts/status`" in rights
    watched = re.search(r"list and watch ([^(]*)\(", rights)
    assert watched, rights
    for kind in ("Rollouts", "ReplicaSets", "Pods", "AnalysisRuns", "Experiments"):
        assert kind in watched.group(1), f"{kind} missing from the rights to list and watch"


# The contract's drain after the grace period (docs/service-contract.md,
# "SIGTERM"): in-flight requests get this long before the process exits.
CONTRACT_DRAIN_SECONDS = 5
# Room for the process to exit and the runtime to notice, so Kubernetes never
# SIGKILLs a pod that is still draining.
EXIT_MARGIN_SECONDS = 5


@pytest.mark.parametrize("combo", [combo_id(a) for a in COMBOS])
def test_kubernetes_waits_for_the_whole_graceful_shutdown(
    projects: dict[str, Path], combo: str
) -> None:
    """terminationGracePeriodSeconds must cover readiness-off + drain + exit, or
    the kubelet SIGKILLs pods mid-request during every rollout."""
    for env in ENVS:
        (rollout,) = built(projects[combo], env, "Rollout")
        pod = rollout["spec"]["template"]["spec"]
        (app,) = [c for c in pod["containers"] if c["name"] == "app"]
        grace = {e["name"]: e.get("value") for e in app.get("env", [])}["SHUTDOWN_GRACE_SECONDS"]
        needed = int(grace) + CONTRACT_DRAIN_SECONDS + EXIT_MARGIN_SECONDS
        assert pod["terminationGracePeriodSeconds"] >= needed, (
            f"{combo}/{env}: terminationGracePeriodSeconds "
            f"{pod['terminationGracePeriodSeconds']} < {needed} "
            f"(SHUTDOWN_GRACE_SECONDS {grace} + drain + exit)"
        )
