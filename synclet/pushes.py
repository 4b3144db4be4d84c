"""What synclet knows of Big Block, in the database: the orders to look at and each one's push record.

No HTTP here: ``synclet.push`` asks Big Block and records the answers through these functions.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.engine import Connection

from synclet import tables
from synclet.destinations.bigblock_orders import Line, order_number
from synclet.store import IN_CHUNK, ITEMS, ORDERS, chunks, upsert

PUSHES = tables.bigblock_pushes
#: States in which Big Block may hold a copy of the order (``sending``: a create whose answer was lost).
MAY_HOLD = ("sending", "pushed", "blocked", "failed", "held")
_RECORD_FIELDS = ("order_number", "bigblock_id", "state", "content_hash", "order_hash", "basis_hash", "message",
                  "pushed_at", "bigblock_url", "checked_at")


@dataclass(frozen=True, slots=True)
class PushRecord:
    order_number: str
    bigblock_id: str | None
    state: str
    content_hash: str | None
    order_hash: str | None
    basis_hash: str | None
    message: str | None
    pushed_at: datetime | None
    bigblock_url: str

    @property
    def may_be_held(self) -> bool:
        """Whether Big Block may hold a copy: a known id, or a create that may have landed."""
        return self.bigblock_id is not None or (self.state in ("sending", "failed") and self.content_hash is not None)


@dataclass(slots=True)
class Candidate:
    """A stored order the push must look at, with what Big Block was last told of it."""

    order_id: int
    source: str
    external_id: str
    order_number: str | None
    status: str
    content_hash: str
    record: PushRecord | None


def candidates(conn: Connection, statuses: Collection[str], bigblock_url: str, sources: Sequence[str] = (),
               since: datetime | None = None) -> list[Candidate]:
    """Orders in a status to pick, orders Big Block may still hold in any other status (to take
    off the floor), and orders with no record attached: a detached one may be theirs (see
    ``attach_detached``), else they are recorded as absent once, so later pushes pass them by.
    Oldest first, so the warehouse gets orders in the order they came. ``since`` keeps older orders
    out unless Big Block may hold them. Only the records of ``bigblock_url`` count: another Big
    Block's are its own."""
    status = func.lower(func.coalesce(ORDERS.c.status, ""))
    wanted = [status.in_(sorted(statuses)), PUSHES.c.state.in_(MAY_HOLD), PUSHES.c.id.is_(None)]
    joined = ORDERS.outerjoin(PUSHES, and_(PUSHES.c.order_id == ORDERS.c.id, PUSHES.c.bigblock_url == bigblock_url))
    query = (
        select(ORDERS.c.id, ORDERS.c.source, ORDERS.c.external_id, ORDERS.c.order_number, status, ORDERS.c.content_hash,
               PUSHES.c.id, *(PUSHES.c[name] for name in _RECORD_FIELDS[:-1]))
        .select_from(joined)
        .where(or_(*wanted))
        .order_by(ORDERS.c.order_date, ORDERS.c.id)
    )
    if sources:
        query = query.where(ORDERS.c.source.in_(list(sources)))
    if since is not None:  # leaves older orders out of Big Block, not those already in it
        query = query.where(or_(ORDERS.c.order_date >= since, PUSHES.c.state.in_(MAY_HOLD)))
    found = []
    for row in conn.execute(query):
        record = PushRecord(*row[7:]) if row[6] is not None else None
        found.append(Candidate(row[0], row[1], row[2], row[3], row[4], row[5], record))
    return found


def bigblock_number(candidate: Candidate, prefixes: Mapping[str, str]) -> str:
    """The number Big Block knows the order by (its source's prefix, if any, included)."""
    return order_number(candidate.source, candidate.order_number or candidate.external_id, prefixes)


def attach_detached(conn: Connection, found: Sequence[Candidate], bigblock_url: str,
                    prefixes: Mapping[str, str]) -> list[tuple[int, Candidate]]:
    """Give each order of ``found`` without a record the detached record (its order cleared, then
    synced again) of its source and Big Block number, in memory; returns (record id, order) for
    ``reattach`` to write. One query of this Big Block's detached records, matched here."""
    waiting = [candidate for candidate in found if candidate.record is None]
    if not waiting:
        return []
    query = (select(PUSHES.c.id, PUSHES.c.source, *(PUSHES.c[name] for name in _RECORD_FIELDS[:-1]))
             .where(PUSHES.c.order_id.is_(None), PUSHES.c.bigblock_url == bigblock_url,
                    PUSHES.c.source.in_(sorted({candidate.source for candidate in waiting})))
             .order_by(PUSHES.c.checked_at, PUSHES.c.id))
    detached: dict[tuple[str, str], tuple[int, PushRecord]] = {}
    for record_id, source, *fields in conn.execute(query):
        record = PushRecord(*fields)
        kept = detached.get((source, record.order_number))
        if kept is None or record.may_be_held or not kept[1].may_be_held:  # a copy Big Block may hold wins, then the newest
            detached[(source, record.order_number)] = (record_id, record)
    attached = []
    for candidate in waiting:
        match = detached.pop((candidate.source, bigblock_number(candidate, prefixes)), None)
        if match is not None:
            candidate.record = match[1]
            attached.append((match[0], candidate))
    return attached


def reattach(conn: Connection, attached: Sequence[tuple[int, Candidate]]) -> None:
    """Write what ``attach_detached`` matched: each record belongs to its order again. One UPDATE
    per chunk, a CASE on the record id (PyMySQL sends an executemany UPDATE row by row: 0.6 s for
    5,000 orders), three parameters a record."""
    for chunk in chunks(list(attached), IN_CHUNK // 3):
        order_ids = {record_id: candidate.order_id for record_id, candidate in chunk}
        conn.execute(update(PUSHES).where(PUSHES.c.id.in_(list(order_ids)))
                     .values(order_id=case(order_ids, value=PUSHES.c.id)))


def lines(conn: Connection, order_ids: Sequence[int]) -> dict[int, list[Line]]:
    """order id -> its lines in line order, read in bulk."""
    found: dict[int, list[Line]] = defaultdict(list)
    for chunk in chunks(list(order_ids)):
        rows = conn.execute(
            select(ITEMS.c.order_id, ITEMS.c.line_no, ITEMS.c.sku, ITEMS.c.name, ITEMS.c.quantity, ITEMS.c.error_code)
            .where(ITEMS.c.order_id.in_(chunk))
            .order_by(ITEMS.c.order_id, ITEMS.c.line_no, ITEMS.c.id)
        )
        for order_id, *line in rows:
            found[order_id].append(Line(*line))
    return found


def number_owner(conn: Connection, candidate: Candidate, number: str, bigblock_url: str) -> str | None:
    """The other order (``source external_id``) that Big Block may hold under ``number``: stored, or
    cleared from another source and not synced back yet (its record waits, detached, to be taken back)."""
    other = or_(PUSHES.c.order_id != candidate.order_id,
                and_(PUSHES.c.order_id.is_(None), PUSHES.c.source != candidate.source))
    row = conn.execute(
        select(PUSHES.c.source, ORDERS.c.external_id)
        .select_from(PUSHES.outerjoin(ORDERS, ORDERS.c.id == PUSHES.c.order_id))
        .where(PUSHES.c.order_number == number, other, PUSHES.c.bigblock_url == bigblock_url,
               PUSHES.c.state.in_(("sending", "pushed", "blocked", "picked")))
        .limit(1)
    ).first()
    if row is None:
        return None
    return f"{row[0]} order {row[1]}" if row[1] is not None else f"a cleared {row[0]} order"


def save_absent(conn: Connection, found: Sequence[tuple[Candidate, str]], bigblock_url: str, basis_hash: str,
                checked_at: datetime) -> None:
    """Record that Big Block holds none of these orders (each with its number there), in bulk: the
    first push after a ``clear`` or an upgrade may find tens of thousands of old orders."""
    rows = [{"order_id": candidate.order_id, "source": candidate.source, "order_number": number, "bigblock_id": None,
             "state": "deleted", "content_hash": None, "order_hash": candidate.content_hash, "basis_hash": basis_hash,
             "message": None, "pushed_at": None, "bigblock_url": bigblock_url, "checked_at": checked_at}
            for candidate, number in found]
    for chunk in chunks(rows):
        upsert(conn, PUSHES, list(chunk), ("order_id", "bigblock_url"), ("source", *_RECORD_FIELDS))


def save(conn: Connection, candidate: Candidate, **values: Any) -> PushRecord:
    """Write the order's push record for one Big Block: ``values`` over what it held before."""
    before = candidate.record
    current = {name: getattr(before, name) if before else None for name in _RECORD_FIELDS[:-1]}
    current.update({k: v for k, v in values.items() if k != "checked_at"})
    row = {"order_id": candidate.order_id, "source": candidate.source, **current, "checked_at": values["checked_at"]}
    upsert(conn, PUSHES, [row], ("order_id", "bigblock_url"), ("source", *_RECORD_FIELDS))
    return PushRecord(**current)


def summary(conn: Connection, statuses: Collection[str], bigblock_url: str,
            prefixes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What ``status`` shows of Big Block, from the database alone (no HTTP, no locations file).
    Orders cleared and synced again meet their detached records as the next push will (by number,
    with the push's ``prefixes``), in memory only."""
    counts = {"pushed": 0, "pending": 0, "held": 0, "failed": 0, "blocked": 0}
    attention: list[dict[str, Any]] = []
    found = candidates(conn, statuses, bigblock_url)
    attach_detached(conn, found, bigblock_url, prefixes or {})
    for candidate in found:
        record = candidate.record
        if record is not None and record.state in ("held", "failed", "blocked"):
            counts[record.state] += 1
            attention.append({"state": record.state, "source": candidate.source, "order_number": record.order_number,
                              "message": record.message})
        elif _pending(candidate, statuses):
            counts["pending"] += 1
    # Detached records count: a clear leaves their copies on the floor, and Big Block holds them
    # as much as any other (they are never pending, having no order to push).
    counts["pushed"] = conn.execute(
        select(func.count()).select_from(PUSHES)
        .where(PUSHES.c.bigblock_url == bigblock_url, PUSHES.c.state.in_(("pushed", "blocked", "picked")))
    ).scalar() or 0
    last = conn.execute(select(func.max(PUSHES.c.checked_at)).where(PUSHES.c.bigblock_url == bigblock_url)).scalar()
    return {"destination": "bigblock", "url": bigblock_url, **counts, "last_push": last, "attention": attention}


def _pending(candidate: Candidate, statuses: Collection[str]) -> bool:
    """Whether the next push has something to do for this order, as far as the database can tell: an
    order in no status to pick and without a record is not (the push only records it as absent)."""
    record = candidate.record
    if candidate.status not in statuses:  # to take off the floor, unless already gone or picked
        return record is not None and record.state in MAY_HOLD and record.may_be_held
    if record is None or record.state in ("sending", "deleted"):
        return True
    return record.state == "pushed" and record.order_hash != candidate.content_hash
