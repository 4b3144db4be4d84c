"""Magento's ``searchCriteria`` over sandbox rows: parse the bracketed query, filter, sort, page.

Semantics follow Magento 2.4 on MySQL, because that is what a client meets:

* filters inside one group are OR, groups are AND; a group without filters matches everything;
* literals are converted to the column's type as MySQL does: a number column reads the literal's
  numeric prefix (``"12abc"`` is 12, ``"abc"`` is 0), a time column reads ``YYYY-MM-DD[ HH:MM:SS]``
  (an unreadable literal is compared as text), text compares case-insensitively;
* NULL matches nothing but ``null`` (so ``neq``/``nin``/``nlike`` skip NULL rows, as SQL does);
* an unknown ``condition_type`` falls back to ``eq`` (Magento's SQL builder does the same);
* ``in``/``nin`` take a comma-separated list; ``like`` knows ``%`` and ``_``; ``from`` is ``gteq``,
  ``to`` is ``lteq``, ``moreq`` is ``gteq``;
* sorting puts NULL first ascending and last descending; ties keep the natural (entity) order;
* a ``currentPage`` past the end answers the LAST page again (an empty list only when nothing
  matches); ``pageSize`` 0 or absent means everything, above the cap is an HTTP 400.
"""
from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from synclet.sandbox.model import fmt_money, fmt_time
from synclet.sandbox.onesaas import parse_time

PREFIX = "searchCriteria"
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_NUMBER_PREFIX = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)")
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "neq": operator.ne, "gt": operator.gt, "gteq": operator.ge, "moreq": operator.ge,
    "from": operator.ge, "lt": operator.lt, "lteq": operator.le, "to": operator.le,
}
CONDITIONS = frozenset(_COMPARISONS) | {"in", "nin", "like", "nlike", "null", "notnull"}


class RestError(Exception):
    """An answer Magento gives as an error: HTTP ``status`` and a ``{"message", "parameters"}`` body."""

    def __init__(self, status: int, message: str, parameters: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.parameters = status, message, parameters

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.parameters is not None:
            body["parameters"] = self.parameters
        return body


def unknown_column(name: str) -> RestError:
    """What production Magento answers for a column its table lacks (an SQL error, masked)."""
    return RestError(500, "Internal Error. Details are available in Magento log file. Report ID: %1",
                     [f"webapi-sandbox (unknown column {name!r})"])


@dataclass(frozen=True, slots=True)
class Column:
    """A filterable, sortable field: ``kind`` is ``number``, ``text`` or ``time``; ``read`` gives the
    raw value of a row (int, Decimal, str, datetime or None)."""

    kind: str
    read: Callable[[Any], Any]

    def value(self, row: Any) -> Any:
        """The row's value in this column's comparable form; None for NULL."""
        raw = self.read(row)
        if raw is None:
            return None
        if self.kind == "number":
            return Decimal(raw)
        return raw.casefold() if self.kind == "text" else raw

    def text(self, row: Any) -> str | None:
        """The value as MySQL spells it for ``LIKE``: decimals at 4 places, times as stored."""
        raw = self.read(row)
        if isinstance(raw, Decimal):
            return fmt_money(raw)
        return fmt_time(raw) if isinstance(raw, datetime) else None if raw is None else str(raw)

    def operand(self, literal: str) -> tuple[Callable[[Any], Any], Any]:
        """(row reader, operand) of one comparable type: the literal converted like MySQL would."""
        if self.kind == "number":
            match = _NUMBER_PREFIX.match(literal)
            return self.value, Decimal(match.group(1)) if match else Decimal(0)
        if self.kind == "time":
            moment = parse_time(literal)
            if moment is None:
                return self.text, literal
            return self.value, moment
        return self.value, literal.casefold()


@dataclass(frozen=True, slots=True)
class Filter:
    field: str
    value: str | None
    condition: str


@dataclass(frozen=True, slots=True)
class Criteria:
    """One request's parsed ``searchCriteria``; ``echo`` is what the answer repeats back."""

    groups: tuple[tuple[Filter, ...], ...] = ()
    sorts: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    page_size: int = 0  # 0: everything
    current_page: int = 1
    echo: Mapping[str, Any] | None = None


def _snake(name: str) -> str:
    """``pageSize`` -> ``page_size``: Magento's input processor accepts either spelling."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _tree(params: Mapping[str, str]) -> dict[str, Any] | None:
    """The bracketed keys as nested dicts in query order (as PHP builds arrays); None when the
    request has no ``searchCriteria`` at all."""
    tree: dict[str, Any] = {}
    found = False
    for key, value in params.items():
        if not key.startswith(PREFIX):
            continue
        found, rest = True, key[len(PREFIX):]
        raw = _BRACKET.findall(rest)
        if not raw or "".join(f"[{part}]" for part in raw) != rest:
            continue  # a bare ``searchCriteria=`` (the usual "no criteria") or a malformed key
        node, parts = tree, [_snake(part) for part in raw]
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return tree if found else None


def _children(node: Any) -> list[Any]:
    return list(node.values()) if isinstance(node, dict) else []


def _integer(node: Mapping[str, Any], key: str, default: int) -> int:
    text = node.get(key)
    if text is None or text == "":
        return default
    try:
        return int(str(text).strip())
    except ValueError:
        raise RestError(400, 'The "%value" value\'s type is invalid. The "%type" type was expected. '
                             "Verify and try again.", {"value": str(text), "type": "int"}) from None


def _required(name: str) -> RestError:
    return RestError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": name})


def _filter_groups(tree: Mapping[str, Any]) -> tuple[tuple[tuple[Filter, ...], ...], list[dict[str, Any]]]:
    """(the filter groups, their echo); a filter's condition defaults to ``eq``."""
    groups, echo = [], []
    for group in _children(tree.get("filter_groups")):
        filters, echo_filters = [], []
        for spec in _children(group.get("filters") if isinstance(group, dict) else None):
            if not isinstance(spec, dict) or not spec.get("field"):
                raise _required("field")
            value = spec.get("value")
            condition = str(spec.get("condition_type") or "eq").lower()
            filters.append(Filter(str(spec["field"]), None if value is None else str(value), condition))
            echo_filters.append({k: spec[k] for k in ("field", "value", "condition_type") if k in spec})
        groups.append(tuple(filters))
        echo.append({"filters": echo_filters})
    return tuple(groups), echo


def _sort_orders(tree: Mapping[str, Any]) -> tuple[tuple[tuple[str, bool], ...], list[dict[str, Any]]]:
    """(``(field, descending)`` pairs, their echo); the direction defaults to ``ASC``."""
    sorts, echo = [], []
    for spec in _children(tree.get("sort_orders")):
        if not isinstance(spec, dict) or not spec.get("field"):
            raise _required("field")
        direction = str(spec.get("direction") or "ASC").upper()
        if direction not in ("ASC", "DESC"):
            raise RestError(400, 'Sort order "%1" is not supported. Use "ASC" or "DESC".', [direction])
        sorts.append((str(spec["field"]), direction == "DESC"))
        echo.append({"field": spec["field"], "direction": direction})
    return tuple(sorts), echo


def parse(params: Mapping[str, str], max_page_size: int | None) -> Criteria:
    """Read ``searchCriteria[...]`` from a query; raises ``RestError`` as Magento would answer."""
    tree = _tree(params)
    if tree is None:
        raise _required("searchCriteria")
    groups, echo_groups = _filter_groups(tree)
    sorts, echo_sorts = _sort_orders(tree)
    page_size, current_page = _integer(tree, "page_size", 0), _integer(tree, "current_page", 1)
    if max_page_size is not None and page_size > max_page_size:
        raise RestError(400, "Maximum SearchCriteria pageSize is %max", {"max": max_page_size})
    echo: dict[str, Any] = {"filter_groups": echo_groups}
    if echo_sorts:
        echo["sort_orders"] = echo_sorts
    if "page_size" in tree:
        echo["page_size"] = page_size
    if "current_page" in tree:
        echo["current_page"] = current_page
    return Criteria(groups, sorts, max(page_size, 0), current_page, echo)


def _like(pattern: str) -> re.Pattern[str]:
    """A ``LIKE`` pattern as a regex: ``%`` any run, ``_`` one character, a backslash escapes."""
    tokens = re.findall(r"\\.|.", pattern, re.DOTALL)
    regex = "".join(".*" if t == "%" else "." if t == "_" else re.escape(t[-1]) for t in tokens)
    return re.compile(regex, re.IGNORECASE | re.DOTALL)


def predicate(spec: Filter, column: Column) -> Callable[[Any], bool]:
    """The row test for one filter, compiled once per request rather than once per row."""
    condition = spec.condition if spec.condition in CONDITIONS else "eq"
    if condition in ("null", "notnull"):
        wanted = condition == "null"
        return lambda row: (column.read(row) is None) == wanted
    if spec.value is None:
        return lambda row: False  # ``= NULL`` is never true
    literal = str(spec.value)
    if condition in ("like", "nlike"):
        pattern, wanted = _like(literal), condition == "like"
        return lambda row: (text := column.text(row)) is not None and bool(pattern.fullmatch(text)) == wanted
    if condition in ("in", "nin"):
        # operands in sets, one per row reader: a page's ``order_id in (100 ids)`` must not cost
        # 100 comparisons per row, or the sandbox, not the client, sets the pace of a benchmark
        wanted = condition == "in"
        sets: dict[Callable[[Any], Any], set[Any]] = {}
        for item in literal.split(","):
            read, operand = column.operand(item.strip())
            sets.setdefault(read, set()).add(operand)
        lookups = list(sets.items())
        return lambda row: column.read(row) is not None and any(read(row) in ops for read, ops in lookups) == wanted
    read, operand = column.operand(literal)
    compare = _COMPARISONS[condition]
    return lambda row: (value := read(row)) is not None and compare(value, operand)


def select(rows: Iterable[Any], columns: Mapping[str, Column], criteria: Criteria) -> list[Any]:
    """The rows matching every group (any filter of a group), sorted by the sort orders."""
    tests = []
    for group in criteria.groups:
        for spec in group:
            if spec.field not in columns:
                raise unknown_column(spec.field)
        if group:
            tests.append([predicate(spec, columns[spec.field]) for spec in group])
    chosen = [row for row in rows if all(any(test(row) for test in group) for group in tests)]
    for field, descending in reversed(criteria.sorts):  # stable sorts, last key first
        if field not in columns:
            raise unknown_column(field)
        value = columns[field].value
        chosen.sort(key=lambda row: ((cell := value(row)) is not None, cell), reverse=descending)
    return chosen


def page_of(rows: list[Any], criteria: Criteria) -> list[Any]:
    """The requested page; past the end, the last page again (Magento clamps ``currentPage``)."""
    size = criteria.page_size
    if not size:
        return rows
    last_page = max(1, -(-len(rows) // size))
    current = min(max(criteria.current_page, 1), last_page)
    return rows[(current - 1) * size:current * size]
