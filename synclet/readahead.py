"""Reading a source's pages ahead of the writer, in a thread or, on Linux, in a forked process.

A sync is one Python process, held to one core by the interpreter lock, and reading a page
(decoding its JSON, mapping and screening its orders) costs about as much CPU as writing it. On
Linux a run with many pages therefore has them read in a child forked at the start of the read:
the writer's process only unpickles finished pages, and both halves run at once on two cores.
Elsewhere (no fork that is safe with threads and system libraries), and for a run of a few pages
(which the fork would cost more than it saves), a thread of the writer's process reads them.

Either way the reader stays at most ``ahead`` pages in front of the writer, pages come out in the
source's order, and a failure of the source comes out after the pages read before it. The writer
takes the pages that are ready together, so that when it is the slower half it can write several
in one go.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import stat
import sys
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from synclet.errors import SourceError
from synclet.records import Page

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

log = logging.getLogger(__name__)
READER_THREAD = "synclet-read-ahead"
#: A fork is safe where the child inherits nothing it cannot use; macOS's system libraries (the
#: proxy lookup requests makes) may crash in a forked child, and Windows has no fork.
FORK_AVAILABLE = sys.platform.startswith("linux")
_NEXT = b"n"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Carried:
    """State a forked reader hands back when it ends, such as the source's login: ``read`` runs in
    the child, ``keep`` in the parent with what it returned (so a ``--watch`` logs in once)."""

    read: Callable[[], Any]
    keep: Callable[[Any], None]


@contextlib.contextmanager
def read_ahead(pages: Iterator[Page], ahead: int, prepare: Callable[[Page], Page], *,
               after_fork: Callable[[], None] | None = None, carried: Carried | None = None,
               fork: bool = FORK_AVAILABLE) -> Iterator[Iterator[list[Page]]]:
    """``prepare(page)`` for each of ``pages`` in batches: the pages ready when the caller asks,
    one at least, read up to ``ahead`` pages ahead of the caller (0: one page at a time, read when
    the caller asks for it, in the caller's thread). With ``fork`` the pages are read and prepared
    in a child process, which runs ``after_fork`` first (to let go of what it must not share, such
    as pooled database connections) and hands ``carried`` back at its end.

    Leaving the block stops the reading and waits for it, so no request outlives the run: a thread
    finishes the request in flight, a child is ended at once. On an abort (a second Ctrl-C) it
    does not wait for a thread."""
    prepared = _prepared(pages, prepare)
    if ahead <= 0:
        try:
            yield ([page] for page in prepared)
        finally:
            prepared.close()
        return
    source: Iterator[Page] = prepared
    if fork:
        try:
            source = _ForkedPages(pages, prepare, after_fork, carried)
        except OSError as error:  # no process to be had (a limit, memory): a thread does the same
            log.warning("Reading ahead in a thread: could not start a process (%s)", error)
    reader = _PageReader(source, ahead)
    try:
        yield iter(reader)
    except Exception:
        reader.close()
        raise
    except BaseException:
        reader.close(wait=False)
        raise
    reader.close()


def _prepared(pages: Iterator[Page], prepare: Callable[[Page], Page]) -> Generator[Page, None, None]:
    """``map(prepare, pages)`` that closes ``pages`` when closed itself: a source's generator then
    ends its own workers (Valerdat's pool) in the reader's thread, not when the garbage collector
    gets to it (a database error's traceback holds it in a cycle), in whatever thread that runs,
    one of the pool's own included."""
    try:
        yield from map(prepare, pages)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


class _PageReader:
    """Reads ``pages`` in a daemon thread into a buffer of at most ``ahead`` pages.

    ``close`` ends the thread between two pages (a page being read is finished first, unless
    ``pages`` can be stopped at once) and closes the iterator in that thread, which lets the source
    end its own workers."""

    def __init__(self, pages: Iterator[Page], ahead: int) -> None:
        self._pages = pages
        self._ahead = ahead
        self._ready: deque[Page] = deque()
        self._error: BaseException | None = None
        self._finished = False
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, name=READER_THREAD, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while self._room():
                page = next(self._pages, None)
                if page is None:
                    return
                with self._changed:
                    self._ready.append(page)
                    self._changed.notify_all()
        except BaseException as error:  # handed to the writer, which raises it in its own thread
            self._error = error
        finally:
            try:
                close = getattr(self._pages, "close", None)
                if close is not None:
                    close()
            except Exception:  # noqa: BLE001 - the pages read are what matters; log and go on
                log.debug("closing the pages of a source failed", exc_info=True)
            with self._changed:
                self._finished = True
                self._changed.notify_all()

    def _room(self) -> bool:
        """Wait until the buffer has room for one more page; False once the reader is closed."""
        with self._changed:
            while len(self._ready) >= self._ahead and not self._closed:
                self._changed.wait()
            return not self._closed

    def __iter__(self) -> Iterator[list[Page]]:
        while True:
            with self._changed:
                while not self._ready and not self._finished:
                    self._changed.wait()
                if self._ready:
                    batch = list(self._ready)
                    self._ready.clear()
                    self._changed.notify_all()
                elif self._error is not None:
                    raise self._error
                else:
                    return
            yield batch

    def close(self, wait: bool = True) -> None:
        with self._changed:
            self._closed = True
            self._ready.clear()
            self._changed.notify_all()
        stop = getattr(self._pages, "stop", None)
        if stop is not None:
            stop()
        if wait:
            self._thread.join()


class _ForkedPages:
    """``prepare(page)`` for each of ``pages``, made by a forked child one page per request, so
    the child is never further ahead than the thread that asks it.

    The child ignores Ctrl-C (the writer decides when a run stops) and dies with its parent, so a
    killed sync leaves no process behind that holds a copy of its database connection (and with it
    the source's lock)."""

    def __init__(self, pages: Iterator[Page], prepare: Callable[[Page], Page],
                 after_fork: Callable[[], None] | None, carried: Carried | None) -> None:
        import multiprocessing  # only a run that reads ahead pays for the import

        context = multiprocessing.get_context("fork")
        self._pipe, child_end = context.Pipe()
        self._stopped = False
        self._carried = carried
        self._process = context.Process(target=_serve, name="synclet-fetch", daemon=True,
                                        args=(pages, prepare, after_fork, carried, child_end, self._pipe, os.getpid()))
        self._process.start()
        child_end.close()

    def __iter__(self) -> Iterator[Page]:
        return self

    def __next__(self) -> Page:
        try:
            self._pipe.send_bytes(_NEXT)
            kind, value, state = pickle.loads(self._pipe.recv_bytes())
        except (EOFError, OSError):
            if self._stopped:
                raise StopIteration from None
            self._process.join(5)
            raise SourceError(f"the process reading the pages ended unexpectedly (exit code {self._process.exitcode})") from None
        if kind == "page":
            return value  # type: ignore[no-any-return]
        if self._carried is not None and state is not None:
            self._carried.keep(state)
        if kind == "error":
            raise value
        raise StopIteration

    def stop(self) -> None:
        """End the child now, mid-request if it is in one."""
        self._stopped = True
        if self._process.is_alive():
            self._process.terminate()

    def close(self) -> None:
        self.stop()
        self._process.join()
        self._pipe.close()


def _serve(pages: Iterator[Page], prepare: Callable[[Page], Page], after_fork: Callable[[], None] | None,
           carried: Carried | None, pipe: Connection, parent_end: Connection, parent: int) -> None:
    """The child's loop: a page (or the source's error, or the end) for every request."""
    parent_end.close()  # the parent's death must read as the end of the pipe here
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, which would only set a flag
    _die_with(parent)
    _let_go_of_sockets(keep=pipe.fileno())
    if after_fork is not None:
        after_fork()
    try:
        while pipe.recv_bytes() == _NEXT:
            try:
                page = next(pages, None)
                message: tuple[str, Any, Any] = ("end", None, None) if page is None else ("page", prepare(page), None)
            except Exception as error:  # noqa: BLE001 - raised again in the parent
                message = ("error", error, None)
            if message[0] != "page" and carried is not None:
                message = (*message[:2], carried.read())
            blob, last = _pickled(message)
            pipe.send_bytes(blob)
            if last:
                return
    except (EOFError, OSError):  # the parent stopped asking: it is done, or gone
        return
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def _pickled(message: tuple[str, Any, Any]) -> tuple[bytes, bool]:
    """The message as bytes, and whether it is the last one. What cannot cross to the parent as it
    is (an exception of a library's own making, say) crosses as a SourceError with its text."""
    try:
        return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL), message[0] != "page"
    except Exception as error:  # noqa: BLE001 - any pickling failure; the text is what matters
        problem = message[1] if message[0] == "error" else error
        return pickle.dumps(("error", SourceError(f"{type(problem).__name__}: {problem}"), None)), True


def _let_go_of_sockets(keep: int) -> None:
    """Point the child's copies of its parent's sockets at /dev/null: a connection stays open (and
    a MariaDB lock on it held) for as long as any process has it open, even after its owner was
    killed. The numbers stay taken, so no inherited object can close a descriptor opened later."""
    try:
        open_fds: Iterable[int] = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: try the usual range
        open_fds = range(3, 1024)
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in open_fds:
            if fd in (keep, null):
                continue
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(null, fd)
            except OSError:  # not open (the listing's own descriptor, closed by now)
                continue
    finally:
        os.close(null)


def _die_with(parent: int) -> None:
    """Ask Linux to kill this process when its parent dies (a kill -9 of the sync)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(0)
