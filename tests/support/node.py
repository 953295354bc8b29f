"""The TypeScript stack's toolchain for the suite: the pinned Node, and Prisma offline.

Node comes from the npm registry's `node` package (scripts/pinned_node.py), so
the suite runs the service on the same Node major as its image. Prisma's CLI
downloads its schema engine at first use, which this machine cannot reach;
PRISMA_SCHEMA_ENGINE_BINARY naming an existing file lets `prisma generate`
(all that `make setup` needs) run without it. The stand-in is not executable,
so anything that really needs the engine (migrate deploy/diff) fails loudly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from scripts.pinned_node import node_bin

STAND_IN = Path(__file__).with_name("prisma-engine-stand-in.txt")


def prisma_env(base: Mapping[str, str]) -> dict[str, str]:
    """`base` with the pinned Node first on PATH and Prisma's engine stand-in."""
    path = f"{node_bin()}{os.pathsep}{base.get('PATH', os.environ.get('PATH', ''))}"
    return {
        **base,
        "PATH": path,
        "PRISMA_SCHEMA_ENGINE_BINARY": str(STAND_IN),
        "CHECKPOINT_DISABLE": "1",
    }
