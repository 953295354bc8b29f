"""A stand-in `kubectl` for testing deploy/rollout.sh without a cluster.

Installed on PATH as `kubectl` by `install()`. Every call is appended to
`calls.jsonl` (argv, and stdin for `apply -f -`). `kubectl kustomize` runs the
real kubectl (it works offline), so the manifests the script applies are the
real build. Any other call is answered from `rules.json`: the first rule whose
`args` all occur in argv, in order, gives its next reply (the last reply
repeats), so a test plays back a sequence such as "paused, then healthy".
A call that no rule matches fails loudly, so an unexpected command cannot
pass unnoticed.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


@dataclass
class Reply:
    out: str = ""
    err: str = ""
    rc: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"out": self.out, "err": self.err, "rc": self.rc}


@dataclass
class Rule:
    args: list[str]
    replies: list[Reply] = field(default_factory=lambda: [Reply()])


def install(bin_dir: Path, state_dir: Path, real_kubectl: Path, rules: list[Rule]) -> None:
    """Write the `kubectl` wrapper into bin_dir and the rules into state_dir."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "rules.json").write_text(
        json.dumps([{"args": r.args, "replies": [x.as_dict() for x in r.replies]} for r in rules])
    )
    wrapper = bin_dir / "kubectl"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'FAKE_KUBECTL_STATE="{state_dir}" FAKE_KUBECTL_REAL="{real_kubectl}" '
        f'exec "{sys.executable}" "{HERE}" "$@"\n'
    )
    wrapper.chmod(0o755)


def calls(state_dir: Path) -> list[dict[str, Any]]:
    log = state_dir / "calls.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def _subsequence(needle: list[str], hay: list[str]) -> bool:
    it = iter(hay)
    return all(any(token == h for h in it) for token in needle)


def main(argv: list[str]) -> int:
    state = Path(os.environ["FAKE_KUBECTL_STATE"])
    entry: dict[str, Any] = {"argv": argv}
    if argv[:1] == ["apply"] and "-" in argv:
        entry["stdin"] = sys.stdin.read()
    with (state / "calls.jsonl").open("a") as log:
        log.write(json.dumps(entry) + "\n")

    if argv[:1] == ["kustomize"]:
        real = os.environ["FAKE_KUBECTL_REAL"]
        os.execv(real, [real, *argv])

    rules = json.loads((state / "rules.json").read_text())
    counters_file = state / "counters.json"
    counters = json.loads(counters_file.read_text()) if counters_file.exists() else {}
    for index, rule in enumerate(rules):
        if _subsequence(rule["args"], argv):
            seen = counters.get(str(index), 0)
            counters[str(index)] = seen + 1
            counters_file.write_text(json.dumps(counters))
            reply = rule["replies"][min(seen, len(rule["replies"]) - 1)]
            # Output first, then errors, as the plugin writes them over time
            # (Python would otherwise flush its buffered stdout last).
            sys.stdout.write(reply["out"])
            sys.stdout.flush()
            sys.stderr.write(reply["err"])
            return int(reply["rc"])
    sys.stderr.write(f"fake kubectl: no rule for {argv}\n")
    return 97


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
