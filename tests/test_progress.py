"""The progress bar a sync shows on a terminal."""
from __future__ import annotations

import time

import pytest

from synclet.history import RunCounts
from synclet.progress import BarProgress
from synclet.records import Page


def test_the_bar_counts_pages_with_the_orders_it_shows(capsys: pytest.CaptureFixture[str]) -> None:
    """It drew each page's orders beside the page count of the page before ('100 orders, pages=1')."""
    progress = BarProgress()
    for number in range(2):
        time.sleep(0.15)  # tqdm draws at most every 0.1 s
        progress.page("magento", Page(number, skipped=50), RunCounts(pages=number + 1, orders_added=0))
    drawn = [frame for frame in capsys.readouterr().err.split("\r") if "orders" in frame]
    progress.close()
    assert "100 orders" in drawn[-1] and "pages=2" in drawn[-1], drawn
