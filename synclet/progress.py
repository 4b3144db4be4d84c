"""Progress of a sync: a bar on a terminal, nothing extra under cron (the summary line says it all)."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from synclet.history import RunCounts
from synclet.records import Page

if TYPE_CHECKING:
    from tqdm import tqdm


class BarProgress:
    """A tqdm bar of orders read, with the page count and the outcome so far."""

    def __init__(self) -> None:
        self._bars: dict[str, tqdm] = {}

    def page(self, source: str, page: Page, counts: RunCounts) -> None:
        bar = self._bars.get(source)
        if bar is None:
            from tqdm import tqdm  # only a terminal pays for the import

            bar = self._bars[source] = tqdm(desc=source, unit=" orders", leave=False, file=sys.stderr, dynamic_ncols=True)
        # The counts first: update() draws the bar, with the postfix as it stands.
        bar.set_postfix(pages=counts.pages, added=counts.orders_added, updated=counts.orders_updated, refresh=False)
        bar.update(len(page.orders) + len(page.rejected) + page.skipped)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def for_terminal() -> BarProgress | None:
    return BarProgress() if sys.stderr.isatty() else None
