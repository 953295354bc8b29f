# Managed by Slipway (platform-owned): `copier update` keeps this file current.
"""`make migration-lint`, step one: each migration's SQL in a file of its own.

squawk judges a file as a whole: in one file for the whole history, an index
built on a table "created earlier in this file" looks harmless even when that
table is years old and large. One file per revision (`alembic upgrade
<previous>:<revision> --sql`, offline, no database) shows each migration as it
will run against a database where everything before it already exists.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"  # Alembic's configuration


def main(out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.sql"):
        stale.unlink()
    config = Config(toml_file=PYPROJECT)
    revisions = list(ScriptDirectory.from_config(config).walk_revisions("base", "heads"))
    for number, script in enumerate(reversed(revisions), start=1):
        previous = script.down_revision
        if isinstance(previous, tuple):  # a merge revision: lint it from its first parent
            previous = previous[0]
        target = f"{previous}:{script.revision}" if previous else script.revision
        path = out_dir / f"{number:04d}_{script.revision}.sql"
        with path.open("w", encoding="utf-8") as sql:
            command.upgrade(Config(toml_file=PYPROJECT, output_buffer=sql), target, sql=True)
        print(f"migration-lint: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "build/migrations")))
