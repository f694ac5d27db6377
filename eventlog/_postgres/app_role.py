"""The app role: the least-privilege PostgreSQL role applications connect as (DESIGN.md 7).

`create_app_role` (``eventlog migrate --app-role NAME``) runs as the schema's
owner: it migrates, then creates the role if absent and leaves it exactly the
rights in `GRANTS`: read and write rows the way the operations do, nothing
else. The role owns nothing, runs no DDL, cannot TRUNCATE, and never bypasses
row-level security. docs/SECURITY.md has the table with the reasons; a test
checks every statement the store runs works with these rights and that the
rest are refused.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from .._sql.catalogue import SESSION_FIELDS
from .._sql.migrations import OUR_TABLES, VERSION_TABLE
from ..errors import AccessDeniedError, InvalidConfigError, SchemaVersionError
from .connection import check_url
from .errors import connect_error, translated
from .schema import XACT_LOCK_MIGRATION_SQL

__all__ = ["GRANTS", "AppRole", "TableGrant", "check_role_name", "create_app_role"]


class TableGrant(msgspec.Struct, frozen=True):
    """The rights the app role holds on one table, and why it needs each."""

    table: str
    privileges: tuple[str, ...]
    update_columns: tuple[str, ...]
    why: str


GRANTS: Final = (
    TableGrant(
        "sessions",
        ("SELECT", "INSERT", "DELETE"),
        # Every write rewrites the index row's fields; the key (session_id, and a
        # tenant) is never updated: a session never moves.
        SESSION_FIELDS,
        "one index row per session: every read starts from it, writes create it "
        "(INSERT ... ON CONFLICT DO NOTHING), bump its version and counts (UPDATE "
        "of its fields, not its key) and lock it (SELECT ... FOR UPDATE, which needs "
        "UPDATE); delete removes it",
    ),
    TableGrant(
        "entries",
        ("SELECT", "INSERT", "DELETE"),
        # The log is append-only: a row is inserted, then at most stamped once.
        ("removed_in_version",),
        "the append-only log: rows are inserted, and stamped once with "
        "removed_in_version when tombstoned or superseded (UPDATE of that column "
        "only, so a stored payload cannot be rewritten); purge drops stamped rows "
        "and delete every row of a session",
    ),
    TableGrant(
        "session_versions",
        ("SELECT", "INSERT", "DELETE"),
        # purge folds the metadata of the versions it drops into the floor's row.
        ("metadata",),
        "one row per version (leaf, metadata) for load(at_version=) and changes: "
        "each write inserts one; purge drops the rows below its floor and keeps "
        "the floor's metadata (UPDATE of that column only); delete drops them all",
    ),
    TableGrant(
        VERSION_TABLE,
        ("SELECT",),
        (),
        "every store checks the schema version when it opens; only the owner migrates",
    ),
)

# PostgreSQL's limit on identifiers (NAMEDATALEN - 1 bytes).
_MAX_NAME_BYTES: Final = 63
_ROLE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names PostgreSQL reserves for roles, or that mean something else in GRANT.
_RESERVED_NAMES: Final = frozenset(
    {"public", "none", "current_user", "session_user", "current_role", "all"}
)


class AppRole(msgspec.Struct, frozen=True):
    """What `create_app_role` did.

    Attributes:
        name: the role.
        schema: the schema whose tables it may use.
        created: the role did not exist before.
        applied: the schema versions the migration applied (empty if up to date).
        can_create_in_schema: the role may still create objects in the schema
            through a right of PUBLIC (PostgreSQL before 15 gives PUBLIC CREATE on
            the ``public`` schema): revoke it there, eventlog does not change
            what PUBLIC holds.
    """

    name: str
    schema: str
    created: bool
    applied: list[int]
    can_create_in_schema: bool


def check_role_name(name: object) -> str:
    """The role name if it is a plain identifier PostgreSQL accepts for a new role.

    Raises:
        InvalidConfigError: not letters, digits and ``_`` (not starting with a digit),
            longer than 63 bytes, a reserved name, or starting with ``pg_``.
    """
    if not isinstance(name, str) or not _ROLE_NAME.fullmatch(name):
        raise InvalidConfigError(
            "the app role must be an identifier: letters, digits and _, not starting with a digit"
        )
    if len(name.encode()) > _MAX_NAME_BYTES:
        raise InvalidConfigError(f"the app role name is longer than {_MAX_NAME_BYTES} bytes")
    if name.lower() in _RESERVED_NAMES or name.lower().startswith("pg_"):
        raise InvalidConfigError("the app role name is reserved by PostgreSQL")
    return name


def _table(schema: str, table: str) -> sql.Composable:
    return sql.Identifier(schema, table)


def _grant_statements(schema: str, role: str, tables: list[str]) -> list[sql.Composed]:
    """REVOKE everything the role holds on our tables, then GRANT `GRANTS`.

    Revoking first makes a second run leave exactly the same rights, also after an
    upgrade changed them, and drops any a DBA added by hand; one transaction, so
    the role never sees a moment without its rights. `tables` includes the
    partitions of a partitioned schema, which the role never reads directly
    (a partition has no row-level security of its own).
    """
    who = sql.Identifier(role)
    statements: list[sql.Composed] = [
        sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(
            sql.SQL(", ").join(_table(schema, table) for table in tables), who
        ),
        sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(sql.Identifier(schema), who),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), who),
    ]
    for grant in GRANTS:
        statements.append(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                sql.SQL(", ").join(sql.SQL(privilege) for privilege in grant.privileges),
                _table(schema, grant.table),
                who,
            )
        )
        if grant.update_columns:
            statements.append(
                sql.SQL("GRANT UPDATE ({}) ON TABLE {} TO {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, grant.update_columns)),
                    _table(schema, grant.table),
                    who,
                )
            )
    return statements


# Where the store's tables are (the URL's search path picks them, as for the
# store), and their partitions.
_OUR_TABLES_SQL = (
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.oid = to_regclass(%s)"
)
_PARTITIONS_SQL = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = ANY(%s::regclass[]) ORDER BY 1"
)
_ROLE_SQL = (
    "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication "
    "FROM pg_roles WHERE rolname = %s"
)
# Whether the role could act as the owner of one of our tables (it is the owner,
# or a member of the owning role, so SET ROLE would skip every grant).
_ACTS_AS_OWNER_SQL = (
    "SELECT coalesce(bool_or(pg_has_role(%s, c.relowner, 'MEMBER')), false) "
    "FROM pg_class c WHERE c.oid = ANY(%s::regclass[])"
)


def _our_tables(conn: psycopg.Connection[Any]) -> tuple[str, list[str]]:
    """The schema of eventlog's tables and their names (partitions included)."""
    found: list[tuple[str, str]] = []
    for table in (*OUR_TABLES, VERSION_TABLE):
        row = conn.execute(_OUR_TABLES_SQL, (table,)).fetchone()
        if row is None:
            raise SchemaVersionError(f"eventlog's table {table} is not on the search path")
        found.append((str(row[0]), str(row[1])))
    schemas = {schema for schema, _ in found}
    if len(schemas) != 1:
        raise SchemaVersionError("eventlog's tables are not all in one schema")
    schema = schemas.pop()
    qualified = [sql.Identifier(schema, name).as_string(conn) for _, name in found]
    partitions = [str(row[0]) for row in conn.execute(_PARTITIONS_SQL, (qualified,)).fetchall()]
    return schema, [name for _, name in found] + partitions


def _check_existing(conn: psycopg.Connection[Any], role: str, qualified: list[str]) -> bool:
    """Whether the role exists; refuses one that could skip the app role's limits.

    Raises:
        InvalidConfigError: the role is a superuser, bypasses row-level security,
            may create roles or databases, replicates, or can act as the tables'
            owner. eventlog never takes rights away from such a role (it may be a
            DBA's): choose another name.
    """
    row = conn.execute(_ROLE_SQL, (role,)).fetchone()
    if row is None:
        return False
    superuser, bypassrls, createrole, createdb, replication = map(bool, row)
    acts_as_owner = conn.execute(_ACTS_AS_OWNER_SQL, (role, qualified)).fetchone()
    reasons = [
        reason
        for reason, holds in (
            ("is a superuser", superuser),
            ("bypasses row-level security", bypassrls),
            ("may create roles", createrole),
            ("may create databases", createdb),
            ("is a replication role", replication),
            ("can act as the owner of eventlog's tables", bool(acts_as_owner and acts_as_owner[0])),
        )
        if holds
    ]
    if reasons:
        raise InvalidConfigError(
            f"the role {role!r} exists and {', '.join(reasons)}: it cannot be the app role; "
            "choose another name"
        )
    return True


def _create_role(conn: psycopg.Connection[Any], role: str) -> bool:
    """Create the role; False if another run created it first.

    Roles belong to the whole server, and runs for other schemas or databases
    hold other migration locks: two of them may both find the role absent. The
    later CREATE waits for the first to commit, then fails on the role's unique
    name (or, once committed, as a duplicate); the savepoint keeps the
    transaction, and the caller checks the role the other run made.
    """
    # No password: the operator sets one (ALTER ROLE ... PASSWORD), or the server
    # authenticates the role otherwise (certificates, trust on a local socket).
    statement = sql.SQL(
        "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    ).format(sql.Identifier(role))
    try:
        with conn.transaction():
            conn.execute(statement)
        return True
    except (pg_errors.DuplicateObject, pg_errors.UniqueViolation):
        return False
    except pg_errors.InsufficientPrivilege:
        raise AccessDeniedError(
            "creating the app role needs a connecting role with CREATEROLE (or create "
            "the role first and run this again to grant its rights)",
            code=pg_errors.InsufficientPrivilege.sqlstate,
        ) from None


def create_app_role(url: str, role: str, *, partitions: int | None = None) -> AppRole:
    """Migrate the schema at `url`, then create the app role `role` and grant its rights.

    Runs as the connecting user, who owns the schema. The role is created if
    absent (LOGIN, no password: set one yourself) and gets exactly `GRANTS`:
    USAGE on the schema, row rights on eventlog's tables (UPDATE only of the
    columns writes change), SELECT on the schema version table; no ownership,
    DDL, TRUNCATE, REFERENCES or TRIGGER, and NOSUPERUSER NOBYPASSRLS
    NOCREATEDB NOCREATEROLE. Running it again is harmless: the role's rights on
    the tables are set to exactly these again.

    Args:
        url: the owner's libpq URL; its search path picks the schema, as for a store.
        role: the app role's name (a plain identifier).
        partitions: for a new schema, hash-partition the tables into this many parts.

    Raises:
        InvalidConfigError: a bad URL or role name, or an existing role with more
            power than an app role may have.
        AccessDeniedError: the connecting user may not create roles or grant.
        StoreUnavailableError: the server cannot be reached.
    """
    from ..postgres import migrate

    role = check_role_name(role)
    check_url(url)
    applied = migrate(url, partitions=partitions)
    try:
        conn = psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        raise connect_error(exc) from None
    try:
        with translated():
            return _grant(conn, role, applied)
    finally:
        conn.close()


def _grant(conn: psycopg.Connection[Any], role: str, applied: list[int]) -> AppRole:
    with conn.transaction():
        # Serialized with migrations (and other runs of this) on the migration lock.
        conn.execute(XACT_LOCK_MIGRATION_SQL)
        schema, tables = _our_tables(conn)
        qualified = [sql.Identifier(schema, table).as_string(conn) for table in tables]
        existed = _check_existing(conn, role, qualified)
        if not existed and not _create_role(conn, role):
            existed = _check_existing(conn, role, qualified)
        for statement in _grant_statements(schema, role, tables):
            conn.execute(statement)
        row = conn.execute(
            "SELECT has_schema_privilege(%s, %s, 'CREATE')", (role, schema)
        ).fetchone()
    return AppRole(
        name=role,
        schema=schema,
        created=not existed,
        applied=applied,
        can_create_in_schema=bool(row and row[0]),
    )
