"""The sandbox's Big Block Orders API over real HTTP: create, read, delete, DRF paging and errors,
API-key auth, the received log, picking, faults and the throttle."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from synclet.sandbox import Sandbox
from synclet.sandbox.bigblock import DEFAULT_API_KEY

KEY = {"API-KEY": DEFAULT_API_KEY}
ITEM = {"name": "Widget A", "description": "A sample widget", "SKU": "SKU-A", "UPC": "UPC-A",
        "ordered_quantity": 10, "quantity_fulfilled": 0, "warehouse_location": "Aisle 3", "device": None}
ORDER = {"order_number": "SO-12345",
         "shipments": [{"shipment_number": "SHIP-001", "items": [ITEM, ITEM | {"SKU": "SKU-B", "device": 7}]}]}


class FakeClock:
    """Seconds the test moves by hand, so the throttle's one-second window needs no sleep."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def sb(clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(orders=0, bigblock_clock=clock) as sandbox:
        yield sandbox


def orders_url(sb: Sandbox, order_id: int | None = None) -> str:
    return f"{sb.bigblock_url}/orders/" + (f"{order_id}/" if order_id is not None else "")


def post(sb: Sandbox, body: Any, headers: dict[str, str] = KEY) -> requests.Response:
    return requests.post(orders_url(sb), json=body, headers=headers, timeout=30)


def create(sb: Sandbox, number: str, **changes: Any) -> dict[str, Any]:
    response = post(sb, {"order_number": number, "items": [ITEM]} | changes)
    assert response.status_code == 201, response.text
    return dict(response.json())


def get(sb: Sandbox, url: str, headers: dict[str, str] = KEY) -> requests.Response:
    return requests.get(url, headers=headers, timeout=30)


def control(sb: Sandbox, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    return requests.request(method, f"{sb.url}/_sandbox/bigblock/{path}", json=body or {}, timeout=30)


def test_the_list_starts_empty(sb: Sandbox) -> None:
    response = get(sb, orders_url(sb))
    assert response.status_code == 200
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_create_answers_201_with_ids_for_the_order_its_shipments_and_items(sb: Sandbox) -> None:
    response = post(sb, ORDER)
    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["id"], order["order_number"]) == (1, "SO-12345")
    assert datetime.fromisoformat(order["created_at"].replace("Z", "+00:00")).tzinfo is not None
    [shipment] = order["shipments"]
    assert shipment["shipment_number"] == "SHIP-001" and isinstance(shipment["id"], int)
    first, second = shipment["items"]
    assert first == ITEM | {"id": first["id"]} and second == ITEM | {"SKU": "SKU-B", "device": 7, "id": second["id"]}
    assert first["id"] != second["id"]
    assert create(sb, "SO-2", items=[{k: v for k, v in ITEM.items() if k != "device"}])["shipments"][0]["items"][0][
        "device"] is None
    assert [held["id"] for held in sb.bigblock_orders()] == [1, 2]


def test_top_level_items_make_one_shipment_named_after_the_order(sb: Sandbox) -> None:
    order = create(sb, "SO-7")
    assert [shipment["shipment_number"] for shipment in order["shipments"]] == ["SO-7"]
    assert [item["SKU"] for item in order["shipments"][0]["items"]] == ["SKU-A"]


def test_a_duplicate_order_number_is_refused(sb: Sandbox) -> None:
    create(sb, "SO-1")
    again = post(sb, {"order_number": "SO-1", "items": [ITEM]})
    assert again.status_code == 400
    assert again.json() == {"non_field_errors": ["The fields order_number, voodoo_customer must make a unique set."]}
    assert [order["order_number"] for order in sb.bigblock_orders()] == ["SO-1"]


def test_get_then_delete_with_an_empty_204_then_404(sb: Sandbox) -> None:
    created = create(sb, "SO-1")
    with requests.Session() as session:  # the same kept-alive connection must survive the bodiless 204
        session.headers.update(KEY)
        assert session.get(orders_url(sb, created["id"]), timeout=30).json() == created
        deleted = session.delete(orders_url(sb, created["id"]), timeout=30)
        assert (deleted.status_code, deleted.content) == (204, b"")
        for response in (session.get(orders_url(sb, created["id"]), timeout=30),
                         session.delete(orders_url(sb, created["id"]), timeout=30)):
            assert (response.status_code, response.json()) == (404, {"detail": "Not found."})
    assert sb.bigblock_orders() == []
    assert create(sb, "SO-1")["id"] == 2  # the number is free again; ids are never reused


def test_pages_follow_next_until_null_and_hold_every_order_once(sb: Sandbox) -> None:
    numbers = [f"SO-{n:03d}" for n in range(25)]
    for number in numbers:
        create(sb, number)
    assert sb.bigblock_configure(page_size=10) == {"page_size": 10, "paginated": True, "rate_limit": None}
    seen, pages, url = [], [], orders_url(sb)
    while url is not None:
        page = get(sb, url).json()
        assert page["count"] == 25
        pages.append(page)
        seen += [order["order_number"] for order in page["results"]]
        url = page["next"]
    assert seen == numbers and [len(page["results"]) for page in pages] == [10, 10, 5]
    assert pages[0]["next"] == orders_url(sb) + "?page=2" and pages[0]["previous"] is None
    assert pages[1]["previous"] == orders_url(sb) and pages[2]["previous"] == orders_url(sb) + "?page=2"
    for past_the_end in ("4", "0", "two"):
        response = get(sb, orders_url(sb) + f"?page={past_the_end}")
        assert (response.status_code, response.json()) == (404, {"detail": "Invalid page."})


def test_unpaginated_lists_are_a_bare_array(sb: Sandbox) -> None:
    for number in ("SO-1", "SO-2", "SO-3"):
        create(sb, number)
    sb.bigblock_configure(paginated=False, page_size=2)
    assert [order["order_number"] for order in get(sb, orders_url(sb)).json()] == ["SO-1", "SO-2", "SO-3"]


@pytest.mark.parametrize(("headers", "status", "detail"), [
    ({}, 401, "Authentication credentials were not provided."),
    ({"API-KEY": ""}, 401, "Authentication credentials were not provided."),
    ({"API-KEY": "wrong"}, 401, "Invalid API key."),
    ({"API_KEY": "wrong"}, 401, "Invalid API key."),
    ({"Authorization": f"Token {DEFAULT_API_KEY}"}, 401, "Authentication credentials were not provided."),
    ({"API_KEY": DEFAULT_API_KEY}, 200, None),
    ({"api-key": DEFAULT_API_KEY}, 200, None),
])
def test_every_request_needs_the_api_key(sb: Sandbox, headers: dict[str, str], status: int,
                                          detail: str | None) -> None:
    listed, created = get(sb, orders_url(sb), headers), post(sb, ORDER, headers)
    assert (listed.status_code, created.status_code) == (status, 201 if status == 200 else status)
    if detail is not None:
        assert listed.json() == created.json() == {"detail": detail}
        assert sb.bigblock_orders() == []


@pytest.mark.parametrize(("body", "errors"), [
    ({"order_number": "SO-1", "shipments": [{"shipment_number": "S", "items": [{k: v for k, v in ITEM.items()
                                                                                if k != "SKU"}]}]},
     {"shipments": [{"items": [{"SKU": ["This field is required."]}]}]}),
    ({"order_number": "SO-1", "items": [ITEM | {"ordered_quantity": 1.5}]},
     {"items": [{"ordered_quantity": ["A valid integer is required."]}]}),
    ({"order_number": "SO-1", "items": [ITEM | {"ordered_quantity": True}]},
     {"items": [{"ordered_quantity": ["A valid integer is required."]}]}),
    ({"order_number": "SO-1", "items": [ITEM | {"ordered_quantity": 0}]},
     {"items": [{"ordered_quantity": ["Ensure this value is greater than or equal to 1."]}]}),
    ({"order_number": "SO-1", "items": [ITEM, ITEM | {"quantity_fulfilled": -1}]},
     {"items": [{}, {"quantity_fulfilled": ["Ensure this value is greater than or equal to 0."]}]}),
    ({"order_number": "SO-1", "items": [ITEM | {"name": " ", "warehouse_location": None}]},
     {"items": [{"name": ["This field may not be blank."], "warehouse_location": ["This field may not be null."]}]}),
    ({"order_number": "", "items": [ITEM]}, {"order_number": ["This field may not be blank."]}),
    ({"order_number": "x" * 101, "items": [ITEM]},
     {"order_number": ["Ensure this field has no more than 100 characters."]}),
    ({"order_number": ["SO-1"], "items": [ITEM]}, {"order_number": ["Not a valid string."]}),
    ({"order_number": "SO-1"}, {"shipments": ["This field is required."]}),
    ({"items": [ITEM]}, {"order_number": ["This field is required."]}),
    ({"order_number": "SO-1", "shipments": {"items": [ITEM]}},
     {"shipments": {"non_field_errors": ['Expected a list of items but got type "dict".']}}),
    ([ORDER], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
])
def test_invalid_orders_are_refused_naming_the_field(sb: Sandbox, body: Any, errors: dict[str, Any]) -> None:
    response = post(sb, body)
    assert (response.status_code, response.json()) == (400, errors)
    assert sb.bigblock_orders() == []


@pytest.mark.parametrize(("change", "stored"), [
    ({"ordered_quantity": "3"}, {"ordered_quantity": 3}),
    ({"ordered_quantity": 4.0}, {"ordered_quantity": 4}),
    ({"description": "", "UPC": "", "warehouse_location": ""}, {"description": "", "UPC": "", "warehouse_location": ""}),
    ({"SKU": "  SKU-A  "}, {"SKU": "SKU-A"}),
])
def test_drf_coercions_are_accepted(sb: Sandbox, change: dict[str, Any], stored: dict[str, Any]) -> None:
    item = create(sb, "SO-1", items=[ITEM | change])["shipments"][0]["items"][0]
    assert {name: item[name] for name in stored} == stored


def test_a_body_that_is_not_json_is_a_parse_error(sb: Sandbox) -> None:
    response = requests.post(orders_url(sb), data=b"{not json", headers=KEY | {"Content-Type": "application/json"},
                             timeout=30)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error - ")
    assert sb.bigblock_orders() == []


def test_unknown_routes_and_methods(sb: Sandbox) -> None:
    create(sb, "SO-1")
    for url in (orders_url(sb).rstrip("/"), orders_url(sb, 1).rstrip("/"), sb.bigblock_url + "/items/",
                orders_url(sb) + "abc/"):
        response = get(sb, url)
        assert (response.status_code, response.json()) == (404, {"detail": "Not found."}), url
    for method, url in (("PUT", orders_url(sb, 1)), ("PATCH", orders_url(sb, 1)), ("DELETE", orders_url(sb)),
                        ("POST", orders_url(sb, 1))):
        response = requests.request(method, url, json={}, headers=KEY, timeout=30)
        assert (response.status_code, response.json()) == (405, {"detail": f'Method "{method}" not allowed.'})
    assert len(sb.bigblock_orders()) == 1


def test_the_received_log_holds_exactly_what_was_sent(sb: Sandbox) -> None:
    body = {"order_number": "SO-1", "items": [ITEM]}
    post(sb, body)
    post(sb, body, headers={})
    requests.delete(orders_url(sb, 1), headers=KEY, timeout=30)
    assert sb.bigblock_received() == [
        {"method": "POST", "path": "/bigblock/api/orders/", "status": 201, "body": body},
        {"method": "POST", "path": "/bigblock/api/orders/", "status": 401, "body": body},
        {"method": "DELETE", "path": "/bigblock/api/orders/1/", "status": 204, "body": None},
    ]
    assert control(sb, "GET", "received").json() == sb.bigblock_received()


def test_picking_sets_the_first_items_quantity_fulfilled(sb: Sandbox) -> None:
    order = create(sb, "SO-1", items=[ITEM, ITEM | {"SKU": "SKU-B"}])
    picked = sb.bigblock_pick("SO-1", 2)
    assert [item["quantity_fulfilled"] for item in picked["shipments"][0]["items"]] == [2, 0]
    assert get(sb, orders_url(sb, order["id"])).json() == picked
    response = control(sb, "POST", "pick", {"order_number": "SO-1"})
    assert response.status_code == 200 and response.json()["shipments"][0]["items"][0]["quantity_fulfilled"] == 1
    with pytest.raises(KeyError):
        sb.bigblock_pick("SO-404")
    assert control(sb, "POST", "pick", {"order_number": "SO-404"}).status_code == 404
    assert control(sb, "POST", "pick", {"order_number": "SO-1", "quantity": -1}).status_code == 400


def test_an_armed_fault_hits_big_block_requests(sb: Sandbox) -> None:
    sb.arm_fault(503)
    assert post(sb, ORDER).status_code == 503
    assert sb.bigblock_orders() == [] and sb.bigblock_received() == []
    assert post(sb, ORDER).status_code == 201
    assert sb.stats()["faults_served"] == 1


def test_the_throttle_answers_429_with_retry_after(sb: Sandbox, clock: FakeClock) -> None:
    assert [get(sb, orders_url(sb)).status_code for _ in range(3)] == [200, 200, 200]  # off by default
    assert control(sb, "POST", "settings", {"rate_limit": 2}).json()["rate_limit"] == 2
    assert [get(sb, orders_url(sb)).status_code for _ in range(2)] == [200, 200]
    throttled = get(sb, orders_url(sb))
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert throttled.json() == {"detail": "Request was throttled. Expected available in 1 seconds."}
    clock.now += 1
    assert get(sb, orders_url(sb)).status_code == 200


@pytest.mark.parametrize("settings", [
    {"page_size": 0}, {"page_size": None}, {"page_size": True}, {"paginated": "no"}, {"rate_limit": 0},
    {"rate_limit": 1.5}, {"colour": "red"},
])
def test_bad_settings_are_refused_and_change_nothing(sb: Sandbox, settings: dict[str, Any]) -> None:
    response = control(sb, "POST", "settings", settings)
    assert response.status_code == 400 and "error" in response.json()
    assert control(sb, "GET", "settings").json() == {"page_size": 10, "paginated": True, "rate_limit": None}


def test_control_lists_and_forgets_the_orders(sb: Sandbox) -> None:
    create(sb, "SO-1")
    assert [order["order_number"] for order in control(sb, "GET", "orders").json()] == ["SO-1"]
    assert control(sb, "DELETE", "orders").json() == {"orders": 1, "received": 1}
    assert sb.bigblock_orders() == [] and sb.bigblock_received() == []
    assert get(sb, orders_url(sb)).json()["count"] == 0


def test_env_and_index_point_a_client_at_big_block() -> None:
    with Sandbox(orders=0, bigblock_api_key="other-key") as sandbox:
        env = sandbox.env(onesaas=False, bigblock=True)
        assert env["BIGBLOCK_BASE_URL"] == sandbox.bigblock_url == sandbox.url + "/bigblock/api"
        assert env["BIGBLOCK_API_KEY"] == "other-key" and "BIGBLOCK_BASE_URL" not in sandbox.env()
        response = requests.get(env["BIGBLOCK_BASE_URL"] + "/orders/", headers={"API-KEY": env["BIGBLOCK_API_KEY"]},
                                timeout=30)
        assert response.status_code == 200
        assert get(sandbox, env["BIGBLOCK_BASE_URL"] + "/orders/").status_code == 401  # the default key is not it
        assert requests.get(sandbox.url + "/", timeout=30).json()["bigblock"] == "/bigblock/api/"


def test_the_locations_file_covers_every_product_and_marks_virtual_ones_not_picked(sb: Sandbox) -> None:
    answer = control(sb, "GET", "locations.csv")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = [line.split(",") for line in answer.text.splitlines()]
    assert rows[0] == ["sku", "location", "upc"]
    located = {sku: location for sku, location, _ in rows[1:]}
    with Sandbox(orders=300, seed=4) as shop:
        sold = {item["sku"] for order in shop.truth() for item in order["items"] if not item["deleted_product"]}
        assert requests.get(f"{shop.url}/_sandbox/bigblock/locations.csv", timeout=30).text == answer.text
    assert sold and sold <= set(located)
    assert {sku for sku, location in located.items() if location == "-"} == {sku for sku in located if sku.startswith("VIRT-")}
