"""The sandbox's Valerdat purchase-order API over real HTTP: token auth with expiry and revocation,
ids paging, details with offset times that mean the truth's UTC instants, deleted orders, the
rate limit, and determinism for a seed."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
import requests

from synclet.sandbox import Sandbox

NOW = datetime(2026, 4, 15)  # 30 days back spans the switch to summer time: +01:00 and +02:00 both occur
ORDERS = 300
LOGIN = {"customer": "sandbox", "username": "synclet", "password": "sandbox-password"}


class FakeClock:
    """Seconds the test moves by hand, so token lifetimes and the rate window need no sleep."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def shop() -> Iterator[Sandbox]:
    """A read-only shop shared by the tests that do not mutate it."""
    with Sandbox(orders=ORDERS, seed=7, now=NOW) as sandbox:
        yield sandbox


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def fresh(clock: FakeClock) -> Iterator[Sandbox]:
    """A small shop of its own, on a hand-moved clock, for a test that mutates it."""
    with Sandbox(orders=40, seed=3, now=NOW, valerdat_token_lifetime=60, valerdat_clock=clock) as sandbox:
        yield sandbox


def login(sb: Sandbox, **changes: str) -> requests.Response:
    return requests.post(f"{sb.valerdat_url}/api/auth/token/", json=LOGIN | changes, timeout=30)


def token(sb: Sandbox) -> str:
    response = login(sb)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def get(sb: Sandbox, path: str, tok: str | None, params: dict[str, Any] | None = None) -> requests.Response:
    headers = {"Authorization": f"Token {tok}"} if tok is not None else {}
    return requests.get(f"{sb.valerdat_url}/api/purchase-orders/{path}", params=params, headers=headers, timeout=30)


def ids_page(sb: Sandbox, tok: str, **params: Any) -> dict[str, Any]:
    response = get(sb, "ids/", tok, params)
    assert response.status_code == 200, response.text
    return response.json()


def all_ids(sb: Sandbox, tok: str, **params: Any) -> list[dict[str, Any]]:
    """Every result, following ``next`` links as a client does."""
    body, results = ids_page(sb, tok, **params), []
    while True:
        results += body["results"]
        if body["next"] is None:
            return results
        response = requests.get(body["next"], headers={"Authorization": f"Token {tok}"}, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()


def utc(text: str) -> str:
    """An ISO 8601 time with an offset as the truth's naive UTC text."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.tzinfo is not None, text
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def test_login_gives_a_token_and_wrong_credentials_are_refused(shop: Sandbox) -> None:
    response = login(shop)
    assert response.status_code == 200
    assert response.json()["expires_in"] == 3600 and response.json()["token"]
    for field in LOGIN:
        refused = login(shop, **{field: "wrong"})
        assert refused.status_code == 401
        assert refused.json() == {"detail": "Invalid credentials."}


def test_every_call_needs_a_valid_token(shop: Sandbox) -> None:
    for tok in (None, "not-a-token"):
        response = get(shop, "ids/", tok)
        assert response.status_code == 401
        assert "detail" in response.json()
    bearer = requests.get(f"{shop.valerdat_url}/api/purchase-orders/ids/", timeout=30,
                          headers={"Authorization": f"Bearer {token(shop)}"})
    assert bearer.status_code == 401


def test_a_token_expires_after_its_lifetime(fresh: Sandbox, clock: FakeClock) -> None:
    tok = token(fresh)
    clock.now += 59
    assert get(fresh, "ids/", tok).status_code == 200
    clock.now += 1
    expired = get(fresh, "ids/", tok)
    assert expired.status_code == 401 and expired.json()["detail"] == "Token has expired."
    assert get(fresh, "ids/", token(fresh)).status_code == 200


def test_tokens_can_be_revoked_mid_run(fresh: Sandbox) -> None:
    first, second = token(fresh), token(fresh)
    assert get(fresh, "ids/", first).status_code == 200
    response = requests.post(f"{fresh.url}/_sandbox/valerdat/expire_tokens", json={}, timeout=30)
    assert response.json() == {"expired": 2}
    assert [get(fresh, "ids/", tok).status_code for tok in (first, second)] == [401, 401]
    again = token(fresh)
    assert fresh.expire_valerdat_tokens() == 1
    assert get(fresh, "ids/", again).status_code == 401


def test_ids_are_sorted_paged_and_complete(shop: Sandbox) -> None:
    tok = token(shop)
    results = all_ids(shop, tok, page_size=37)
    truth = shop.truth("valerdat")
    assert len(results) == len(truth) == ORDERS
    keys = [(utc(row["updated_at"]), row["uuid"]) for row in results]
    assert keys == sorted(keys)
    assert sorted(keys) == sorted((row["source_updated_at"], row["external_id"]) for row in truth)
    first = ids_page(shop, tok, page_size=37)
    assert first["count"] == ORDERS and first["previous"] is None
    assert first["next"] == f"{shop.valerdat_url}/api/purchase-orders/ids/?page_size=37&page=2"
    last = ids_page(shop, tok, page_size=37, page=9)
    assert last["next"] is None and len(last["results"]) == ORDERS - 8 * 37
    assert get(shop, "ids/", tok, {"page_size": 37, "page": 10}).status_code == 404


def test_updated_since_is_inclusive_and_reads_offsets(shop: Sandbox) -> None:
    tok = token(shop)
    rows = all_ids(shop, tok, page_size=500)
    pivot = rows[len(rows) // 2]
    since = ids_page(shop, tok, updated_since=pivot["updated_at"], page_size=500)
    assert since["results"][0]["updated_at"] == pivot["updated_at"]
    assert since["count"] == sum(utc(row["updated_at"]) >= utc(pivot["updated_at"]) for row in rows)
    as_z = utc(pivot["updated_at"]).replace(" ", "T") + "Z"
    assert ids_page(shop, tok, updated_since=as_z, page_size=500)["results"] == since["results"]
    assert get(shop, "ids/", tok, {"updated_since": "yesterday"}).status_code == 400


def test_page_size_defaults_to_100_and_caps_at_500(fresh: Sandbox) -> None:
    fresh.add(560)
    tok = token(fresh)
    assert len(ids_page(fresh, tok)["results"]) == 100
    capped = ids_page(fresh, tok, page_size=10_000)
    assert len(capped["results"]) == 500 and capped["count"] == 600 and capped["next"]


def test_detail_matches_the_truth_with_offsets_converted_to_utc(shop: Sandbox) -> None:
    tok = token(shop)
    offsets: set[str] = set()
    for row in shop.truth("valerdat"):
        response = get(shop, f"{row['external_id']}/", tok)
        assert response.status_code == 200, response.text
        po = response.json()
        offsets |= {po[name][19:] for name in ("created_at", "updated_at")}
        assert (utc(po["created_at"]), utc(po["updated_at"])) == (row["order_date"], row["source_updated_at"])
        assert (po["uuid"], po["number"], po["status"]) == (row["external_id"], row["order_number"], row["status"])
        assert (po["supplier"]["email"], po["supplier"]["name"]) == (row["customer_email"], row["customer_name"])
        assert Decimal(po["total"]) == Decimal(row["grand_total"])
        assert Decimal(po["subtotal"]) + Decimal(po["tax_total"]) + Decimal(po["shipping_total"]) == Decimal(po["total"])
        for line, item in zip(po["lines"], row["items"], strict=True):
            assert Decimal(line["tax_rate"]) / 100 == Decimal(item["tax_rate"])
            assert Decimal(line["total"]) == Decimal(item["line_total_incl_tax"])
        assert po["status"] in {"draft", "sent", "confirmed", "partially_received", "received", "cancelled"}
        assert po["number"] == f"PO-{row['order_date'][:4]}-{po['number'][-6:]}"
    assert offsets == {"Z", "+01:00", "+02:00"}


def test_unknown_and_deleted_orders_are_404_but_still_listed(fresh: Sandbox) -> None:
    tok = token(fresh)
    assert get(fresh, "00000000-0000-0000-0000-000000000000/", tok).json() == {"detail": "Not found."}
    gone = fresh.truth("valerdat")[4]["external_id"]
    assert fresh.set_deleted([5]) == [5]
    assert get(fresh, f"{gone}/", tok).status_code == 404
    assert gone in {row["uuid"] for row in all_ids(fresh, tok)}
    assert gone not in fresh.truth_by_id("valerdat")
    requests.delete(f"{fresh.url}/_sandbox/deleted", json={}, timeout=30)
    assert get(fresh, f"{gone}/", tok).status_code == 200
    response = requests.post(f"{fresh.url}/_sandbox/deleted", json={"ids": [5]}, timeout=30)
    assert response.json() == {"ids": [5]} and get(fresh, f"{gone}/", tok).status_code == 404


def test_rate_limit_answers_429_with_retry_after(fresh: Sandbox, clock: FakeClock) -> None:
    assert get(fresh, "ids/", token(fresh)).status_code == 200  # off by default
    settings = requests.post(f"{fresh.url}/_sandbox/valerdat/settings", json={"rate_limit": 3}, timeout=30)
    assert settings.json() == {"token_lifetime": 60, "rate_limit": 3}
    tok = token(fresh)
    assert [get(fresh, "ids/", tok).status_code for _ in range(4)] == [200, 200, 200, 429]
    throttled = get(fresh, "ids/", tok)
    assert throttled.headers["Retry-After"] == "1" and "detail" in throttled.json()
    assert get(fresh, "ids/", token(fresh)).status_code == 200  # the limit is per token
    clock.now += 1
    assert get(fresh, "ids/", tok).status_code == 200


def test_env_points_a_client_at_valerdat(shop: Sandbox) -> None:
    env = shop.env(onesaas=False, valerdat=True)
    assert env["VALERDAT_BASE_URL"] == shop.valerdat_url and shop.valerdat_url.endswith("/valerdat")
    assert (env["VALERDAT_CUSTOMER"], env["VALERDAT_USERNAME"], env["VALERDAT_PASSWORD"]) == tuple(LOGIN.values())
    assert "MAGENTO_BASE_URL" not in env and "VALERDAT_BASE_URL" not in shop.env()


def test_the_same_seed_serves_the_same_orders(shop: Sandbox) -> None:
    with Sandbox(orders=ORDERS, seed=7, now=NOW) as twin, Sandbox(orders=ORDERS, seed=8, now=NOW) as other:
        assert twin.truth("valerdat") == shop.truth("valerdat")
        uuid = shop.truth("valerdat")[0]["external_id"]
        assert get(twin, f"{uuid}/", token(twin)).json() == get(shop, f"{uuid}/", token(shop)).json()
        assert get(other, f"{uuid}/", token(other)).status_code == 404
