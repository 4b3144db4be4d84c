"""Where stored orders meet Big Block: decide per order, act, record the answer.

Per order, the push record says what Big Block was last told. An order in a status to pick that Big
Block lacks is created; one whose lines changed is replaced (delete, then create: order numbers are
unique); one that left the statuses to pick (cancelled, or shipped without Big Block) is deleted,
so nobody picks it twice. A ``clear`` leaves the records, detached from their orders: an order
synced again without a record takes back the detached one of its source and number, and is then
treated as any recorded order (unchanged, replaced, deleted). One in no status to pick with no
record at all was never pushed: it is recorded as absent, in bulk, without asking Big Block, so
later pushes pass it by. An order on which picking has started (``quantity_fulfilled`` > 0) is
never replaced or deleted: a change or a cancellation is reported for a person, while a shipped
one is simply done. Each answer is committed at once, and a ``sending`` record is committed before
each create, so a push killed at any point is finished by the next one without creating anything
twice. Records are kept per Big Block URL, so a test server and the real one never mix.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from synclet import db, pushes
from synclet.config import Settings
from synclet.destinations.bigblock import BigBlock, DuplicateOrder
from synclet.destinations.bigblock_orders import (
    HeldBack,
    Line,
    Locations,
    content_hash,
    order_body,
    picking_started,
    same_content,
)
from synclet.errors import EXIT_FAILED, EXIT_OK, AuthError, ConfigError, DatabaseError, Interrupted, ProtocolError, RemoteError
from synclet.http import HttpClient
from synclet.locks import SourceLock
from synclet.logs import loggable
from synclet.pushes import Candidate, PushRecord

log = logging.getLogger(__name__)
LOCK_NAME = "bigblock-push"
#: Failed orders in a row after which the push stops: Big Block is broken, not one order.
MAX_FAILURES_IN_A_ROW = 10
#: Console labels, in the order the summary lists them.
OUTCOMES = {"created": "created", "replaced": "replaced", "deleted": "deleted", "found": "found in Big Block",
            "unchanged": "unchanged", "skipped": "with nothing to pick", "held": "held back", "blocked": "need a person",
            "failed": "failed"}


@dataclass(frozen=True)
class PushOptions:
    dry_run: bool = False
    since: datetime | None = None
    sources: tuple[str, ...] = ()
    #: An order held back or needing a person for the reason the last push recorded is counted but
    #: not reported again: ``sync --watch`` between its hourly reports, so the log grows with orders.
    quiet_repeats: bool = False


@dataclass
class PushResult:
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    stopped: bool = False

    @property
    def exit_code(self) -> int:
        """1 until every order that should be in Big Block is there as the shop has it."""
        waiting = self.counts["failed"] or self.counts["held"] or self.counts["blocked"] or self.stopped
        return EXIT_FAILED if waiting else EXIT_OK

    def summary(self) -> str:
        parts = ", ".join(f"{self.counts[key]} {label}" for key, label in OUTCOMES.items()
                          if self.counts[key] or key in ("created", "unchanged"))
        return f"{parts} ({self.seconds:.1f}s){', stopped on request' if self.stopped else ''}"


def push_basis(settings: Settings, locations: Locations) -> str:
    """A fingerprint of everything besides the order that shapes its body: when it changes, every
    order is rebuilt and compared again (a SKU moved to another shelf must reach Big Block)."""
    prefixes = ",".join(f"{k}={v}" for k, v in sorted(settings.bigblock_order_prefixes.items()))
    text = f"{locations.fingerprint}|{prefixes}|{settings.bigblock_allow_missing_location}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_locations(settings: Settings) -> Locations:
    """The locations file; without one, only BIGBLOCK_ALLOW_MISSING_LOCATION makes a push useful."""
    if settings.bigblock_locations_csv:
        return Locations.load(settings.bigblock_locations_csv)
    if not settings.bigblock_allow_missing_location:
        raise ConfigError("BIGBLOCK_LOCATIONS_CSV: not set, so every order would be held back for want of a location "
                          "(set it, or BIGBLOCK_ALLOW_MISSING_LOCATION=true to push without locations)")
    return Locations.none()


@contextlib.contextmanager
def bigblock_client(settings: Settings, stop: threading.Event | None = None) -> Iterator[BigBlock]:
    """The Big Block API client with an HTTP client of its own, closed afterwards."""
    if not settings.bigblock_base_url or not settings.bigblock_api_key:
        raise ConfigError("BIGBLOCK_BASE_URL: not set (set BIGBLOCK_BASE_URL and BIGBLOCK_API_KEY to push to Big Block)")
    http = HttpClient.from_settings(settings, stop)
    try:
        yield BigBlock(settings.bigblock_base_url, settings.bigblock_api_key, http)
    finally:
        http.close()


def push_bigblock(engine: Engine, bigblock: BigBlock, settings: Settings, options: PushOptions,
                  echo: Callable[..., None], now: Callable[[], datetime], stop: threading.Event | None = None) -> PushResult:
    """Push every order that needs it, one at a time, under a lock: two pushes at once could both
    create the same order before either recorded it."""
    locations = load_locations(settings)
    if options.dry_run:
        if not db.readable_schema(engine):
            return PushResult()  # nothing stored, nothing to push
    else:
        db.ensure_schema(engine)
    started = time.monotonic()
    try:
        with engine.connect() as conn, SourceLock(conn, LOCK_NAME, activity="push to Big Block"):
            with conn.begin():
                found = pushes.candidates(conn, settings.bigblock_statuses, bigblock.orders_url, options.sources,
                                          options.since)
            pusher = _Pusher(conn, bigblock, settings, locations, options, echo, now)
            result = pusher.run(found, stop)
    except SQLAlchemyError as error:
        raise DatabaseError(f"push to Big Block stopped: {db.describe_error(error)}") from None
    result.seconds = time.monotonic() - started
    return result


class _Pusher:
    def __init__(self, conn: Connection, bigblock: BigBlock, settings: Settings, locations: Locations,
                 options: PushOptions, echo: Callable[..., None], now: Callable[[], datetime]) -> None:
        self.conn = conn
        self.bigblock = bigblock
        self.settings = settings
        self.locations = locations
        self.dry_run = options.dry_run
        self.quiet_repeats = options.quiet_repeats
        self.echo = echo
        self.now = now
        self.basis = push_basis(settings, locations)
        self.result = PushResult()
        self._listing: dict[str, dict[str, Any]] | None = None
        #: Dry run: number -> the order a create of this run would have given it (the real run's
        #: records tell ``number_owner``; a dry run writes none).
        self._planned: dict[str, str] = {}

    def run(self, found: Sequence[Candidate], stop: threading.Event | None) -> PushResult:
        self._attach_detached(found)
        to_look_at, absent = [], []
        for candidate in found:
            if self._settled(candidate):
                continue
            if self._unchanged(candidate):
                self.result.counts["unchanged"] += 1
            elif self._out_of_reach(candidate):
                self._save(candidate, state="deleted", message=None)  # off the list of what to look at
            elif candidate.record is None and candidate.status not in self.settings.bigblock_statuses:
                absent.append((candidate, self._number(candidate)))
            else:
                to_look_at.append(candidate)
        if to_look_at or absent:
            # One list call (its first page) first: a wrong URL or key fails here, before its 404s
            # could pass for orders deleted by hand, or records are written for it.
            self.bigblock.check()
        if absent and not self.dry_run:  # never pushed, so not in Big Block: no need to list it
            with self.conn.begin():
                pushes.save_absent(self.conn, absent, self.bigblock.orders_url, self.basis, self.now())
            log.info("bigblock: %d order(s) in no status to pick and never pushed, recorded as absent", len(absent))
        with self.conn.begin():
            lines = pushes.lines(self.conn, [candidate.order_id for candidate in to_look_at])
        failures_in_a_row = 0
        for candidate in to_look_at:
            if stop is not None and stop.is_set():
                self.result.stopped = True
                break
            try:
                self._one(candidate, lines.get(candidate.order_id, []))
                failures_in_a_row = 0
            except (AuthError, Interrupted):
                raise
            except (RemoteError, ProtocolError) as error:
                self._failed(candidate, str(error))
                failures_in_a_row += 1
                if failures_in_a_row == MAX_FAILURES_IN_A_ROW:
                    raise RemoteError(f"stopped after {failures_in_a_row} orders in a row failed; the last: "
                                      f"{self.settings.mask(str(error))}") from None
        return self.result

    def _unchanged(self, candidate: Candidate) -> bool:
        """Pushed, and neither the order nor the locations file changed since: no need to look."""
        record = candidate.record
        return (record is not None and record.state in ("pushed", "skipped") and record.order_hash == candidate.content_hash
                and record.basis_hash == self.basis and candidate.status in self.settings.bigblock_statuses)

    def _out_of_reach(self, candidate: Candidate) -> bool:
        """Left the statuses to pick, and Big Block cannot hold it (held back or failed before any
        create): there is nothing to take off the floor."""
        record = candidate.record
        return (candidate.status not in self.settings.bigblock_statuses and record is not None
                and not record.may_be_held)

    def _attach_detached(self, found: Sequence[Candidate]) -> None:
        """Orders cleared and synced again take back their detached records (in one transaction;
        in memory alone on a dry run), so what Big Block holds of them is known without asking."""
        with self.conn.begin():
            attached = pushes.attach_detached(self.conn, found, self.bigblock.orders_url,
                                              self.settings.bigblock_order_prefixes)
            if attached and not self.dry_run:
                pushes.reattach(self.conn, attached)
        if attached:
            log.info("bigblock: %d push record(s) of cleared orders %sattached to them again", len(attached),
                     "would be " if self.dry_run else "")

    def _settled(self, candidate: Candidate) -> bool:
        """In no status to pick with a record saying Big Block holds no copy to take off the floor
        (a record attached again; ``candidates`` leaves the others out)."""
        record = candidate.record
        return (record is not None and candidate.status not in self.settings.bigblock_statuses
                and record.state not in pushes.MAY_HOLD)

    def _number(self, candidate: Candidate) -> str:
        return pushes.bigblock_number(candidate, self.settings.bigblock_order_prefixes)

    def _one(self, candidate: Candidate, lines: list[Line]) -> None:
        number = self._number(candidate)
        record = candidate.record
        if candidate.status not in self.settings.bigblock_statuses:
            if record is not None and record.state in pushes.MAY_HOLD and record.may_be_held:
                self._remove(candidate, record, f"now {candidate.status or 'without a status'} in the shop")
            return
        try:
            body = order_body(number, lines, self.locations, self.settings.bigblock_allow_missing_location)
        except HeldBack as reason:
            self._note(candidate, "held", f"{number}: {reason}", self._repeats(candidate, "held", str(reason)))
            self._save(candidate, order_number=record.order_number if record else number, state="held", message=str(reason))
            return
        if body is None:  # nothing on it is picked: Big Block has no use for it
            if record is not None and record.state in pushes.MAY_HOLD and record.may_be_held:
                self._remove(candidate, record, "nothing on it is picked any more")
            else:
                self._note(candidate, "skipped", number)
                self._save(candidate, order_number=number, state="skipped", message=None)
            return
        digest = content_hash(body)
        if record is not None and record.bigblock_id is not None and record.content_hash == digest:
            self.result.counts["unchanged"] += 1
            self._save(candidate, state="pushed", message=None)  # Big Block holds exactly this already
        elif record is not None and record.may_be_held:
            self._replace(candidate, record, number, body, digest)
        else:
            self._create(candidate, number, body, digest, "created")

    def _create(self, candidate: Candidate, number: str, body: dict[str, Any], digest: str, outcome: str) -> None:
        with self.conn.begin():
            owner = pushes.number_owner(self.conn, candidate, number, self.bigblock.orders_url)
        if owner is None and self.dry_run:
            owner = self._planned_owner(candidate, number)
        if owner is not None:  # never let two stored orders take turns replacing each other
            reason = (f"order number {number} is already in Big Block for {owner}: if both sources are one shop, push "
                      "only one of them (--source); otherwise set BIGBLOCK_ORDER_PREFIXES")
            self._note(candidate, "held", f"{number}: {reason}")
            self._save(candidate, order_number=number, state="held", message=reason)
            return
        items = len(body["shipments"][0]["items"])
        if self.dry_run:
            self._note(candidate, outcome, f"{number} ({items} item{'s' if items != 1 else ''})")
            return
        self._save(candidate, order_number=number, bigblock_id=None, state="sending", content_hash=digest, message=None)
        try:
            created = self.bigblock.create(body)
        except DuplicateOrder:
            self._adopt(candidate, number, body, digest)
            return
        self._save(candidate, bigblock_id=str(created["id"]), state="pushed", pushed_at=self.now())
        self._note(candidate, outcome, f"{number} (Big Block id {created['id']}, {items} item{'s' if items != 1 else ''})")

    def _planned_owner(self, candidate: Candidate, number: str) -> str | None:
        """Dry run: the other order this run would already have created under ``number`` (the real
        run's record of it would hold this one back), else this one takes the number."""
        this = f"{candidate.source} order {candidate.external_id}"
        owner = self._planned.setdefault(number, this)
        return None if owner == this else owner

    def _adopt(self, candidate: Candidate, number: str, body: dict[str, Any], digest: str) -> None:
        """Big Block already has this number: an earlier push whose answer was lost, or an order
        typed in by hand. Record it if it holds these lines; otherwise replace it, unless picked."""
        held = self._find(number) or self._find(number, fresh=True)
        if held is None:
            raise RemoteError(f"Big Block says it has order {number}, but its list of orders does not show it")
        if same_content(held, body):
            self._save(candidate, bigblock_id=str(held["id"]), state="pushed", pushed_at=self.now())
            self._note(candidate, "found", f"{number} (Big Block id {held['id']}): already there, recorded")
        elif picking_started(held):
            self._blocked(candidate, number, str(held["id"]), None, "Big Block has this order number with other "
                          f"lines and picking has started (Big Block id {held['id']}); compare them by hand")
        else:
            self._take_down(candidate, held, number)
            self._create(candidate, number, body, digest, "replaced")

    def _replace(self, candidate: Candidate, record: PushRecord, number: str, body: dict[str, Any], digest: str) -> None:
        held = self._held(record)
        if held is None:
            self._create(candidate, number, body, digest, "created")
        elif str(held.get("order_number")) == number and same_content(held, body):
            self.result.counts["unchanged"] += 1
            self._save(candidate, bigblock_id=str(held["id"]), state="pushed", content_hash=digest, message=None)
        elif picking_started(held):
            self._blocked(candidate, record.order_number, str(held["id"]), record.content_hash, "lines changed in the shop, "
                          f"but picking has started in Big Block (id {held['id']}); change it there by hand")
        elif self.dry_run:
            self._planned_owner(candidate, number)
            self._note(candidate, "replaced", f"{number} (Big Block id {held['id']})")
        else:
            self._take_down(candidate, held, record.order_number)
            self._create(candidate, number, body, digest, "replaced")

    def _remove(self, candidate: Candidate, record: PushRecord, why: str) -> None:
        """Take an order nobody should pick off the warehouse floor, unless picking has started:
        then a cancelled order needs a person, and any other (shipped, closed) is simply done."""
        held = self._held(record)
        if held is None:
            self._save(candidate, bigblock_id=None, state="deleted", message=None)
        elif picking_started(held) and candidate.status in self.settings.bigblock_cancelled_statuses:
            self._blocked(candidate, record.order_number, str(held["id"]), record.content_hash, f"{why}, but picking "
                          f"has started in Big Block (id {held['id']}); stop it there by hand")
        elif picking_started(held):
            self._save(candidate, bigblock_id=str(held["id"]), state="picked", message=None)
        elif self.dry_run:
            self._note(candidate, "deleted", f"{record.order_number} ({why})")
        else:
            self._take_down(candidate, held, record.order_number, message=None, pushed_at=self.now())
            self._note(candidate, "deleted", f"{record.order_number} (Big Block id {held['id']}, {why})")

    def _take_down(self, candidate: Candidate, held: dict[str, Any], number: str, **values: Any) -> None:
        """Delete Big Block's copy and record that it holds none (a create may follow)."""
        self.bigblock.delete(str(held["id"]))
        if self._listing is not None:
            self._listing.pop(number, None)
        self._save(candidate, bigblock_id=None, state="deleted", content_hash=None, **values)

    def _held(self, record: PushRecord) -> dict[str, Any] | None:
        """Big Block's copy of the order: by its id, or by its number when the create's answer was lost."""
        if record.bigblock_id is not None:
            return self.bigblock.get(record.bigblock_id)
        return self._find(record.order_number)

    def _find(self, number: str, fresh: bool = False) -> dict[str, Any] | None:
        """Big Block's order with this number, from one listing per push (it has no search);
        ``fresh`` lists again, for an order made by someone else since."""
        if self._listing is None or fresh:
            self._listing = {str(order.get("order_number")): order for order in self.bigblock.orders()
                             if order.get("id") not in (None, "")}
        return self._listing.get(number)

    def _blocked(self, candidate: Candidate, number: str, bigblock_id: str, held_hash: str | None, reason: str) -> None:
        self._note(candidate, "blocked", f"{number}: {reason}", self._repeats(candidate, "blocked", reason))
        self._save(candidate, order_number=number, bigblock_id=bigblock_id, state="blocked", content_hash=held_hash,
                   message=reason)

    def _failed(self, candidate: Candidate, message: str) -> None:
        number = candidate.record.order_number if candidate.record else self._number(candidate)
        message = self.settings.mask(message)
        self._note(candidate, "failed", f"{number}: {message}")
        self._save(candidate, order_number=number, state="failed", message=message)

    def _save(self, candidate: Candidate, **values: Any) -> None:
        """Record and commit at once: the next push starts from here, whatever happens next."""
        if self.dry_run:
            return
        values.setdefault("order_hash", candidate.content_hash)
        values.setdefault("basis_hash", self.basis)
        values["bigblock_url"] = self.bigblock.orders_url
        with self.conn.begin():
            record = pushes.save(self.conn, candidate, checked_at=self.now(), **values)
        candidate.record = record

    def _repeats(self, candidate: Candidate, state: str, message: str) -> bool:
        """Whether this push may leave unsaid a problem the last one recorded in the same words."""
        record = candidate.record
        return self.quiet_repeats and record is not None and record.state == state and record.message == message

    def _note(self, candidate: Candidate, outcome: str, detail: str, repeated: bool = False) -> None:
        """Count the outcome, log it, and print what needs a person (every action on a dry run)
        unless it ``repeated`` what the last push said."""
        self.result.counts[outcome] += 1
        if repeated:
            return
        attention = outcome in ("held", "blocked", "failed")
        action = outcome in ("created", "replaced", "deleted", "found")
        label = f"would be {OUTCOMES[outcome]}" if self.dry_run and action else OUTCOMES[outcome]
        if outcome == "skipped":
            label = "nothing to pick, not sent"
        line = f"bigblock: {label}: {candidate.source} {loggable(detail, limit=400)}"
        shown = attention or (self.dry_run and action)
        log.log(logging.WARNING if attention else logging.INFO, "%s", line, extra={"console": not shown})
        if shown:
            self.echo(line, err=attention)
