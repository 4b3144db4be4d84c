"""The sources synclet reads orders from, by name.

A source knows its API (auth, paging, quirks) and maps payloads into ``synclet.records``; it never
touches the database. ``synclet.sync`` drives it one page at a time.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from synclet.config import Settings
from synclet.errors import ConfigError
from synclet.http import HttpClient
from synclet.records import Order, Page


@dataclass(frozen=True)
class Window:
    """What one run reads: orders created after ``created_after`` and, on an incremental run,
    updated after ``updated_after``. Both bounds are inclusive; a source whose API filters with a
    strict ``>`` asks one second earlier."""

    created_after: datetime
    updated_after: datetime | None = None
    #: The stored ``updated_at`` of the given external ids: a source that lists ids before it
    #: fetches each order skips the ones the database already holds at that version.
    stored_versions: Callable[[Sequence[str]], Mapping[str, datetime]] | None = None
    #: The stored ``updated_at`` of the given credit memos (by their external id): a source that
    #: lists changed memos before it fetches their orders skips the memos held at that version.
    stored_credits: Callable[[Sequence[str]], Mapping[str, datetime]] | None = None


class Source(Protocol):
    """A source may also define ``session()`` and ``resume(session)``: a source that logs in hands
    its login from a reader in a child process back to the run's process (``synclet.readahead``).
    One that can load orders by id may define ``refetch(external_ids) -> Page``: rejects no mapping
    clears are loaded again each run, since an order fixed in the shop may keep its update time."""

    name: ClassVar[str]
    #: True when pages come sorted by update time, so the cursor may advance page by page and an
    #: interrupted run can resume; False means only a completed run may move the cursor.
    ordered_by_update: ClassVar[bool]

    def check(self) -> str:
        """Authenticate and make one small request; return what was found, raise SourceError."""
        ...

    def pages(self, window: Window) -> Iterator[Page]:
        """Every order in ``window``, a page at a time, until the API says there are no more."""
        ...

    def parse(self, payload: Mapping[str, Any]) -> Order:
        """Map one stored raw payload again (a rejected order's retry); raises MappingError."""
        ...


SourceFactory = Callable[[Settings, HttpClient], Source]


#: Source name -> (its module, its class). A module is imported when its source is built, so a run
#: of one source never pays for the others.
SOURCES = {
    "magento": ("synclet.sources.onesaas", "OneSaasSource"),
    "magento-rest": ("synclet.sources.magento_rest", "MagentoRestSource"),
    "valerdat": ("synclet.sources.valerdat", "ValerdatSource"),
}


def registry() -> dict[str, SourceFactory]:
    """Source name -> constructor; each imports its source's module on first use."""
    return {name: _factory(module, cls) for name, (module, cls) in SOURCES.items()}


def _factory(module: str, cls: str) -> SourceFactory:
    def build(settings: Settings, http: HttpClient) -> Source:
        return getattr(importlib.import_module(module), cls).from_settings(settings, http)  # type: ignore[no-any-return]

    return build


def check_known(names: Iterable[str]) -> None:
    """Refuse a ``--source`` name no source has (a typo) before any work, as a usage error."""
    for name in names:
        if name not in SOURCES:
            raise ConfigError(f"--source: unknown source {name!r} (known: {', '.join(sorted(SOURCES))})")


def resumes_initial(name: str) -> bool:
    """Whether a stopped initial sync of ``name`` goes on where it got to: its pages come sorted by
    update time (``Source.ordered_by_update``), so the cursor it left holds (``synclet.sync.plan``)."""
    if name not in SOURCES:
        return False
    module, cls = SOURCES[name]
    return bool(getattr(importlib.import_module(module), cls).ordered_by_update)


def build_source(name: str, settings: Settings, http: HttpClient) -> Source:
    check_known([name])
    factories = registry()
    if name not in settings.configured_sources():
        raise ConfigError(f"--source: {name} is not configured (set its settings in the environment or .env)")
    return factories[name](settings, http)
