"""scripts/pins against local stand-ins for GitHub, PyPI and an OCI registry.

Upstream git repositories are real bare repositories in tmp (lightweight and
annotated tags, prereleases, odd tags, a force-moved tag), reached through
file:// URLs. PyPI's JSON API is a small in-test HTTP server. Image digests
come from Debian's `docker-registry` (the CNCF distribution registry) run on
127.0.0.1; only the anonymous-token handshake, which that registry cannot
offer without TLS and a token service, is exercised against an in-test server.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PINS_CLI = ROOT / "scripts" / "pins"
sys.path.insert(0, str(ROOT / "scripts"))

from pinstool import checks, npm, oci, pinsfile, sources  # noqa: E402
from pinstool.gitrefs import SourceError  # noqa: E402
from pinstool.versions import newest_stable  # noqa: E402


def today() -> str:
    return datetime.date.today().isoformat()


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


# --- upstream stand-ins --------------------------------------------------------


class Upstream:
    """Bare repositories laid out as <base>/<owner>/<name>, built via a clone."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def git(self, *args: str, cwd: Path, date: str = "2026-01-01T12:00:00+00:00") -> str:
        env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        return subprocess.run(
            ["git", "-c", "init.defaultBranch=main", "-c", "tag.gpgSign=false", *args],
            cwd=cwd,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def repo(self, name: str, tags: list[tuple[str, str, bool]]) -> dict[str, str]:
        """Create owner/name with one commit per (tag, date, annotated) in
        order; returns tag -> commit SHA."""
        work = self.base.parent / "work" / name
        work.mkdir(parents=True)
        self.git("init", "--quiet", cwd=work)
        commits: dict[str, str] = {}
        for tag, date, annotated in tags:
            self.git("commit", "--quiet", "--allow-empty", "-m", tag, cwd=work, date=date)
            extra = ["-a", "-m", f"release {tag}"] if annotated else []
            self.git("tag", *extra, tag, cwd=work, date=date)
            commits[tag] = self.git("rev-parse", "HEAD", cwd=work)
        bare = self.base / name
        bare.parent.mkdir(parents=True, exist_ok=True)
        self.git("clone", "--quiet", "--bare", str(work), str(bare), cwd=self.base)
        return commits

    def move_tag(self, name: str, tag: str, to: str) -> None:
        self.git("--git-dir", str(self.base / name), "tag", "-f", tag, to, cwd=self.base)

    @property
    def url(self) -> str:
        return self.base.as_uri() + "/"


class _PypiHandler(BaseHTTPRequestHandler):
    projects: ClassVar[dict[str, dict[str, Any]]] = {}

    def do_GET(self) -> None:
        name = self.path.strip("/").split("/")[-2] if self.path.endswith("/json") else ""
        body = self.projects.get(name)
        if body is None:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def serve() -> Iterator[Any]:
    """Start HTTP handlers on 127.0.0.1; all are shut down after the module."""
    servers: list[ThreadingHTTPServer] = []

    def start(handler: type[BaseHTTPRequestHandler]) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _files(yanked: bool = False) -> list[dict[str, Any]]:
    return [{"filename": "x.whl", "yanked": yanked}]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory, serve: Any) -> dict[str, Any]:
    """The git and PyPI stand-ins; read-only for the tests, so built once."""
    up = Upstream(tmp_path_factory.mktemp("upstream") / "git")
    up.base.mkdir()
    current = up.repo(
        "acme/current",
        [
            ("v1.0.0", "2026-01-01T00:00:00+00:00", False),
            ("v1.1.0", "2026-02-01T00:00:00+00:00", True),
            ("v1", "2026-02-01T00:00:00+00:00", False),  # moving major: not a release
            ("vv9.0.0", "2026-02-02T00:00:00+00:00", False),  # typo tag: ignored
            ("v1.2.0-rc1", "2026-03-01T00:00:00+00:00", True),  # prerelease: ignored
        ],
    )
    stale = up.repo(
        "acme/stale",
        [
            ("v1.0.0", "2026-01-01T00:00:00+00:00", False),
            ("v2.0.0", "2026-05-04T08:30:00+02:00", True),
            ("v3.0.0-beta.1", "2026-06-01T00:00:00+00:00", False),
        ],
    )
    hijacked = up.repo(
        "acme/hijacked",
        [
            ("v3.1.0", "2026-01-01T00:00:00+00:00", False),
            ("evil", "2026-03-19T00:00:00+00:00", False),
            ("v3.2.0", "2026-04-01T00:00:00+00:00", True),
        ],
    )
    up.move_tag("acme/hijacked", "v3.1.0", hijacked["evil"])
    # Tools' and the cluster's upstreams: (tag, date, annotated) in release order.
    for name, tags in {
        "gitleaks/gitleaks": [("v8.30.1", "2026-03-12", False), ("v8.31.0", "2026-09-01", True)],
        "kubernetes-sigs/kustomize": [
            ("kustomize/v5.8.1", "2026-02-10", True),
            ("api/v0.99.0", "2026-02-10", True),
            ("kustomize/v5.9.0", "2026-08-01", True),
        ],
        "aquasecurity/trivy": [("v0.74.0", "2026-08-14", False), ("v0.75.0", "2026-09-01", False)],
        "argoproj/argo-rollouts": [
            ("v1.9.1", "2026-07-06", False),
            ("v1.10.0-rc1", "2026-07-07", False),
            ("stable", "2026-07-07", False),
        ],
        "kubernetes/kubernetes": [
            ("v1.34.2", "2026-06-01", True),
            ("v1.34.3", "2026-07-01", True),
            ("v1.35.0-rc.1", "2026-07-02", True),
            ("v1.35.0", "2026-08-01", True),
        ],
        "etcd-io/etcd": [("v3.6.16", "2026-06-01", True), ("v3.7.0", "2026-08-01", True)],
        "kubernetes-sigs/kwok": [("v0.8.0", "2026-06-01", True)],
        # Each release tagged twice: v3.X.Y and its Go module version v0.3XX.Y.
        "prometheus/prometheus": [
            ("v3.16.0", "2026-06-01", True),
            ("v0.316.0", "2026-06-01", True),
            ("v3.16.1", "2026-07-01", True),
            ("v0.316.1", "2026-07-01", True),
            ("v3.17.0", "2026-08-01", True),
            ("v0.317.0", "2026-08-01", True),
        ],
    }.items():
        up.repo(name, [(tag, f"{day}T00:00:00+00:00", annotated) for tag, day, annotated in tags])

    class Pypi(_PypiHandler):
        projects: ClassVar[dict[str, dict[str, Any]]] = {
            "uv": {
                "releases": {
                    "0.13.0": _files(),
                    "0.13.9": _files(),
                    "0.14.0rc1": _files(),
                    "0.14.0": _files(yanked=True),
                }
            },
            "zizmor": {"releases": {"1.32.0": _files(), "1.4.0": _files()}},
        }

    return {
        "env": {"PINS_GIT_BASE": up.url, "PINS_PYPI_BASE": serve(Pypi) + "/pypi/"},
        "current": current,
        "stale": stale,
        "hijacked": hijacked,
    }


@pytest.fixture
def world(tmp_path: Path, upstream: dict[str, Any]) -> dict[str, Any]:
    """A pins.yml pinning the stand-ins, with comments to preserve."""
    current, stale, hijacked = upstream["current"], upstream["stale"], upstream["hijacked"]
    pins = tmp_path / "pins.yml"
    pins.write_text(
        f"""\
# Test pins: every comment below must survive `update`.
images: {{}}

tools:
  uv: 0.13.0                # trailing comment on a tool
  zizmor: 1.32.0
  gitleaks: 8.30.1
  trivy: v0.74.0            # written with its v, as the action input wants
  kustomize: 5.8.1
  # checksum of kustomize's release tarball: only a human refreshes it
  kustomize_linux_amd64_sha256: "{"a" * 64}"
  argo_rollouts: 1.9.1
  kubernetes_min: "1.34"    # policy, not a release

# Actions
actions:
  acme/current:
    tag: v1.1.0
    sha: {current["v1.1.0"]}
    date: "2026-02-01"
  acme/stale:
    tag: v1.0.0
    sha: {stale["v1.0.0"]}
    date: "2026-01-01"
    note: "kept"            # notes stay
  acme/hijacked:
    tag: v3.1.0
    sha: {hijacked["v3.1.0"]}
    date: "2026-01-01"
""",
        encoding="utf-8",
    )
    return {**upstream, "pins": pins}


def run_pins(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PINS_CLI), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- version selection ---------------------------------------------------------


def test_newest_stable_ignores_prereleases_moving_and_odd_tags() -> None:
    tags = ["v4", "vv4.0.0", "v4.1.0", "v4.10.0-rc1", "v4.2.0", "latest", "v4.2.0-beta", "stable"]
    assert newest_stable(tags) == "v4.2.0"
    assert newest_stable(["v1", "main"]) is None


def test_newest_stable_orders_numerically_including_calendar_versions() -> None:
    assert newest_stable(["v1.9.0", "v1.10.0", "v1.9.10"]) == "v1.10.0"
    # Zero-padded calendar versions are releases too, compared as numbers.
    assert newest_stable(["2024.12.1", "2025.01.07", "2025.1.6"]) == "2025.01.07"
    assert newest_stable(["v2024.9.0", "v2025.02.0"]) == "v2025.02.0"


def test_newest_stable_prefers_the_pinned_spelling_and_honours_prefixes() -> None:
    assert newest_stable(["0.35.0", "v0.35.0"], like="v0.34.0") == "v0.35.0"
    assert newest_stable(["0.35.0", "v0.35.0"], like="0.34.0") == "0.35.0"
    tags = ["kustomize/v5.8.1", "api/v9.9.9", "kustomize/v5.10.0", "go1.26.8", "go1.27rc1"]
    assert newest_stable(tags, prefix="kustomize/") == "kustomize/v5.10.0"
    assert newest_stable(["go1.26.8", "go1.26.10", "go1.27rc1"], prefix="go") == "go1.26.10"


# --- check / update against local git and PyPI ---------------------------------


def test_check_reports_stale_rows_and_a_repointed_tag(world: dict[str, Any]) -> None:
    before = world["pins"].read_bytes()
    result = run_pins("check", "--pins", str(world["pins"]), env=world["env"])
    assert result.returncode == 1, result.stdout + result.stderr
    table = {
        line.split()[1]: line.split() for line in result.stdout.splitlines()[1:] if line[:1] != " "
    }
    stale_v2 = world["stale"]["v2.0.0"]
    assert table["acme/stale"][-1] == "stale" and stale_v2[:12] in table["acme/stale"]
    assert table["acme/hijacked"][-1] == "HIJACK?"
    assert table["uv"][-3:] == ["0.13.0", "0.13.9", "stale"]  # rc and all-yanked skipped
    assert table["gitleaks"][-1] == "stale"
    assert table["trivy"][-3:] == ["v0.74.0", "0.75.0", "stale"]
    assert table["kustomize"][-1] == "manual"  # a pinned checksum blocks the bump
    for current in ("acme/current", "zizmor", "argo_rollouts", "kubernetes_min"):
        assert current not in table
    assert "POSSIBLE TAG HIJACK: acme/hijacked" in result.stderr
    assert world["hijacked"]["evil"] in result.stderr
    assert "9 pins checked: 4 stale, 1 suspicious, 1 need a person" in result.stdout
    assert world["pins"].read_bytes() == before  # check never writes


def test_update_applies_safe_changes_only_and_keeps_comments(world: dict[str, Any]) -> None:
    pins: Path = world["pins"]
    before = pins.read_text(encoding="utf-8")
    result = run_pins("update", "--pins", str(pins), env=world["env"])
    # The hijack and the hand-made checksum still need a person.
    assert result.returncode == 1, result.stdout + result.stderr
    after = pins.read_text(encoding="utf-8")
    data = yaml.safe_load(after)
    stale = data["actions"]["acme/stale"]
    # Annotated tag peeled: the commit, not the tag object; its own date.
    assert stale == {
        "tag": "v2.0.0",
        "sha": world["stale"]["v2.0.0"],
        "date": "2026-05-04",
        "note": "kept",
    }
    assert data["actions"]["acme/hijacked"]["sha"] == world["hijacked"]["v3.1.0"]
    assert data["actions"]["acme/hijacked"]["tag"] == "v3.1.0"
    assert data["tools"]["uv"] == "0.13.9"
    assert data["tools"]["gitleaks"] == "8.31.0"
    assert data["tools"]["kustomize"] == "5.8.1"
    assert data["tools"]["kubernetes_min"] == "1.34"
    # Exactly the expected lines changed; every comment and quote kept.
    changed = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == [
        "-  uv: 0.13.0                # trailing comment on a tool",
        "+  uv: 0.13.9                # trailing comment on a tool",
        "-  gitleaks: 8.30.1",
        "-  trivy: v0.74.0            # written with its v, as the action input wants",
        "+  gitleaks: 8.31.0",
        "+  trivy: v0.75.0            # written with its v, as the action input wants",
        "-    tag: v1.0.0",
        f"-    sha: {world['stale']['v1.0.0']}",
        '-    date: "2026-01-01"',
        "+    tag: v2.0.0",
        f"+    sha: {world['stale']['v2.0.0']}",
        '+    date: "2026-05-04"',
    ]
    # Idempotent: a second update changes nothing more.
    again = run_pins("update", "--pins", str(pins), env=world["env"])
    assert again.returncode == 1
    assert pins.read_text(encoding="utf-8") == after


@pytest.mark.parametrize(
    ("tool", "pinned"),
    [
        ("zizmor", "1.33.0"),  # PyPI: withdrawn since, or not yet listed
        ("zizmor", "1.33.0rc1"),  # PyPI pre-release, after the newest final
        ("trivy", "v0.76.0"),  # git: after the newest stable tag, v0.75.0
        ("argo_rollouts", "1.10.0"),  # git: upstream only has v1.10.0-rc1
    ],
)
def test_a_pin_ahead_of_upstream_is_never_downgraded(
    upstream: dict[str, Any], tool: str, pinned: str
) -> None:
    config = checks.Config(
        git_base=upstream["env"]["PINS_GIT_BASE"], pypi_base=upstream["env"]["PINS_PYPI_BASE"]
    )
    found = checks.check_tool(config, tool, pinned, [])
    assert found.status == checks.MANUAL, found
    assert found.updates == {}
    assert "newer than upstream's newest release" in found.detail


def test_a_tool_that_follows_an_image_is_never_bumped_alone(upstream: dict[str, Any]) -> None:
    config = checks.Config(pypi_base=upstream["env"]["PINS_PYPI_BASE"])
    image = {"image": "ghcr.io/astral-sh/uv", "tag": "0.13.0", "digest": "sha256:" + "0" * 64}
    data = {"tools": {"uv": "0.13.0"}, "images": {"uv": image}}
    [found] = checks.run_all(config, data, {"tools"})
    assert found.status == checks.MANUAL, found
    assert found.updates == {}
    assert found.detail == "refresh images.uv (tag and digest) by hand, then set uv: 0.13.9"


def test_real_tools_uv_is_the_uv_of_the_uv_image() -> None:
    # The Dockerfile builds with images.uv; pyproject requires uv >= tools.uv.
    data = yaml.safe_load((ROOT / "extensions" / "pins.yml").read_text())
    for tool, image in sources.FOLLOWS_IMAGE.items():
        assert str(data["tools"][tool]) == str(data["images"][image]["tag"]), tool


def test_all_current_exits_0(world: dict[str, Any]) -> None:
    pins: Path = world["pins"]
    data = pinsfile.load(pins)
    del data["actions"]["acme/stale"], data["actions"]["acme/hijacked"]
    data["tools"] = {"zizmor": "1.32.0", "argo_rollouts": "1.9.1"}
    pinsfile.dump(data, pins)
    result = run_pins("check", "--pins", str(pins), env=world["env"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == (
        "3 pins checked: 0 stale, 0 suspicious, 0 need a person, 0 unreadable"
    )


def test_unreachable_sources_exit_2_and_are_named(world: dict[str, Any], tmp_path: Path) -> None:
    env = {**world["env"], "PINS_GIT_BASE": (tmp_path / "nowhere").as_uri() + "/"}
    result = run_pins("check", "--pins", str(world["pins"]), "--only", "actions", env=env)
    assert result.returncode == 2
    assert "acme/current: git ls-remote failed" in result.stdout
    assert "3 unreadable" in result.stdout
    env = {**world["env"], "PINS_PYPI_BASE": "http://127.0.0.1:9/pypi/"}  # discard port
    result = run_pins("update", "--pins", str(world["pins"]), "--only", "tools", env=env)
    assert result.returncode == 2
    assert "tools.uv: http://127.0.0.1:9/pypi/uv/json: ConnectError" in result.stdout


def test_unknown_tool_and_bad_file_are_clear_errors(world: dict[str, Any], tmp_path: Path) -> None:
    pins: Path = world["pins"]
    pins.write_text(pins.read_text() + "\n", encoding="utf-8")
    data = pinsfile.load(pins)
    data["tools"]["frobnicate"] = "1.0.0"
    data["actions"]["acme/current"]["sha"] = "abc123"  # a short SHA is no pin
    pinsfile.dump(data, pins)
    result = run_pins("check", "--pins", str(pins), env=world["env"])
    assert result.returncode == 2
    assert "no upstream known for tools.frobnicate" in result.stdout
    assert "actions.acme/current needs a `tag` and a full 40-character commit `sha`" in (
        result.stdout
    )
    broken = tmp_path / "broken.yml"
    broken.write_text("- just\n- a list\n", encoding="utf-8")
    result = run_pins("check", "--pins", str(broken), env=world["env"])
    assert result.returncode == 2
    assert "expected a mapping at the top level" in result.stderr
    assert "Traceback" not in result.stderr
    # Unparseable YAML and a duplicated key: exit 2 (not 1, "stale"), no traceback.
    for text, reason in [("tools:\n  uv: [1\n", "expected ','"), ("a: 1\na: 2\n", "duplicate")]:
        broken.write_text(text, encoding="utf-8")
        result = run_pins("check", "--pins", str(broken), env=world["env"])
        assert result.returncode == 2, result.stderr
        assert f"scripts/pins: cannot read {broken}" in result.stderr
        assert reason in result.stderr
        assert "Traceback" not in result.stderr


def test_cluster_pins_move_within_their_minor_and_follow_kubernetes_min(
    upstream: dict[str, Any], tmp_path: Path
) -> None:
    pins = tmp_path / "pins.yml"
    pins.write_text(
        """\
tools:
  kubernetes_min: "1.34"
cluster:
  kubernetes: v1.34.2   # comment kept
  etcd: v3.6.16
  kwok: v0.8.0
""",
        encoding="utf-8",
    )
    result = run_pins("check", "--pins", str(pins), env=upstream["env"])
    assert result.returncode == 1, result.stdout + result.stderr
    table = {line.split()[1]: line.split() for line in result.stdout.splitlines()[1:3]}
    # A new patch of the pinned minor is a safe bump; a newer minor is a person's call.
    assert table["kubernetes"][-3:] == ["v1.34.2", "1.34.3", "stale"]
    assert table["etcd"][-3:] == ["v3.6.16", "3.7.0", "manual"]
    assert "cluster.etcd: v3.7.0 is a newer minor" in result.stdout
    assert "3 pins checked: 1 stale, 0 suspicious, 1 need a person" in result.stdout

    result = run_pins("update", "--pins", str(pins), "--only", "cluster", env=upstream["env"])
    assert result.returncode == 1, result.stdout + result.stderr
    text = pins.read_text(encoding="utf-8")
    assert "kubernetes: v1.34.3   # comment kept" in text and "etcd: v3.6.16" in text

    # The test cluster is the oldest Kubernetes the manifests support.
    pins.write_text(text.replace('"1.34"', '"1.35"'), encoding="utf-8")
    result = run_pins("check", "--pins", str(pins), "--only", "cluster", env=upstream["env"])
    assert "cluster.kubernetes: must be a 1.35 release (tools.kubernetes_min)" in result.stdout


def test_prometheus_pin_compares_go_module_versions_only(
    upstream: dict[str, Any], tmp_path: Path
) -> None:
    """Prometheus is pinned as its Go module (v0.316.0): its release tags
    (v3.16.0) are a different spelling of the same versions, never newer ones."""
    pins = tmp_path / "pins.yml"
    pins.write_text('tools:\n  kubernetes_min: "1.34"\ncluster:\n  prometheus: v0.316.0\n')
    result = run_pins("update", "--pins", str(pins), "--only", "cluster", env=upstream["env"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "prometheus: v0.316.1" in pins.read_text(encoding="utf-8")
    result = run_pins("check", "--pins", str(pins), "--only", "cluster", env=upstream["env"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cluster.prometheus: v0.317.0 is a newer minor" in result.stdout, result.stdout
    assert "v3." not in result.stdout


# --- the real pins.yml -------------------------------------------------------------


def test_real_pins_round_trip_byte_for_byte(tmp_path: Path) -> None:
    copy = tmp_path / "pins.yml"
    shutil.copy2(ROOT / "extensions" / "pins.yml", copy)
    pinsfile.dump(pinsfile.load(copy), copy)
    assert copy.read_bytes() == (ROOT / "extensions" / "pins.yml").read_bytes()


def test_every_real_tool_has_a_known_upstream() -> None:
    data = yaml.safe_load((ROOT / "extensions" / "pins.yml").read_text(encoding="utf-8"))
    jobs = checks.plan(data, {"tools"})
    unknown = [name for _, name, _, function, _ in jobs if function is not checks.check_tool]
    assert unknown == [], f"add these tools to scripts/pinstool/sources.py: {unknown}"
    for key in data["tools"]:
        if key not in sources.TOOL_SOURCES and key not in sources.POLICY_KEYS:
            assert sources.companion_owner(key, set(sources.TOOL_SOURCES)) is not None
    assert set(data["cluster"]) <= set(sources.CLUSTER_SOURCES)


# --- OCI registry ------------------------------------------------------------------

REGISTRY_BIN = shutil.which("docker-registry")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """Debian's distribution registry on 127.0.0.1, storage in tmp, no auth."""
    if REGISTRY_BIN is None:
        pytest.skip("docker-registry not installed (Debian: apt-get install docker-registry)")
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'blobs'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [REGISTRY_BIN, "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "exited")
            time.sleep(0.05)
        else:
            raise RuntimeError("docker-registry did not answer within 5 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _push_blob(base: str, name: str, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = httpx.post(f"{base}/v2/{name}/blobs/uploads/")
    assert start.status_code == 202, start.text
    # The upload URL carries its own state in the query: add to it, keep it.
    location = httpx.URL(base).join(start.headers["location"])
    done = httpx.put(location.copy_merge_params({"digest": digest}), content=data)
    assert done.status_code == 201, done.text
    return {"digest": digest, "size": len(data)}


def _push_manifest(base: str, name: str, ref: str, body: dict[str, Any]) -> str:
    data = json.dumps(body).encode()
    reply = httpx.put(
        f"{base}/v2/{name}/manifests/{ref}",
        content=data,
        headers={"Content-Type": body["mediaType"]},
    )
    assert reply.status_code == 201, reply.text
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_image(base: str, name: str, tag: str, layer: bytes) -> tuple[str, str]:
    """An OCI image and a one-platform index over it; returns both digests."""
    config = _push_blob(base, name, b'{"architecture":"amd64","os":"linux"}')
    blob = _push_blob(base, name, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {**config, "mediaType": "application/vnd.oci.image.config.v1+json"},
        "layers": [{**blob, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}],
    }
    manifest_digest = _push_manifest(base, name, f"{tag}-amd64", manifest)
    size = len(json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": manifest_digest,
                "size": size,
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    return _push_manifest(base, name, tag, index), manifest_digest


def test_registry_tag_resolves_to_its_index_digest(registry: str) -> None:
    index_digest, manifest_digest = _push_image(registry, "distroless/python3", "nonroot", b"l1")
    digest, media_type = oci.resolve_digest("gcr.io/distroless/python3", "nonroot", registry)
    assert digest == index_digest != manifest_digest
    assert media_type == "application/vnd.oci.image.index.v1+json"
    # A single-platform tag resolves to its manifest.
    digest, media_type = oci.resolve_digest("gcr.io/distroless/python3", "nonroot-amd64", registry)
    assert (digest, media_type) == (manifest_digest, "application/vnd.oci.image.manifest.v1+json")
    with pytest.raises(SourceError, match="tag not found"):
        oci.resolve_digest("gcr.io/distroless/python3", "missing", registry)


def test_check_and_update_images_through_the_registry(registry: str, world: dict[str, Any]) -> None:
    old_digest, _ = _push_image(registry, "library/postgres", "18-trixie", b"old")
    new_digest, _ = _push_image(registry, "library/postgres", "18-trixie", b"new")  # tag moves
    pins: Path = world["pins"]
    pins.write_text(
        pins.read_text().replace(
            "images: {}\n",
            "images:\n"
            "  postgres:\n"
            "    image: docker.io/library/postgres\n"
            "    tag: 18-trixie\n"
            "    # index digest\n"
            f"    digest: {old_digest}\n"
            '    source: "somewhere"\n'
            '    checked: "2026-01-01"\n',
        ),
        encoding="utf-8",
    )
    env = {**world["env"], "PINS_REGISTRY_BASE": registry}
    result = run_pins("check", "--pins", str(pins), "--only", "images", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "postgres" in result.stdout and "stale" in result.stdout
    before = today()
    result = run_pins("update", "--pins", str(pins), "--only", "images", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    text = pins.read_text()
    assert "    # index digest\n" in text
    row = yaml.safe_load(text)["images"]["postgres"]
    assert row["digest"] == new_digest
    # still a quoted string, not a YAML date; the run may cross midnight
    assert row["checked"] in {before, today()}
    assert row["source"] == f"registry: {registry}/v2/library/postgres/manifests/18-trixie"


# --- anonymous bearer-token flow (gcr.io, ghcr.io, Docker Hub style) --------------


def test_anonymous_token_flow(serve: Any) -> None:
    body = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}'
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    seen: dict[str, Any] = {}

    class Registry(BaseHTTPRequestHandler):
        def _manifest(self, with_body: bool) -> None:
            seen.setdefault("accept", self.headers.get("Accept"))
            if self.headers.get("Authorization") != "Bearer t0ken":
                self.send_response(401)
                self.send_header(
                    "WWW-Authenticate",
                    f'Bearer realm="{seen["base"]}/token",service="test-registry",'
                    'scope="repository:astral-sh/uv:pull"',
                )
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
            # No Docker-Content-Digest on purpose: the client hashes the body.
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._manifest(with_body=False)

        def do_GET(self) -> None:
            if self.path.startswith("/token"):
                seen["token_query"] = parse_qs(urlparse(self.path).query)
                data = json.dumps({"token": "t0ken"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self._manifest(with_body=True)

        def log_message(self, *args: Any) -> None:
            pass

    base = serve(Registry)
    seen["base"] = base
    assert oci.resolve_digest("ghcr.io/astral-sh/uv", "0.13.0", base) == (
        digest,
        "application/vnd.oci.image.index.v1+json",
    )
    assert seen["token_query"] == {
        "service": ["test-registry"],
        "scope": ["repository:astral-sh/uv:pull"],
    }
    assert seen["accept"].startswith("application/vnd.oci.image.index.v1+json")


def test_image_names_map_to_registry_api_urls() -> None:
    assert oci.manifest_url("postgres", "18") == (
        "https://registry-1.docker.io/v2/library/postgres/manifests/18"
    )
    assert oci.manifest_url("docker.io/library/postgres", "18-trixie") == (
        "https://registry-1.docker.io/v2/library/postgres/manifests/18-trixie"
    )
    assert oci.manifest_url("gcr.io/distroless/python3-debian13", "nonroot") == (
        "https://gcr.io/v2/distroless/python3-debian13/manifests/nonroot"
    )
    assert oci.manifest_url("ghcr.io/astral-sh/uv", "0.13.0", "http://127.0.0.1:5000/") == (
        "http://127.0.0.1:5000/v2/astral-sh/uv/manifests/0.13.0"
    )


# --- npm registry ------------------------------------------------------------------


class _NpmHandler(BaseHTTPRequestHandler):
    packages: ClassVar[dict[str, Any]] = {
        "node": {
            "versions": {
                "22.99.0": {},
                "24.20.0": {},
                "24.21.0": {},
                "24.22.0": {"deprecated": "withdrawn"},
                "24.23.0-rc.1": {},
                "26.1.0": {},
            }
        },
        "npm": {"versions": {"11.19.1": {}, "11.20.0": {}, "12.0.0-pre.1": {}}},
    }

    def do_GET(self) -> None:
        body = self.packages.get(self.path.strip("/"))
        if body is None:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_npm_newest_release_skips_prereleases_withdrawn_and_other_majors(serve: Any) -> None:
    base = serve(_NpmHandler)
    assert npm.newest_release("node", base, major=24) == "24.21.0"
    assert npm.newest_release("node", base) == "26.1.0"
    assert npm.newest_release("npm", base) == "11.20.0"
    with pytest.raises(SourceError, match="no stable release in major 25"):
        npm.newest_release("node", base, major=25)
    with pytest.raises(SourceError, match="HTTP 404"):
        npm.newest_release("left-pad", base)


def test_node_stays_on_its_lts_major_and_moves_with_its_build_image(serve: Any) -> None:
    config = checks.Config(npm_base=serve(_NpmHandler))
    image = {"image": "docker.io/library/node", "tag": "24-trixie-slim", "digest": "sha256:0"}
    data = {"tools": {"node": "24.20.0", "npm": "11.19.1"}, "images": {"node_build": image}}
    found = {f.name: f for f in checks.run_all(config, data, {"tools"})}
    assert found["node"].upstream == "24.21.0"  # not 26.1.0: another major
    assert found["node"].status == checks.MANUAL and found["node"].updates == {}
    assert found["node"].detail == (
        "refresh images.node_build (tag and digest) by hand, then set node: 24.21.0"
    )
    assert found["npm"].status == checks.STALE
    assert found["npm"].updates == {"npm": "11.20.0"}
