"""Recorded-shape payloads for the parser tests, and edits of them."""
from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
DELETE = object()


def load_fixture(folder: str, name: str) -> Any:
    """A fixture decoded the way HttpClient decodes bodies: fractions become Decimal."""
    return json.loads((FIXTURES / folder / name).read_text(encoding="utf-8"), parse_float=Decimal)


def changed(payload: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    """A deep copy of ``payload`` with the value at ``path`` replaced (or removed with DELETE)."""
    result = copy.deepcopy(payload)
    target: Any = result
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result
