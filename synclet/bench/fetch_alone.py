"""Every Valerdat order fetched with plain requests and nothing else, in a child of the bench.

A source that needs a request per order cannot come near the database floor, which makes no
request at all; on the bench's cores its backfill is bounded by the HTTP client. This is that
bound: a login, every page of ids, then every detail over one ``requests.Session`` with
``VALERDAT_CONCURRENCY`` threads, each body decoded and dropped. No parsing, no database, no
retries. Settings come from the environment, as synclet's do.

    python -m synclet.bench.fetch_alone
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from synclet.sources.valerdat_parse import AUTH_PATH, AUTH_SCHEME, IDS_PATH, MAX_PAGE_SIZE, ORDER_PATH

TIMEOUT_SECONDS = 30


def fetch_every_order() -> int:
    """Fetch every purchase order's detail; returns how many."""
    base = os.environ["VALERDAT_BASE_URL"].rstrip("/")
    threads = int(os.environ.get("VALERDAT_CONCURRENCY", "8"))
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=threads))
    credentials = {name: os.environ[f"VALERDAT_{name.upper()}"] for name in ("customer", "username", "password")}
    token = _json(session.post(f"{base}/{AUTH_PATH}", json=credentials, timeout=TIMEOUT_SECONDS))["token"]
    headers = {"Authorization": f"{AUTH_SCHEME} {token}"}
    uuids: list[str] = []
    url: str | None = f"{base}/{IDS_PATH}"
    params: dict[str, str] | None = {"updated_since": "1970-01-01T00:00:00Z", "page_size": str(MAX_PAGE_SIZE)}
    while url:
        page = _json(session.get(url, params=params, headers=headers, timeout=TIMEOUT_SECONDS))
        uuids += [entry["uuid"] for entry in page["results"]]
        url, params = page["next"], None

    def fetch(uuid: str) -> None:
        _json(session.get(f"{base}/{ORDER_PATH.format(uuid=uuid)}", headers=headers, timeout=TIMEOUT_SECONDS))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(fetch, uuids):
            pass
    return len(uuids)


def _json(response: requests.Response) -> Any:
    response.raise_for_status()
    return response.json()


if __name__ == "__main__":
    print(fetch_every_order())
