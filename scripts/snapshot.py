"""The working tree's template as a plain folder (no git).

Rendering from it shows uncommitted changes, and Copier neither clones the
repository nor picks the latest tag. Shared by the test fixtures,
scripts/bench and scripts/relock-python.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def copy_template(dst: Path) -> Path:
    """Copy what Copier reads (copier.yml, template/, partials/, extensions/) into `dst`.

    partials/ holds the fragments template/ files include (Copier's Jinja
    loader is rooted at the template repository, not at `_subdirectory`).
    """
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "copier.yml", dst / "copier.yml")
    shutil.copytree(ROOT / "template", dst / "template")
    shutil.copytree(ROOT / "partials", dst / "partials")
    shutil.copytree(
        ROOT / "extensions", dst / "extensions", ignore=shutil.ignore_patterns("__pycache__")
    )
    return dst
