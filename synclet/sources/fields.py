"""Reading JSON objects into typed values, with the path of every field in every error.

Shared by the sources: each conversion either returns a value or raises ``MappingError`` naming
the exact field (``Items[2].Quantity``) and quoting the value short, on one line.
"""
from __future__ import annotations

import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from synclet.errors import MappingError
from synclet.records import Credit, canonical_json

MONEY_PLACES = Decimal("0.0001")


def money(value: Decimal) -> Decimal:
    """A derived amount at Magento's 4 places, rounded half up as Magento rounds. An absurd value
    is returned as it is, for the store to reject whole."""
    try:
        return value.quantize(MONEY_PLACES, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return value

LARGEST_NUMBER = Decimal("1e100")
MESSAGE_VALUE_LIMIT = 80  # characters of a payload value quoted in an error message
CREDIT_AMOUNTS = ("subtotal", "tax_amount", "shipping_amount", "adjustment_positive", "adjustment_negative", "grand_total")


@dataclass(frozen=True)
class Fields:
    """A JSON object plus its path, so every conversion error names the exact field."""

    data: Mapping[str, Any]
    path: str = ""

    def name(self, key: str) -> str:
        """The path of ``key``; a key from the payload itself (``ReplaceOrderNumber Id="…"``) is
        shown quoted and cut when it is long or holds control characters."""
        label = key if len(key) <= 40 and key.isprintable() else quoted(key)
        return f"{self.path}.{label}" if self.path else label

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None or value.__class__ is str:  # the common case, first
            return value
        if isinstance(value, (dict, list)):
            raise MappingError(f"{self.name(key)}: expected text, got {type_name(value)}")
        return value if isinstance(value, str) else str(value)

    def decimal(self, key: str) -> Decimal | None:
        """Strings and JSON numbers alike; never via float, so no cent is lost."""
        value = self.data.get(key)
        kind = value.__class__
        if kind is Decimal:
            number: Decimal | None = value
        elif blank(value):
            return None
        else:
            try:
                number = Decimal(value) if isinstance(value, (int, Decimal, str)) and kind is not bool else None
            except InvalidOperation:
                number = None
        if number is None or not number.is_finite():
            raise MappingError(f"{self.name(key)}: {quoted(value)} is not a number")
        if number.copy_abs() >= LARGEST_NUMBER:
            raise MappingError(f"{self.name(key)}: {quoted(value)} is out of range")
        return number

    def time(self, key: str) -> datetime | None:
        """``YYYY-MM-DD HH:MM:SS`` (UTC) or ISO with an offset, as naive UTC."""
        value = self.data.get(key)
        if blank(value):
            return None
        try:
            parsed = datetime.fromisoformat(_utc_suffix(value.strip())) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise MappingError(f"{self.name(key)}: {quoted(value)} is not a date")
        if parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError:  # the offset moves it before year 1 or past 9999
            raise MappingError(f"{self.name(key)}: {quoted(value)} is out of range in UTC") from None

    def child(self, key: str) -> Fields | None:
        """A nested object; PHP writes an empty one as ``[]``, so that counts as absent too."""
        value = self.data.get(key)
        if value is None or value == "" or value == []:
            return None
        if not isinstance(value, dict):
            raise MappingError(f"{self.name(key)}: expected an object, got {type_name(value)}")
        return Fields(value, self.name(key))

    def objects(self, key: str) -> list[Fields]:
        """A list of objects (lines, credits); anything else in it is a mapping error."""
        value = self.data.get(key)
        if value is None or value == "":
            return []
        if not isinstance(value, list):
            raise MappingError(f"{self.name(key)}: expected a list, got {type_name(value)}")
        elements = []
        for index, element in enumerate(value):
            if not isinstance(element, dict):
                raise MappingError(f"{self.name(key)}[{index}]: expected an object, got {type_name(element)}")
            elements.append(Fields(element, f"{self.name(key)}[{index}]"))
        return elements


def _utc_suffix(text: str) -> str:
    """A trailing ``Z`` or ``z`` (UTC in ISO 8601, as Valerdat writes it) as ``+00:00``: Python
    3.10's ``fromisoformat``, which synclet supports, refuses both, and 3.11's the ``z``."""
    return text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text


def identifier(value: object) -> str | None:
    """An Id-like value as text, or None when blank or structured (for skip and reject only)."""
    return None if blank(value) or isinstance(value, (dict, list)) else str(value)


def blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = MESSAGE_VALUE_LIMIT


def quoted(value: object) -> str:
    """A payload value as an error message quotes it: on one line, control characters escaped, and
    short, whatever the size of the value."""
    return cut(str(value) if isinstance(value, Decimal) else _REPR.repr(value))


def cut(text: str, limit: int = MESSAGE_VALUE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def credit_memo(credit: Fields) -> Credit:
    """A Magento ``sales_creditmemo`` row (both Magento APIs send it): its amounts are named like the
    record's fields, but for ``subtotal``, which is net of the memo's discount (``net_subtotal``)."""
    amounts = {amount: credit.decimal(amount) for amount in CREDIT_AMOUNTS}
    return Credit(
        external_id=required_text(credit, "entity_id"),
        credit_number=credit.text("increment_id"),
        state=credit.text("state"),
        credit_date=credit.time("created_at"),
        raw_json=canonical_json(credit.data),
        source_updated_at=credit.time("updated_at"),
        **{**amounts, "subtotal": net_subtotal(credit)},
    )


def net_subtotal(fields: Fields) -> Decimal | None:
    """Magento's ``subtotal`` (of an order or a credit memo) is before discount; the contract's is the
    sum of line totals excluding tax, after discount (as OneSaas reports an order's), so
    ``grand_total = subtotal + tax + shipping`` (+ a memo's adjustments)."""
    subtotal, discount = fields.decimal("subtotal"), fields.decimal("discount_amount")
    return None if subtotal is None else subtotal + (discount or Decimal(0))  # discount_amount is negative


def required_text(fields: Fields, key: str) -> str:
    value = fields.text(key)
    if value is None or not value.strip():
        raise MappingError(f"{fields.name(key)}: missing or empty")
    return value
