"""The exceptions synclet raises, and the exit code each one ends a command with.

    SyncletError                  exit 1 unless said otherwise
    ├── ConfigError               a setting is missing or malformed (exit 2)
    ├── DatabaseError             the database is unreachable or refused a statement
    │   └── SchemaOutdated        the schema is not one this version can write (newer, or foreign)
    ├── LockHeld                  another sync of the same source is running (exit 75)
    ├── SourceError               a source could not be read to the end
    │   ├── AuthError             the source refused our credentials
    │   ├── RemoteError           an HTTP error (after retries) or an error body
    │   ├── ProtocolError         the answer was not what the API promises (bad JSON, wrong shape)
    │   └── Interrupted           a stop was asked for while a request waited to be retried
    └── MappingError              one order could not be mapped; it is rejected, the run goes on

Messages are one line and never hold a secret: they are built from masked URLs only.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75  # EX_TEMPFAIL: cron can simply try again later


class SyncletError(Exception):
    """Base of every error synclet turns into a message and an exit code."""

    exit_code = EXIT_FAILED


class ConfigError(SyncletError):
    """A setting is missing or malformed; nothing has been done yet."""

    exit_code = EXIT_USAGE


class DatabaseError(SyncletError):
    """The database could not be reached or refused a statement."""


class SchemaOutdated(DatabaseError):
    """The database schema is newer than this version of synclet, or not synclet's."""


class LockUnusable(DatabaseError):
    """A lock file beside an SQLite database cannot be opened or locked."""


class LockHeld(SyncletError):
    """Another process is syncing the same source right now."""

    exit_code = EXIT_LOCKED


class SourceError(SyncletError):
    """A source could not be read to the end of the window."""


class AuthError(SourceError):
    """The source refused the configured credentials."""


class RemoteError(SourceError):
    """The source answered with an error status (after retries) or an error body."""


class ProtocolError(SourceError):
    """The source answered something its API does not promise (bad JSON, wrong shape)."""


class Interrupted(SourceError):
    """Ctrl-C or SIGTERM arrived while a request waited for its retry; the run ends there."""


class MappingError(SyncletError):
    """One order's payload cannot be mapped into records; it is rejected, not fatal."""
