"""Shared helpers for the deploy tests: answer combinations and built manifests."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conformance.stacks import STACKS
from tests.support.combos import values
from tests.support.tools import tool_env

ROOT = Path(__file__).resolve().parents[2]
ENVS = ("staging", "production")
# A digest the tests deploy; any 64 hex digits will do, but not the overlays'
# all-zero placeholder.
IMAGE = "ghcr.io/acme/demo-service@sha256:" + "3f" * 32


def manifest_combos() -> list[dict[str, str]]:
    """Every answer set that changes deploy/: traffic_router only exists for canary."""
    combos: list[dict[str, str]] = []
    for strategy in values("deploy_strategy"):
        routers = values("traffic_router") if strategy == "canary" else [None]
        for router in routers:
            for provider in values("analysis_provider"):
                for runner in values("migration_runner"):
                    answers = {
                        "deploy_strategy": strategy,
                        "analysis_provider": provider,
                        "migration_runner": runner,
                    }
                    if router is not None:
                        answers["traffic_router"] = router
                    combos.append(answers)
    combos += registry_rows(combos)
    # Other stacks change the Job's command and the pod's /tmp: every
    # strategy and router with the in-cluster Job.
    for stack in STACKS.values():
        if stack.answers:
            combos += [
                {**answers, **stack.answers}
                for answers in combos
                if not set(answers) & {"migration_tool", "stack", "registry"}
                and answers["migration_runner"] == "job"
                and answers["analysis_provider"] == "web"
            ]
    return combos


def registry_rows(base: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows above render the default registry (GHCR). The registry decides
    the pods' pull Secret (GHCR and Docker Hub need one, cloud registries pull
    with the nodes' identity): each other registry with both migration runners
    and both strategies, pairwise, on rows taken from `base` in turn."""
    rows = []
    strategies = values("deploy_strategy")
    runners = values("migration_runner")
    for i, registry in enumerate(values("registry")[1:]):
        for j, runner in enumerate(runners):
            strategy = strategies[(i + j) % len(strategies)]
            picks = [
                a
                for a in base
                if a["deploy_strategy"] == strategy and a["migration_runner"] == runner
            ]
            rows.append({**picks[i % len(picks)], "registry": registry})
    return rows


def combo_id(answers: dict[str, str]) -> str:
    keys = (
        "deploy_strategy",
        "traffic_router",
        "analysis_provider",
        "migration_runner",
        "migration_tool",
        "stack",
        "registry",
    )
    return "-".join(answers[k] for k in keys if k in answers)


def build(project: Path, env_name: str, image: str | None = IMAGE) -> str:
    """The manifests `deploy/rollout.sh manifests` prints (real `kubectl kustomize`)."""
    args = [str(project / "deploy" / "rollout.sh"), "manifests", env_name]
    if image:
        args.append(image)
    result = subprocess.run(
        args, capture_output=True, text=True, env=tool_env(), check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@functools.cache
def build_render(project: Path, env_name: str) -> str:
    """`build` of a render nobody changes (the `render` fixture's), once per
    worker: several modules check the same renders' manifests."""
    return build(project, env_name)


# libyaml's loader: the same documents as yaml.safe_load_all, parsed in C (the
# deploy tests parse every combination's manifests).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(text, Loader=_LOADER) if d]
