"""One run at a time per source and database, with locks that die with their holder.

MariaDB: ``GET_LOCK`` on a connection held for the run; the server frees it when that connection
ends, however the process died. SQLite: ``flock`` on a file beside the database; the kernel frees
it when the process ends, even after ``kill -9``.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from synclet import history
from synclet.errors import LockHeld


class SourceLock:
    """``with SourceLock(engine, "magento"):`` — raises ``LockHeld`` if another run holds it."""

    def __init__(self, engine: Engine, source: str, purpose: str = "sync") -> None:
        self.engine = engine
        self.source = source
        self.purpose = purpose
        self._connection: Connection | None = None
        self._fd: int | None = None

    def __enter__(self) -> SourceLock:
        if self.engine.dialect.name == "sqlite":
            self._lock_file()
        else:
            self._lock_server()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self._name()})
            finally:
                self._connection.close()
                self._connection = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _name(self) -> str:
        database = self.engine.url.database or ""
        return f"synclet.{database}.{self.source}"[:64]

    def _lock_server(self) -> None:
        self._connection = self.engine.connect()
        acquired = self._connection.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": self._name()}).scalar()
        self._connection.commit()
        if acquired != 1:
            self._connection.close()
            self._connection = None
            raise LockHeld(self._held_message())

    def _lock_file(self) -> None:
        database = self.engine.url.database
        if not database or database == ":memory:":
            return
        path = Path(f"{database}.{self.source}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(self._held_message()) from None
        self._fd = fd

    def _held_message(self) -> str:
        holder = ""
        try:
            with self.engine.connect() as conn:
                row = history.running_row(conn, self.source)
            if row:
                holder = f" (pid {row['pid']} on {row['host']}, since {row['started_at']:%Y-%m-%d %H:%M:%S} UTC)"
        except SQLAlchemyError:  # the message is best effort; the lock is what matters
            holder = ""
        return f"another {self.purpose} of {self.source} is running{holder}; try again later"
