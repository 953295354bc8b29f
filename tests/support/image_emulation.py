"""Replay a Dockerfile's stages on the host, without a Docker engine.

Each stage gets its own temporary root directory standing in for `/`. COPY
copies from the build context (filtered by .dockerignore, as the engine does)
or from an earlier stage's root; exec-form RUN runs the same argv with the
stage's ENV, its paths mapped under the root. Anything this replay cannot
honour faithfully (shell-form RUN, ARG, wildcards, unknown flags) raises
`Unsupported` instead of being skipped, so a green test means every
instruction was replayed.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser
from dockerfile_parse.util import extract_key_values

# What Docker sets when a base image defines no PATH (distroless images set it).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A build's network is the builder's, not the image's: RUN steps see the host's
# proxy and CA settings (this machine reaches PyPI through its own CA).
NETWORK_VARS = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_NATIVE_TLS",
)
# Metadata only: nothing to replay.
_IGNORED = {"COMMENT", "LABEL", "EXPOSE"}
_GLOB_CHARS = set("*?[")


class Unsupported(AssertionError):
    """The Dockerfile does something the host replay cannot honour."""


@dataclass
class Stage:
    name: str
    base: str  # an earlier stage's name or an external image reference
    root: Path | None = None  # None: an external image (only stand-ins exist)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "0:0"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    copies_from_context: list[str] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)


def parse_stages(dockerfile: Path) -> list[Stage]:
    """Split the Dockerfile into stages (instructions kept in order)."""
    stages: list[Stage] = []
    for item in DockerfileParser(str(dockerfile)).structure:
        instruction = item["instruction"]
        if instruction == "FROM":
            words = item["value"].split()
            if words[0].startswith("--"):
                raise Unsupported(f"line {item['startline'] + 1}: FROM flags ({words[0]})")
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name=name, base=words[0]))
        elif instruction in _IGNORED:
            continue
        elif not stages:
            raise Unsupported(f"line {item['startline'] + 1}: {instruction} before any FROM")
        else:
            stages[-1].lines.append(item)
    if not stages:
        raise Unsupported(f"{dockerfile}: no FROM")
    return stages


def image_name(reference: str) -> str:
    """`registry/repo:tag@sha256:...` -> `registry/repo`."""
    name = reference.split("@", 1)[0]
    head, sep, tail = name.rpartition(":")
    return head if sep and "/" not in tail else name


def exec_form(value: str, where: str) -> list[str]:
    try:
        argv = json.loads(value)
    except json.JSONDecodeError:
        argv = None
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise Unsupported(
            f"{where}: not exec form ({value!r}); the distroless image has no shell to run it"
        )
    return argv


@dataclass
class Replay:
    """Replays stages; `stand_ins` maps external image name -> {path: host file}."""

    context: Path
    scratch: Path  # where build-stage roots are made
    stand_ins: Mapping[str, Mapping[str, Path]]
    host_python: Path  # replaces the image's interpreter (UV_PYTHON)
    cache_dir: Path  # every `--mount=type=cache` target (the uv cache)
    stages: dict[str, Stage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ignore = self.context / ".dockerignore"
        patterns = ignore.read_text().splitlines() if ignore.exists() else []
        self.context_files = set(exclude_paths(str(self.context), patterns))

    # -- paths ---------------------------------------------------------------

    @staticmethod
    def under(root: Path, image_path: str) -> Path:
        return root / posixpath.normpath(image_path).lstrip("/")

    def mapped_env(self, stage: Stage, root: Path) -> dict[str, str]:
        """The stage's ENV with absolute paths (and PATH-like lists) under the root."""
        env = env_under(root, {"PATH": DEFAULT_PATH, **stage.env})
        for key, value in stage.env.items():
            if key == "UV_PYTHON":
                env[key] = str(self.host_python)
            elif value in self.cache_targets(stage):
                env[key] = str(self.cache_dir)
        return env

    @staticmethod
    def cache_targets(stage: Stage) -> set[str]:
        return {
            part.removeprefix("target=")
            for line in stage.lines
            if line["instruction"] == "RUN"
            for word in line["value"].split()
            if word.startswith("--mount=")
            for part in word.removeprefix("--mount=").split(",")
            if part.startswith("target=")
        }

    # -- stages --------------------------------------------------------------

    def build(self, stage: Stage, root: Path) -> Stage:
        """Replay `stage` into `root` (a fresh, empty directory)."""
        if stage.base in self.stages:  # FROM <earlier stage>: inherit it all
            parent = self.stages[stage.base]
            assert parent.root is not None
            shutil.copytree(parent.root, root, symlinks=True, dirs_exist_ok=True)
            stage.env, stage.workdir, stage.user = dict(parent.env), parent.workdir, parent.user
            stage.entrypoint, stage.cmd = list(parent.entrypoint), list(parent.cmd)
        root.mkdir(parents=True, exist_ok=True)
        stage.root = root
        for line in stage.lines:
            where = f"Dockerfile line {line['startline'] + 1} (stage {stage.name})"
            handler = getattr(self, f"do_{line['instruction'].lower()}", None)
            if handler is None:
                raise Unsupported(f"{where}: {line['instruction']} is not replayed on the host")
            handler(stage, line["value"], where)
        self.stages[stage.name] = stage
        return stage

    def declare_external(self, stage: Stage) -> None:
        if stage.lines:
            raise Unsupported(
                f"stage {stage.name}: instructions on an external image with no host root"
            )
        self.stages[stage.name] = stage

    def do_workdir(self, stage: Stage, value: str, where: str) -> None:
        stage.workdir = posixpath.normpath(posixpath.join(stage.workdir, value))
        assert stage.root is not None
        self.under(stage.root, stage.workdir).mkdir(parents=True, exist_ok=True)

    def do_env(self, stage: Stage, value: str, where: str) -> None:
        if "$" in value:
            raise Unsupported(f"{where}: variable expansion in ENV")
        stage.env.update(extract_key_values(False, {}, {}, value))

    def do_user(self, stage: Stage, value: str, where: str) -> None:
        stage.user = value.strip()

    def do_entrypoint(self, stage: Stage, value: str, where: str) -> None:
        stage.entrypoint, stage.cmd = exec_form(value, where), []

    def do_cmd(self, stage: Stage, value: str, where: str) -> None:
        stage.cmd = exec_form(value, where)

    def do_copy(self, stage: Stage, value: str, where: str) -> None:
        words = value.split()
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        source_stage = None
        for flag in flags:
            key, _, arg = flag[2:].partition("=")
            if key == "from":
                source_stage = arg
            elif key not in {"chown", "chmod", "link"}:  # ownership/layering only
                raise Unsupported(f"{where}: COPY --{key}")
        if len(paths) < 2 or any(_GLOB_CHARS & set(p) for p in paths):
            raise Unsupported(f"{where}: COPY needs literal sources and a destination")
        *sources, dest = paths
        assert stage.root is not None
        target = self.under(stage.root, posixpath.join(stage.workdir, dest))
        into_dir = dest.endswith("/") or len(sources) > 1
        for source in sources:
            origin = self.copy_origin(source_stage, source, where)
            if source_stage is None:
                stage.copies_from_context.append(posixpath.normpath(source))
            if origin.is_dir() and not origin.is_symlink():
                shutil.copytree(origin, target, symlinks=True, dirs_exist_ok=True)
                if source_stage is None:  # the engine sends only what .dockerignore lets through
                    self.drop_ignored(target, posixpath.normpath(source))
            else:
                out = target / origin.name if into_dir else target
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, out, follow_symlinks=False)

    def copy_origin(self, source_stage: str | None, source: str, where: str) -> Path:
        if source_stage is None:
            relative = posixpath.normpath(source).lstrip("/")
            if relative == ".":
                raise Unsupported(f"{where}: COPY of the whole context")
            if relative not in self.context_files:
                raise AssertionError(
                    f"{where}: {source} is not in the build context "
                    "(missing, or excluded by .dockerignore)"
                )
            return self.context / relative
        stage = self.stages.get(source_stage)
        if stage is not None and stage.root is not None:
            origin = self.under(stage.root, source)
        else:  # an external image (by stage name or by reference): host stand-ins only
            image = image_name(stage.base if stage else source_stage)
            found = self.stand_ins.get(image, {}).get(posixpath.normpath(source))
            if found is None:
                raise Unsupported(f"{where}: no host stand-in for {source} of {image}")
            origin = found.resolve()
        if not origin.exists() and not origin.is_symlink():
            raise AssertionError(f"{where}: {source} does not exist in stage {source_stage}")
        return origin

    def drop_ignored(self, target: Path, source: str) -> None:
        for path in sorted(target.rglob("*"), reverse=True):
            relative = posixpath.join(source, path.relative_to(target).as_posix())
            if relative not in self.context_files:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()

    def do_run(self, stage: Stage, value: str, where: str) -> None:
        rest = value.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            kind = dict(p.partition("=")[::2] for p in flag.removeprefix("--mount=").split(","))
            if not flag.startswith("--mount=") or kind.get("type") != "cache":
                raise Unsupported(f"{where}: RUN {flag} (only cache mounts are replayed)")
            rest = rest.strip()
        argv = exec_form(rest, where)
        assert stage.root is not None
        env = self.mapped_env(stage, stage.root)
        program = argv[0]
        if "/" not in program:  # the engine looks it up on the stage's PATH
            found = shutil.which(program, path=env["PATH"])
            if found is None:
                raise AssertionError(f"{where}: {program} is not on the stage's PATH")
            program = found
        else:
            program = str(self.under(stage.root, program))
        if Path(program).name != "uv":
            raise Unsupported(f"{where}: only uv commands are replayed ({argv[0]})")
        env["HOME"] = str(self.under(stage.root, "/root"))
        env.update({k: os.environ[k] for k in NETWORK_VARS if k in os.environ})
        result = subprocess.run(
            [program, *argv[1:]],
            cwd=self.under(stage.root, stage.workdir),
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{where}: {argv} exited {result.returncode}\n{result.stdout[-4000:]}\n"
                f"{result.stderr[-4000:]}"
            )


def env_under(root: Path, env: Mapping[str, str]) -> dict[str, str]:
    """ENV values that are absolute paths (or PATH-like lists of them), under `root`."""
    return {
        key: ":".join(str(Replay.under(root, p)) for p in value.split(":"))
        if value.startswith("/")
        else value
        for key, value in env.items()
    }


def command_under(root: Path, argv: list[str]) -> list[str]:
    """An image command with its absolute paths mapped under `root`."""
    return [str(Replay.under(root, a)) if a.startswith("/") else a for a in argv]


def make_readonly(root: Path, writable: bool = False) -> None:
    """chmod -R a-w (or back to u+w), symlinks untouched."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | 0o200 if writable else mode & ~0o222)


def run_as(user: str) -> dict[str, object]:
    """Popen arguments that honour the image's USER where this process can."""
    if os.geteuid() != 0:
        return {}  # already unprivileged: a-w binds us as it binds the image's user
    uid, _, gid = user.partition(":")
    return {"user": int(uid), "group": int(gid or uid), "extra_groups": []}
