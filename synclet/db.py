"""Engines and schema: connect to the configured database and keep it at the newest migration.

Alembic is imported only when a migration must run or the schema is not plainly current: a run that
finds its schema up to date (every cron run but the first) reads the recorded revision and the
newest migration's file itself, which keeps a quiet run's start cheap.
"""
from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Table, create_engine, event, inspect, literal, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from synclet.errors import DatabaseError, SchemaOutdated
from synclet.locks import SchemaLock
from synclet.tables import metadata

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_FOLDER = Path(__file__).resolve().parent / "migrations"  # inside the package: `pip install .` ships it
VERSIONS_FOLDER = MIGRATIONS_FOLDER / "versions"
VERSION_TABLE = "alembic_version"
_REVISION_FIELD = re.compile(r"^(revision|down_revision|branch_labels|depends_on)\s*(?::[^=\n]*)?=\s*(.*?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"""^(['"])([^'"\\]+)\1$""")
SchemaState = Literal["empty", "current", "outdated", "unknown"]
log = logging.getLogger(__name__)

# SQLite has no DECIMAL type; values round-trip through the column's scale (4 places) exactly
# for any realistic amount, and MariaDB stores true DECIMALs. The warning says nothing new.
warnings.filterwarnings("ignore", message=r".*does \*not\* support Decimal objects natively.*")


def __getattr__(name: str) -> Any:
    """``db.command``, alembic's commands, imported on first use: most runs never migrate."""
    if name == "command":
        from alembic import command

        return command
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def connect(url: str) -> Engine:
    """An engine for ``url``: foreign keys and a busy timeout on SQLite; on MariaDB pre-ping,
    positional parameters, which PyMySQL escapes a sixth faster than named ones, and PyMySQL's
    default TLS context made only when a server offers TLS (``synclet.driver``)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_recycle=3600, paramstyle="format")
    if engine.dialect.driver == "pymysql":
        from synclet.driver import lazy_tls_connect

        event.listen(engine, "do_connect", lazy_tls_connect)
    return engine


def database_exists(engine: Engine) -> bool:
    """False for a SQLite file not made yet: a read-only command must not create it."""
    path = sqlite_file(engine)
    return path is None or path.exists()


def sqlite_file(engine: Engine) -> Path | None:
    """The file of a SQLite database named by its path; None for a server, memory or a ``file:`` URI."""
    url = engine.url
    if engine.dialect.name != "sqlite" or url.database in (None, "", ":memory:") or url.query.get("uri"):
        return None
    return Path(url.database)


def _sqlite_file_not_made(engine: Engine) -> bool:
    """Whether the database is a SQLite file not made yet; raises ``DatabaseError`` unless a file
    can be made where SQLite will make it and its lock files (the probe is removed at once)."""
    path = sqlite_file(engine)
    if path is None or path.exists():
        return False
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as error:
        raise DatabaseError(f"cannot reach the database: cannot create {path} "
                            f"({error.strerror or type(error).__name__})") from None
    return True


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL syncs at checkpoints, not at every commit: a power cut may undo the last
    # pages, never half of one (rows and cursor commit together), and the next run reads them again.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def describe_error(error: SQLAlchemyError) -> str:
    """The driver's own one-line reason, without SQL, parameters or connection strings."""
    original = getattr(error, "orig", None) or error
    args = getattr(original, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        return f"({args[0]}) {str(args[1]).splitlines()[0]}"
    return str(original).splitlines()[0] if str(original) else type(original).__name__


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_FOLDER))
    config.attributes["connection"] = connection
    return config


def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_FOLDER))


def head_revision() -> str | None:
    return _script().get_current_head()


def schema_state(engine: Engine) -> tuple[SchemaState, str | None]:
    """Where the database stands against this version's newest migration. A SQLite file not made
    yet is ``empty`` and stays unmade (connecting would create it); ``DatabaseError`` if it cannot be."""
    if _sqlite_file_not_made(engine):
        return "empty", None
    try:
        with engine.connect() as connection:
            recorded = _recorded_revisions(connection)
            if recorded is not None and len(recorded) == 1 and recorded[0] == _plain_head():
                return "current", recorded[0]
            if not recorded:
                return "empty", None
            from alembic.runtime.migration import MigrationContext

            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as error:
        raise DatabaseError(f"cannot reach the database: {describe_error(error)}") from None
    if current is None:
        return "empty", None
    script = _script()
    if current == script.get_current_head():
        return "current", current
    known = {rev.revision for rev in script.walk_revisions()}
    return ("outdated" if current in known else "unknown"), current


def _recorded_revisions(connection: Connection) -> list[str] | None:
    """The revisions in alembic's version table, as alembic reads them; None without the table."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return [str(row) for row in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()]


def _plain_head() -> str | None:
    """The newest migration's revision, read from the version files when their history is one
    straight line of plainly written revisions (the only kind synclet makes); None for anything
    else, which alembic itself then reads."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS_FOLDER.glob("*.py"):
        fields = dict(_REVISION_FIELD.findall(path.read_text(encoding="utf-8")))
        revision = _QUOTED.match(fields.get("revision", ""))
        if revision is None or fields.get("branch_labels") != "None" or fields.get("depends_on") != "None":
            return None
        down = fields.get("down_revision", "")
        parent = _QUOTED.match(down)
        if parent is None and down != "None":
            return None
        revisions.add(revision[2])
        if parent is not None:
            parents.add(parent[2])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Create or upgrade the schema to the newest migration; safe to repeat. Returns (before, after).

    Runs under the schema lock and looks at the schema again inside it: of two first runs, the
    second waits and then finds the schema made. Tables an interrupted creation left behind
    (MariaDB and SQLite commit each DDL statement) are dropped first, if they are empty.
    """
    _sqlite_file_not_made(engine)  # its error says why, before the lock file beside it is opened
    lock = SchemaLock(engine)
    try:
        lock.acquire()
    except SQLAlchemyError as error:
        raise DatabaseError(f"cannot reach the database: {describe_error(error)}") from None
    try:
        return _upgrade_locked(engine)
    finally:
        lock.release()


def _upgrade_locked(engine: Engine) -> tuple[str | None, str | None]:
    state, before = schema_state(engine)
    if state == "unknown":
        raise _foreign_schema(before)
    if state == "current":
        return before, before
    from alembic import command
    from alembic.util import CommandError

    try:
        if state == "empty":
            with engine.begin() as connection:
                _drop_interrupted_creation(connection)
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")
    except SQLAlchemyError as error:
        raise DatabaseError(f"migration failed: {describe_error(error)}") from None
    except CommandError as error:
        raise DatabaseError(f"migration failed: {' '.join(str(error).split())}") from None
    return before, head_revision()


def check_foreign_tables(engine: Engine) -> None:
    """Raise, without changing anything, the error ``upgrade`` would raise before creating the
    schema in a database ``schema_state`` calls empty: one holding tables named like synclet's."""
    if not database_exists(engine):  # connecting would make the SQLite file
        return
    try:
        with engine.connect() as connection:
            _interrupted_creation(connection)
    except SQLAlchemyError as error:
        raise DatabaseError(f"cannot reach the database: {describe_error(error)}") from None


def _drop_interrupted_creation(connection: Connection) -> None:
    """Drop the empty tables of a schema creation that never recorded its revision; keep any data."""
    leftovers = _interrupted_creation(connection)
    if not leftovers:
        return
    log.warning("Dropping the empty tables an interrupted schema creation left behind: %s",
                ", ".join(sorted(table.name for table in leftovers)))
    for table in leftovers:
        table.drop(connection)


def _interrupted_creation(connection: Connection) -> list[Table]:
    """The empty tables of a schema creation that never recorded its revision, to drop.

    Only synclet's own tables count, and only beside an ``alembic_version`` table (alembic makes it
    first): a database that merely has a table called ``orders``, or synclet tables with rows, is
    refused with a DatabaseError, not cleared.
    """
    present = set(inspect(connection).get_table_names())
    leftovers = [table for table in reversed(metadata.sorted_tables) if table.name in present]
    if not leftovers:
        return []
    names = ", ".join(sorted(table.name for table in leftovers))
    if VERSION_TABLE not in present:
        raise DatabaseError(f"the database already has tables named like synclet's ({names}) but no synclet "
                            "schema: use an empty database, or drop those tables if they are leftovers")
    filled = sorted(t.name for t in leftovers if connection.execute(select(literal(1)).select_from(t).limit(1)).first())
    if filled:
        raise DatabaseError(f"the database has synclet tables with rows ({', '.join(filled)}) but no schema revision "
                            "recorded: move that data away and drop the tables, then run `python synclet.py init`")
    return leftovers


def ensure_schema(engine: Engine) -> None:
    """Create or upgrade the schema before a command writes; refuse a foreign or newer one.

    An older schema is upgraded here rather than refused: migrations add or loosen, never remove
    data, and an hourly cron job must not stop working until someone runs ``init`` after an update."""
    state, current = schema_state(engine)
    if state in ("empty", "outdated"):
        before, after = upgrade(engine)
        if before is not None and before != after:
            log.warning("Upgraded the database schema from %s to %s", before, after)
    elif state == "unknown":
        raise _foreign_schema(current)


def readable_schema(engine: Engine) -> bool:
    """For a dry run, which must change nothing: whether there is a schema of this version to read
    (False for an empty database or a SQLite file not made yet). An older schema is not upgraded
    here, so it is refused with what to run first; a foreign or newer one as ``sync`` refuses it."""
    state, revision = schema_state(engine)
    if state == "outdated":
        raise SchemaOutdated(f"the database schema ({revision}) is older than this synclet's ({head_revision()}) and a "
                             "dry run changes nothing, not even that: run `python synclet.py init` first")
    if state == "unknown":
        raise _foreign_schema(revision)
    return state == "current"


def _foreign_schema(revision: str | None) -> SchemaOutdated:
    return SchemaOutdated(f"the database schema ({revision}) is newer than this synclet or not synclet's: upgrade synclet")
