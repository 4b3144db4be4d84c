"""A local fake shop for demos, integration tests and benchmarks.

It serves generated orders over real HTTP in each source API's shape (OneSaas Connect and Magento 2
REST, from the same orders), with the quirks and faults those APIs have, and knows the truth a
correct client of each must end up with (``Store.truth(view)``). It imports nothing from the rest of
synclet, so a bug in synclet's parsing cannot hide in both.
"""
from __future__ import annotations

from synclet.sandbox.data import Store
from synclet.sandbox.server import Sandbox, serve_forever

__all__ = ["Sandbox", "Store", "serve_forever"]
