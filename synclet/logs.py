"""Logging: the activity log file in the contract's format, warnings on stderr, secrets masked."""
from __future__ import annotations

import logging
import logging.handlers
import sys
import time
from collections.abc import Callable

LOG_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"  # asctime: YYYY-MM-DD HH:MM:SS,mmm


def loggable(text: str, limit: int = 80) -> str:
    """A value from a payload (an order number, a name) fit for one short log line: line breaks
    and control characters shown escaped, long values cut."""
    shown = text if text.isprintable() else repr(text)[1:-1]
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


class MaskSecrets(logging.Filter):
    """Replaces configured secrets in every record, whatever code logged it."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        super().__init__()
        self.mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.mask(record.getMessage())
        record.args = None
        return True


class NotForConsole(logging.Filter):
    """Drops records marked ``extra={"console": False}``: lines the CLI already prints itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "console", True)


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr through ``tqdm.write``, so a line never tears the progress bar on a terminal. tqdm is
    imported by the first line shown, not by every run (a quiet cron run shows none)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001 - logging must never raise; handleError reports it
            self.handleError(record)


class ActivityLogFile(logging.handlers.WatchedFileHandler):
    """The log file, opened again once it is moved or deleted: a ``--watch`` that runs for weeks
    wrote on into the file logrotate had moved away. While it cannot be opened (its folder gone),
    its lines are lost, said once on stderr instead of a traceback per line."""

    def __init__(self, path: str) -> None:
        super().__init__(path, encoding="utf-8")
        self._failing = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.reopenIfNeeded()
            if self.stream is None:  # a reopen failed earlier
                self.stream = self._open()
                self._statstream()
        except OSError as error:
            if not self._failing:
                sys.stderr.write(f"synclet: cannot write the activity log {self.baseFilename} "
                                 f"({error.strerror}); its lines are lost until it can be opened again\n")
            self._failing = True
            return
        self._failing = False
        logging.FileHandler.emit(self, record)  # the file is checked above


def configure(log_file: str | None, mask: Callable[[str], str], verbosity: int = 0, console: bool = True) -> None:
    """Route ``synclet`` loggers to the log file (INFO) and stderr (WARNING, or more with -v)."""
    logger = logging.getLogger("synclet")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
    logger.propagate = False
    formatter = logging.Formatter(LOG_FORMAT)
    formatter.converter = time.gmtime  # UTC, like every timestamp synclet stores
    masker = MaskSecrets(mask)
    if log_file:
        file_handler = ActivityLogFile(log_file)
        file_handler.setLevel(logging.INFO)
        file_handler.setFormatter(formatter)
        file_handler.addFilter(masker)
        logger.addHandler(file_handler)
    if console:
        stream = ConsoleHandler()
        stream.setLevel(logging.WARNING if verbosity == 0 else logging.DEBUG)
        stream.setFormatter(formatter)
        stream.addFilter(masker)
        stream.addFilter(NotForConsole())
        logger.addHandler(stream)
