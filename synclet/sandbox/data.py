"""The sandbox's store: generated truth orders, their mutations, and the truth tests compare with.

Source-neutral on purpose: every API the sandbox fakes (OneSaas, Magento REST, others later)
renders these same orders. The money formulas and the meaning of each truth field are in
``synclet.sandbox.model``. All reads and writes go through ``Store.lock`` so a server thread always
renders a consistent order while a test mutates the store.
"""
from __future__ import annotations

import gc
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

from synclet.sandbox.generator import Factory
from synclet.sandbox.model import (  # re-exported: the model is part of this module's surface
    Address, CreditItem, CreditMemo, Customer, EditedFrom, Invoice, Line, Order, Shipping, fmt_time,
)
from synclet.sandbox.rest_render import rest_truth
from synclet.sandbox.valerdat_render import valerdat_truth

__all__ = ["Address", "CreditItem", "CreditMemo", "Customer", "EditedFrom", "Invoice", "Line", "Order",
           "Shipping", "Store", "utc_now"]

ONE_SECOND = timedelta(seconds=1)
QUIRK_NO_ADDRESS = 0.03
QUIRK_VIRTUAL = 0.05
QUIRK_EDITED = 0.03
QUIRK_DELETED_LINE = 0.03
QUIRK_CREDITS = 0.12  # of paid orders, which are ~80 % of all
#: truth view -> what a correct client of that API stores for one order of the store seeded with the int
TRUTH_VIEWS: dict[str, Callable[[Order, int], dict[str, Any]]] = {
    "onesaas": lambda order, seed: order.truth(), "rest": lambda order, seed: rest_truth(order),
    "valerdat": valerdat_truth,
}


def utc_now() -> datetime:
    """Naive UTC now at whole seconds, the store database's resolution."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Building 100,000 orders makes millions of objects and nothing cyclic: collecting them while
    they are made doubles the time, so bulk work pauses the cycle collector."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Store:
    """Orders by ``entity_id`` in creation order, plus a ``clock`` that mutations move forward.

    ``version`` grows with every mutation, so readers may cache what they derive from the orders
    (mutate through these methods, not by assigning to an order).

    ``rest_broken`` holds ids of orders the REST API cannot load (see ``synclet.sandbox.rest``);
    ``deleted`` ids of orders deleted at the source (Valerdat: listed by a stale ids page, 404 on detail).
    ``credit_bumps_order`` says whether a credit memo added by ``update`` also moves its order's
    ``updated_at`` (the memo's own ``updated_at`` always moves); Magento does not guarantee it.
    """

    def __init__(self, seed: int = 1, now: datetime | None = None, *, credit_bumps_order: bool = True) -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self.rng = random.Random(seed)
        self.factory = Factory(self.rng)
        self.clock = (now or utc_now()).replace(microsecond=0)
        self.orders: list[Order] = []
        self.by_id: dict[int, Order] = {}
        self.version = 0
        self.rest_broken: set[int] = set()
        self.deleted: set[int] = set()
        self.credit_bumps_order = credit_bumps_order
        self._increment = 0
        self._credit_id = 0
        self._revision = 0

    @classmethod
    def generate(cls, count: int, seed: int = 1, now: datetime | None = None, days: int = 30, *,
                 credit_bumps_order: bool = True) -> Store:
        """``count`` orders created over the ``days`` before ``now``; the same arguments give the same store."""
        store = cls(seed, now, credit_bumps_order=credit_bumps_order)
        with paused_gc():
            store._fill(count, days)
        gc.freeze()  # long-lived: full collections need not rescan them (paging 100,000 gets 4x faster)
        return store

    def _fill(self, count: int, days: int) -> None:
        parents: list[Order] = []  # recent ordinary orders an edited order may replace
        for created, updated in self.factory.timeline(count, self.clock, days):
            if parents and self.rng.random() < QUIRK_EDITED:
                self._append_edit(parents.pop(self.rng.randrange(len(parents))), created, updated)
                continue
            order = self._append_new(created, updated)
            if order.shipping_address is not None and not order.credit_memos:
                parents.append(order)
                if len(parents) > 50:
                    del parents[0]

    def _next_increment(self) -> str:
        self._increment += 1
        return f"{self._increment:09d}"

    def _append(self, order: Order) -> Order:
        self.orders.append(order)
        self.by_id[order.entity_id] = order
        return order

    def _append_new(self, created: datetime, updated: datetime) -> Order:
        """One ordinary order, with the address and deleted-product quirks at their rates."""
        rng = self.rng
        roll = rng.random()
        order = self.factory.order(
            len(self.orders) + 1, self._next_increment(), created, updated,
            no_address=roll < QUIRK_NO_ADDRESS,
            virtual=QUIRK_NO_ADDRESS <= roll < QUIRK_NO_ADDRESS + QUIRK_VIRTUAL,
            deleted_line=rng.random() < QUIRK_DELETED_LINE,
        )
        if order.amount_paid is not None and rng.random() < QUIRK_CREDITS:
            span = int((updated - created).total_seconds())
            for _ in range(rng.choice((1, 1, 1, 2))):
                self._add_credit(order, created + timedelta(seconds=rng.randint(0, span)))
        return self._append(order)

    def _append_edit(self, parent: Order, created: datetime, updated: datetime) -> Order:
        """An edited order: a new entity numbered ``<parent>-1``; the parent is canceled."""
        order = self.factory.order(len(self.orders) + 1, f"{parent.increment_id}-1", created, updated)
        order.customer, order.billing, order.shipping_address = parent.customer, parent.billing, parent.shipping_address
        order.currency, order.store_name = parent.currency, parent.store_name
        order.edited_from = EditedFrom(parent.entity_id, parent.increment_id)
        parent.status, parent.amount_paid, parent.invoices, parent.last_transaction_id = "canceled", None, [], None
        parent.updated_at = max(parent.updated_at, created)
        return self._append(order)

    def _add_credit(self, order: Order, at: datetime) -> None:
        self._credit_id += 1
        memo = self.factory.credit_memo(order, self._credit_id, f"{self._credit_id:09d}", at)
        order.credit_memos.append(memo)

    def _stamp(self, at: datetime | None) -> datetime:
        """An explicit time (aware ones converted to UTC), or the clock plus one second; the clock
        never goes back."""
        if at is not None and at.tzinfo is not None:
            at = at.astimezone(timezone.utc).replace(tzinfo=None)
        at = (at or self.clock + ONE_SECOND).replace(microsecond=0)
        self.clock = max(self.clock, at)
        return at

    def update(self, ids: list[int] | None = None, count: int | None = None,
               updated_at: datetime | None = None) -> list[int]:
        """Change something a sync would see (status, a quantity, notes or a new credit memo) in the
        orders ``ids`` (or ``count`` random ones, default 1) and stamp them ``updated_at``."""
        with self.lock:
            if ids is None:
                wanted = min(count if count is not None else 1, len(self.orders))
                ids = sorted(self.rng.sample(range(1, len(self.orders) + 1), wanted))
            ids = list(dict.fromkeys(int(i) for i in ids))
            if not ids:
                return []
            missing = [i for i in ids if i not in self.by_id]
            if missing:
                raise KeyError(f"no such order: {missing}")
            at = self._stamp(updated_at)
            for entity_id in ids:
                self._mutate(self.by_id[entity_id], at)
            self.version += 1
            return ids

    def override(self, entity_id: int, fields: dict[str, Any]) -> None:
        """Serve ``fields`` verbatim in the order's payload (``None`` values remove a key's override):
        how tests make an order the API returns but a client cannot map."""
        with self.lock:
            overrides = self.by_id[entity_id].overrides
            overrides.update(fields)
            for key in [k for k, v in fields.items() if v is None]:
                del overrides[key]
            self.version += 1

    def _mutate(self, order: Order, at: datetime) -> None:
        self._revision += 1
        visible = [line for line in order.lines if not line.deleted_product]
        kinds = ["status", "notes"] + (["qty", "credit"] if visible else [])
        kind = self.rng.choice(kinds)
        if kind == "status":
            order.status = self.factory.other_status(order.status)
        elif kind == "notes":
            order.notes = self.factory.note(self._revision)
        elif kind == "qty":
            line = self.rng.choice(visible)
            line.qty += 1
            if order.amount_paid is not None:
                order.amount_paid = order.grand_total
        else:
            self._add_credit(order, at)
            if not self.credit_bumps_order:
                return
        order.updated_at = at

    def add(self, count: int = 1, created_at: datetime | None = None) -> list[int]:
        """Append ``count`` new orders created (and updated) at ``created_at`` or clock + 1 s."""
        with self.lock:
            if count < 1:
                return []
            at = self._stamp(created_at)
            ids = [self._append_new(at, at).entity_id for _ in range(count)]
            self.version += 1
            return ids

    def get(self, entity_id: int) -> Order:
        return self.by_id[entity_id]

    def __len__(self) -> int:
        return len(self.orders)

    def locations_csv(self) -> str:
        """Where the warehouse keeps each product, as an operator's ``sku,location,upc`` file: an
        aisle and bay per physical product, ``-`` (not picked) for the virtual ones."""
        rows = ["sku,location,upc"]
        for n, product in enumerate(self.factory.catalogue):
            rows.append(f"{product.sku},Aisle {n // 20 + 1} Bay {n % 20 + 1},{5012345000000 + product.product_id}")
        rows.extend(f"{product.sku},-," for product in self.factory.virtual_catalogue)
        return "\n".join(rows) + "\n"

    def truth(self, view: str = "onesaas") -> list[dict[str, Any]]:
        """What a synced database should hold, per order by entity_id, for a client of the API
        ``view`` (``model.Order.truth`` for OneSaas, ``rest_render.rest_truth`` for REST,
        ``valerdat_render.valerdat_truth`` for Valerdat). The REST view leaves out the ``rest_broken``
        orders and the Valerdat view the ``deleted`` ones: no client can load them."""
        if view not in TRUTH_VIEWS:
            raise ValueError(f"view must be one of {', '.join(TRUTH_VIEWS)}")
        render = partial(TRUTH_VIEWS[view], seed=self.seed)
        with self.lock, paused_gc():
            skip = {"rest": self.rest_broken, "valerdat": self.deleted}.get(view, set())
            return [render(order) for order in self.orders if order.entity_id not in skip]

    def truth_by_id(self, view: str = "onesaas") -> dict[str, dict[str, Any]]:
        """``truth(view)`` keyed by ``external_id`` (the entity id as a string; Valerdat: the uuid)."""
        return {row["external_id"]: row for row in self.truth(view)}

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {"orders": len(self.orders), "clock": fmt_time(self.clock), "version": self.version}
