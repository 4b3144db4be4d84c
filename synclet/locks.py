"""One run at a time per source and database, with locks that die with their holder.

MariaDB: ``GET_LOCK`` on the very connection the run writes through; the server frees it when that
connection ends, however the process died, and a run whose connection is killed cannot write
another row without it. SQLite: ``flock`` on a file beside the database; the kernel frees it when
the process ends, even after ``kill -9``.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from synclet import history
from synclet.errors import LockHeld


class SourceLock:
    """``with SourceLock(conn, "magento"):`` — raises ``LockHeld`` if another run holds it.

    ``conn`` must stay open (and be the one used for writing) for as long as the lock is needed.
    """

    def __init__(self, conn: Connection, source: str) -> None:
        self.conn = conn
        self.source = source
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
            try:
                self.conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self.name})
                self.conn.commit()
            except SQLAlchemyError:
                pass  # the connection is gone, and the server freed the lock with it
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def name(self) -> str:
        return f"synclet.{self.conn.engine.url.database or ''}.{self.source}"[:64]

    def _lock_server(self) -> None:
        acquired = self.conn.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": self.name}).scalar()
        self.conn.commit()
        if acquired != 1:
            raise LockHeld(self._held_message())
        self._server_lock = True

    def _lock_file(self) -> None:
        database = self.conn.engine.url.database
        if not database or database == ":memory:":
            return
        fd = os.open(Path(f"{database}.{self.source}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(self._held_message()) from None
        self._fd = fd

    def _held_message(self) -> str:
        holder = ""
        try:
            row = history.running_row(self.conn, self.source)
            self.conn.commit()
            if row:
                holder = f" (pid {row['pid']} on {row['host']}, since {row['started_at']:%Y-%m-%d %H:%M:%S} UTC)"
        except SQLAlchemyError:  # the message is best effort; the lock is what matters
            self.conn.rollback()
        return f"another sync of {self.source} is running{holder}; try again later"
