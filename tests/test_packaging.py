"""`pip install .` ships every package and the migrations: a module left out works from the
repository and fails only for the operator who installed synclet."""
from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_and_the_migrations_are_listed() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "synclet").rglob("__init__.py")}
    assert set(setuptools["packages"]) == on_disk | {"synclet.migrations"}
    assert {"script.py.mako", "versions/*.py"} <= set(setuptools["package-data"]["synclet.migrations"])
