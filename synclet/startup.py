"""The ``synclet`` command's first step: import the command line with the cyclic collector off.

A run's imports make a few hundred thousand objects (SQLAlchemy's among them) that live until the
process exits. With the collector on while they are made, it walks them again and again for
nothing, a full pass among those walks: 30-40 ms of a no-change cron run of 0.4 s. They are
imported with it off, then frozen (moved out of its sight for good); what is made afterwards is
collected as usual.
"""
from __future__ import annotations

import gc


def main() -> None:
    """Import ``synclet.cli`` without collections, then run it."""
    gc.disable()
    try:
        from synclet.cli import main as command_line
    finally:
        gc.freeze()
        gc.enable()
    command_line()
