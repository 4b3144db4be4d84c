"""Property tests of the Magento REST parse functions: for any JSON they return records or raise the
typed mapping error, and what they return is always storable."""
from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from synclet.errors import MappingError
from synclet.sources.magento_rest import magento_message
from synclet.sources.magento_rest_parse import CREDITS_KEY, parse_order, parse_page, parse_stored

from test_onesaas_properties import PROPERTY, assert_short_one_line, assert_stored_whole, json_values, mutated
from test_magento_rest_parse import load
from test_valerdat_parse import decoded

ORDERS = [load(name) for name in ("order_full.json", "order_guest.json", "order_virtual.json")]
MEMOS = load("creditmemos_full.json")["items"]

orders = decoded(mutated(ORDERS) | st.dictionaries(st.text(), json_values, max_size=8))
memo_lists = decoded(st.lists(mutated(MEMOS) | json_values, max_size=3))


def _is_order_or_mapping_error(parse: Any, *args: Any) -> None:
    try:
        order = parse(*args)
    except MappingError as error:
        assert_short_one_line(str(error))
    else:
        assert_stored_whole(order)
        assert parse(*args).content_hash == order.content_hash


@PROPERTY
@given(orders, memo_lists)
def test_parse_order_returns_an_order_or_raises_mapping_error(payload: dict[str, Any], memos: list[Any]) -> None:
    _is_order_or_mapping_error(parse_order, payload, [m for m in memos if isinstance(m, dict)])


@PROPERTY
@given(orders, memo_lists | decoded(json_values))
def test_parse_stored_returns_an_order_or_raises_mapping_error(payload: dict[str, Any], memos: Any) -> None:
    _is_order_or_mapping_error(parse_stored, {**payload, CREDITS_KEY: memos})


@PROPERTY
@given(st.lists(orders, max_size=4), memo_lists, st.integers(0, 10**6))
def test_parse_page_keeps_every_order_or_rejects_it(payloads: list[dict[str, Any]], memos: list[Any], number: int) -> None:
    page = parse_page(number, payloads, [m for m in memos if isinstance(m, dict)])
    assert len(page.orders) + len(page.rejected) == len(payloads)
    for order in page.orders:
        assert_stored_whole(order)
    for rejected in page.rejected:
        assert_short_one_line(rejected.error)


@PROPERTY
@given(json_values)
def test_magento_message_on_any_body_is_one_short_line(body: Any) -> None:
    message = magento_message(body)
    assert isinstance(message, str) and "\n" not in message
