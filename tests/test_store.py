"""The store on both real databases: bulk upsert, child replacement, unchanged skip, rejects, clear."""
from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

from synclet import db, store
from synclet.records import Address, Credit, Item, Order, Rejected, canonical_json, content_hash

NOW = datetime(2026, 1, 2, 3, 4, 5)


def make_order(external_id: str, *, status: str = "pending", lines: int = 2, note: str | None = None) -> Order:
    payload = {"Id": external_id, "Status": status, "lines": lines, "note": note}
    raw = canonical_json(payload)
    return Order(
        source="magento", external_id=external_id, order_number=f"0000{external_id}", status=status,
        order_date=datetime(2026, 1, 1, 10, 0, 0), source_updated_at=datetime(2026, 1, 1, 11, 0, 0),
        currency_code="GBP", customer_email="a@example.com", customer_name="Ann Example",
        subtotal=Decimal("10.0000"), tax_amount=Decimal("2.0000"), shipping_amount=Decimal("5.0000"),
        discount_amount=Decimal("0"), grand_total=Decimal("17.0000"), payment_method="checkmo",
        payment_amount=None, shipping_method="flatrate_flatrate", notes=note, raw_json=raw, content_hash=content_hash(raw),
        items=[
            Item(n, f"SKU-{n}", f"Thing {n}", Decimal("1"), Decimal("5.0000"), Decimal("6.0000"), Decimal("0.2"),
                 Decimal("1.0000"), Decimal("0"), Decimal("6.0000"))
            for n in range(1, lines + 1)
        ],
        addresses=[Address("billing", first_name="Ann", city="Leeds"), Address("shipping", first_name="Ann", city="York")],
        credits=[Credit("c1", "100001", "2", NOW, Decimal("1"), Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0"), Decimal("1"), "{}")],
    )


def counts(conn, source: str = "magento") -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return tuple(  # type: ignore[return-value]
        conn.execute(select(func.count()).select_from(table)).scalar()
        for table in (store.ORDERS, store.ITEMS, store.ADDRESSES, store.CREDITS)
    )


def test_new_changed_and_unchanged_orders(database_url: str) -> None:
    engine = db.connect(database_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        first = store.save_page(conn, "magento", [make_order("1"), make_order("2")], NOW)
    assert (len(first.added), len(first.updated), first.unchanged) == (2, 0, 0)
    with engine.begin() as conn:
        assert counts(conn) == (2, 4, 4, 2)
        second = store.save_page(conn, "magento", [make_order("1"), make_order("2", status="complete", lines=3), make_order("3")], NOW)
    assert ([o.external_id for o in second.added], [o.external_id for o in second.updated], second.unchanged) == (["3"], ["2"], 1)
    with engine.connect() as conn:
        assert counts(conn) == (3, 7, 6, 3)
        row = conn.execute(select(store.ORDERS).where(store.ORDERS.c.external_id == "2")).mappings().one()
        assert row["status"] == "complete" and row["grand_total"] == Decimal("17.0000")
        lines = conn.execute(select(store.ITEMS.c.line_no).where(store.ITEMS.c.order_id == row["id"]).order_by(store.ITEMS.c.line_no)).scalars().all()
        assert lines == [1, 2, 3]


def test_first_synced_at_survives_an_update(database_url: str) -> None:
    engine = db.connect(database_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        store.save_page(conn, "magento", [make_order("1")], NOW)
        store.save_page(conn, "magento", [make_order("1", status="complete")], datetime(2026, 2, 1))
        row = conn.execute(select(store.ORDERS.c.first_synced_at, store.ORDERS.c.last_synced_at)).one()
    assert row == (NOW, datetime(2026, 2, 1))


def test_the_last_occurrence_of_an_id_in_a_page_wins(database_url: str) -> None:
    engine = db.connect(database_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        outcome = store.save_page(conn, "magento", [make_order("1"), make_order("1", status="canceled")], NOW)
        assert len(outcome.added) == 1
        assert conn.execute(select(store.ORDERS.c.status)).scalar() == "canceled"


def test_oversize_and_four_byte_text_is_stored(database_url: str) -> None:
    engine = db.connect(database_url)
    db.ensure_schema(engine)
    order = make_order("1", note="🙂 " * 5000)
    order = dataclasses.replace(order, customer_name="Zoë 🙂" + "x" * 400, order_number="'; DROP TABLE orders; --")
    with engine.begin() as conn:
        store.save_page(conn, "magento", [order], NOW)
        row = conn.execute(select(store.ORDERS.c.customer_name, store.ORDERS.c.notes, store.ORDERS.c.order_number)).one()
    assert row.customer_name.startswith("Zoë 🙂") and len(row.customer_name) == 255
    assert row.notes == "🙂 " * 5000
    assert row.order_number == "'; DROP TABLE orders; --"


def test_rejects_are_kept_refreshed_and_forgotten(database_url: str) -> None:
    engine = db.connect(database_url)
    db.ensure_schema(engine)
    bad = Rejected("magento", "9", "00009", '{"Id":"9"}', "Total: 'abc' is not a number")
    anonymous = Rejected("magento", None, None, '{"x":1}', "Id: missing")
    with engine.begin() as conn:
        store.save_rejects(conn, [bad, anonymous], history_id=None, now=NOW)  # type: ignore[arg-type]
        store.save_rejects(conn, [bad], history_id=None, now=NOW)  # type: ignore[arg-type]
        rows = conn.execute(select(store.REJECTS.c.reject_key, store.REJECTS.c.times_seen).order_by(store.REJECTS.c.reject_key)).all()
        assert [tuple(r) for r in rows] == [("9", 2), ("sha256:" + content_hash('{"x":1}'), 1)]
        store.forget_rejects(conn, "magento", ["9"])
        assert conn.execute(select(func.count()).select_from(store.REJECTS)).scalar() == 1


def test_clear_one_source_keeps_the_others(database_url: str) -> None:
    engine = db.connect(database_url)
    db.ensure_schema(engine)
    other = dataclasses.replace(make_order("1"), source="valerdat")
    with engine.begin() as conn:
        store.save_page(conn, "magento", [make_order("1"), make_order("2")], NOW)
        store.save_page(conn, "valerdat", [other], NOW)
        deleted = store.clear(conn, "magento")
        assert deleted["orders"] == 2
        assert counts(conn) == (1, 2, 2, 1)


def test_amounts_and_dates_the_database_cannot_hold_are_named() -> None:
    assert store.unstorable(make_order("1")) is None
    huge = dataclasses.replace(make_order("1"), grand_total=Decimal("1e15"))
    assert store.unstorable(huge) == "grand_total: 1E+15 is beyond what the database stores (|x| < 100,000,000,000,000)"
    line = make_order("1")
    line.items[1].quantity = Decimal("-1e20")
    assert (store.unstorable(line) or "").startswith("line 2 quantity:")
    ancient = dataclasses.replace(make_order("1"), order_date=datetime(1, 1, 1))
    assert store.unstorable(ancient) == "order_date: 0001-01-01 is outside the years 1000-9999"
    nan = dataclasses.replace(make_order("1"), subtotal=Decimal("NaN"))
    assert (store.unstorable(nan) or "").startswith("subtotal: NaN")


def test_the_migrations_build_exactly_the_tables(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from synclet.tables import metadata

    engine = db.connect(database_url)
    db.upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []


def test_amounts_beyond_four_places_round_half_up_on_both_databases(database_url: str) -> None:
    engine = db.connect(database_url)
    db.ensure_schema(engine)
    order = make_order("1")
    order.items[0].discount_amount = Decimal("57.28125")
    order.items[1].tax_rate = Decimal("0.0000005")
    with engine.begin() as conn:
        store.save_page(conn, "magento", [dataclasses.replace(order, grand_total=Decimal("0.00005"))], NOW)
        total = conn.execute(select(store.ORDERS.c.grand_total)).scalar()
        discounts = conn.execute(select(store.ITEMS.c.discount_amount, store.ITEMS.c.tax_rate).order_by(store.ITEMS.c.line_no)).all()
    assert total == Decimal("0.0001")
    assert discounts[0][0] == Decimal("57.2813") and discounts[1][1] == Decimal("0.000001")


def test_amounts_at_or_above_their_scale_are_stored_as_they_are(database_url: str) -> None:
    engine = db.connect(database_url)
    db.ensure_schema(engine)
    order = make_order("1")
    order.items[0].quantity = Decimal("3")
    order.items[1].unit_price_ex_tax = Decimal("1.2E+3")
    with engine.begin() as conn:
        store.save_page(conn, "magento", [dataclasses.replace(order, grand_total=Decimal("-0.1"), subtotal=None)], NOW)
        total, subtotal = conn.execute(select(store.ORDERS.c.grand_total, store.ORDERS.c.subtotal)).one()
        lines = conn.execute(select(store.ITEMS.c.quantity, store.ITEMS.c.unit_price_ex_tax).order_by(store.ITEMS.c.line_no)).all()
    assert (total, subtotal) == (Decimal("-0.1"), None)
    assert lines[0][0] == Decimal("3") and lines[1][1] == Decimal("1200")


def test_a_page_writes_through_two_engines_of_one_database_alike(database_url: str) -> None:
    """Bulk statements are compiled once per database engine: a second engine compiles its own."""
    first, second = db.connect(database_url), db.connect(database_url)
    db.ensure_schema(first)
    with first.begin() as conn:
        store.save_page(conn, "magento", [make_order("1")], NOW)
    with second.begin() as conn:
        store.save_page(conn, "magento", [make_order("2"), make_order("1", status="complete")], NOW)
    with first.connect() as conn:
        assert counts(conn) == (2, 4, 4, 2)
        assert conn.execute(select(store.ORDERS.c.status).order_by(store.ORDERS.c.external_id)).scalars().all() == ["complete", "pending"]


def test_payloads_and_notes_come_back_character_for_character(database_url: str) -> None:
    """Long text reaches MariaDB as UTF-8 bytes: every character must come back as it went."""
    text = "quote ' \" back \\ slash \x00 nul \n\r\x1a 😀👍🏽 Ω é " + "x" * 5000
    order = make_order("1", note=text)
    order = dataclasses.replace(order, raw_json=canonical_json({"note": text, "Id": "1"}))
    order.credits[0] = dataclasses.replace(order.credits[0], raw_json=text)
    engine = db.connect(database_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        store.save_page(conn, "magento", [order], NOW)
    with engine.connect() as conn:
        notes, raw_json = conn.execute(select(store.ORDERS.c.notes, store.ORDERS.c.raw_json)).one()
        credit = conn.execute(select(store.CREDITS.c.raw_json)).scalar()
    assert (notes, raw_json, credit) == (text, order.raw_json, text)


def test_identities_differing_only_in_case_are_two_orders(database_url: str) -> None:
    engine = db.connect(database_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        outcome = store.save_page(conn, "magento", [make_order("a7"), make_order("A7")], NOW)
        assert len(outcome.added) == 2
        assert conn.execute(select(func.count()).select_from(store.ORDERS)).scalar() == 2
    assert store.unstorable(make_order("9" * 65)) == "external_id: 65 characters, more than the 64 an identity may have"
