"""Locks that die with their holder: one run at a time per source, one schema change at a time.

MariaDB: ``GET_LOCK`` on a connection; the server frees it when that connection ends, however the
process died. A source's lock is taken on the very connection the run writes through, so a run
whose connection is killed cannot write another row without it. SQLite: ``flock`` on a file beside
the database; the kernel frees it when the process ends, even after ``kill -9``.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, URL
from sqlalchemy.exc import SQLAlchemyError

from synclet import history
from synclet.errors import LockHeld, LockUnusable

SCHEMA_LOCK_SECONDS = 60.0
MAX_LOCK_NAME = 64  # MySQL refuses a longer GET_LOCK name (MariaDB takes it)
_FILE_LOCK_POLL_SECONDS = 0.05
#: Descriptors holding a lock file. ``flock`` belongs to the open file, which a forked child shares:
#: the child's copy would keep the lock alive after this process died, so the child lets go of it.
_HELD_FILES: set[int] = set()


def _let_go_of_lock_files() -> None:
    """In a forked child: point its copies of the lock files' descriptors at /dev/null. The parent
    keeps its locks, and the numbers stay taken, so nothing the child opens is mistaken for one."""
    if not _HELD_FILES:
        return
    null = os.open(os.devnull, os.O_RDWR)
    for fd in _HELD_FILES:
        os.dup2(null, fd)
    os.close(null)
    _HELD_FILES.clear()


os.register_at_fork(after_in_child=_let_go_of_lock_files)


def server_lock_name(url: URL, what: str) -> str:
    """The server-wide name of a lock on ``what`` in this database, at most 64 characters (MySQL's
    cap): a longer one is hashed whole, since cutting it could give two sources one lock."""
    name = f"synclet.{url.database or ''}.{what}"
    return name if len(name) <= MAX_LOCK_NAME else f"synclet.{hashlib.sha256(name.encode()).hexdigest()[:MAX_LOCK_NAME - 8]}"


def get_server_lock(conn: Connection, name: str, wait: float) -> bool:
    """Take ``GET_LOCK`` on ``conn``, waiting up to ``wait`` seconds; False if another holds it."""
    acquired = conn.execute(text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": wait}).scalar()
    conn.commit()
    return acquired == 1


def release_server_lock(conn: Connection, name: str) -> None:
    try:
        conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        conn.commit()
    except SQLAlchemyError:
        conn.invalidate()  # the connection is gone and the server freed the lock with it; never pool it


def lock_file_path(url: URL, what: str) -> Path | None:
    """The file beside a SQLite database that stands for a lock on ``what``; None in memory."""
    if not url.database or url.database == ":memory:":
        return None
    return Path(f"{url.database}.{what}.lock")


def unlock_file(fd: int) -> None:
    _HELD_FILES.discard(fd)
    os.close(fd)


def lock_file(path: Path, wait: float) -> int | None:
    """An open descriptor holding ``flock`` on ``path``, or None if another held it for ``wait`` seconds.

    Raises ``LockUnusable`` (a ``DatabaseError``) naming the file when it cannot be opened or locked
    (its directory is gone or read-only, the path is a directory): the database beside it cannot be
    used either."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise _unusable_lock_file("open", path, error) from None
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _HELD_FILES.add(fd)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(_FILE_LOCK_POLL_SECONDS)
        except OSError as error:
            os.close(fd)
            raise _unusable_lock_file("lock", path, error) from None


def _unusable_lock_file(verb: str, path: Path, error: OSError) -> LockUnusable:
    return LockUnusable(f"cannot {verb} the lock file {path} ({error.strerror or type(error).__name__})")


class SourceLock:
    """``with SourceLock(conn, "magento"):`` — raises ``LockHeld`` if another run holds it.

    ``conn`` must stay open (and be the one used for writing) for as long as the lock is needed.
    """

    def __init__(self, conn: Connection, source: str, activity: str | None = None) -> None:
        self.conn = conn
        self.source = source
        self.activity = activity or f"sync of {source}"
        self._server_lock = False
        self._fd: int | None = None

    def __enter__(self) -> SourceLock:
        if self.conn.dialect.name == "sqlite":
            self._lock_file()
        else:
            self._lock_server()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._server_lock:
            self._server_lock = False
            release_server_lock(self.conn, self.name)
        if self._fd is not None:
            unlock_file(self._fd)
            self._fd = None

    @property
    def name(self) -> str:
        return server_lock_name(self.conn.engine.url, self.source)

    def _lock_server(self) -> None:
        if not get_server_lock(self.conn, self.name, 0):
            raise LockHeld(self._held_message())
        self._server_lock = True

    def _lock_file(self) -> None:
        path = lock_file_path(self.conn.engine.url, self.source)
        if path is None:
            return
        self._fd = lock_file(path, 0)
        if self._fd is None:
            raise LockHeld(self._held_message())

    def _held_message(self) -> str:
        holder = ""
        try:
            row = history.running_row(self.conn, self.source)
            self.conn.commit()
            if row:
                holder = f" (pid {row['pid']} on {row['host']}, since {row['started_at']:%Y-%m-%d %H:%M:%S} UTC)"
        except SQLAlchemyError:  # the message is best effort; the lock is what matters
            self.conn.rollback()
        return f"another {self.activity} is running{holder}; try again later"


class SchemaLock:
    """``with SchemaLock(engine):`` — one process at a time creates or upgrades the schema.

    Waits up to ``wait`` seconds for another process's schema change, then raises ``LockHeld``.
    On MariaDB the lock lives on a connection of its own, so the migration may commit freely.
    """

    WHAT = "schema"

    def __init__(self, engine: Engine, wait: float = SCHEMA_LOCK_SECONDS) -> None:
        self.engine = engine
        self.wait = wait
        self._conn: Connection | None = None
        self._fd: int | None = None

    def __enter__(self) -> SchemaLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> None:
        if self.engine.dialect.name == "sqlite":
            path = lock_file_path(self.engine.url, self.WHAT)
            if path is not None:
                self._fd = lock_file(path, self.wait)
                if self._fd is None:
                    raise LockHeld(self._held_message())
            return
        conn = self.engine.connect()
        try:
            acquired = get_server_lock(conn, server_lock_name(self.engine.url, self.WHAT), self.wait)
        except BaseException:
            conn.close()
            raise
        if not acquired:
            conn.close()
            raise LockHeld(self._held_message())
        self._conn = conn

    def release(self) -> None:
        if self._conn is not None:
            release_server_lock(self._conn, server_lock_name(self.engine.url, self.WHAT))
            self._conn.close()
            self._conn = None
        if self._fd is not None:
            unlock_file(self._fd)
            self._fd = None

    def _held_message(self) -> str:
        return f"another synclet has been creating or upgrading the database schema for over {self.wait:.0f}s; try again later"
