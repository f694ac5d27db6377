"""The app role's rights (DESIGN.md 7, docs/SECURITY.md): what it may do and what it may not.

Every refusal is SQLSTATE 42501 translated by the library into `AccessDeniedError`
(checked by code, never by message text). Each check also runs where it must
fail (as the owner, or on a role given too much), so a check that could never
fail would show.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

import app_roles
import pgserver
import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

import eventlog
from eventlog import AccessDeniedError, Entry, InvalidConfigError, SessionData, SessionDelta
from eventlog._postgres.errors import translated
from eventlog.cli.commands import cli
from eventlog.postgres import GRANTS, create_app_role

from .conftest import AppSchema

pytestmark = pytest.mark.postgres

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
SENTINEL = "SENTINEL-payload-3f9a"

# Statements the app role must never run: DDL, TRUNCATE, turning row-level
# security off, rewriting a stored payload or key, the schema history, roles.
FORBIDDEN = {
    "alter-table": "ALTER TABLE {schema}.entries ADD COLUMN extra int",
    "drop-table": "DROP TABLE {schema}.entries",
    "truncate": "TRUNCATE {schema}.entries",
    "disable-rls": "ALTER TABLE {schema}.entries DISABLE ROW LEVEL SECURITY",
    "no-force-rls": "ALTER TABLE {schema}.sessions NO FORCE ROW LEVEL SECURITY",
    "create-policy": "CREATE POLICY open ON {schema}.entries USING (true)",
    "update-payload": "UPDATE {schema}.entries SET payload = '\\x7b7d'::bytea",
    "update-entry-key": "UPDATE {schema}.entries SET session_id = 'other'",
    "update-session-key": "UPDATE {schema}.sessions SET session_id = 'other'",
    "update-version-key": "UPDATE {schema}.session_versions SET version = -version",
    "create-table": "CREATE TABLE {schema}.smuggled (a int)",
    "create-index": "CREATE INDEX smuggled ON {schema}.entries (kind)",
    "create-function": "CREATE FUNCTION {schema}.smuggled() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "schema-history-insert": "INSERT INTO {schema}.eventlog_schema_version VALUES (99, 'x')",
    "schema-history-delete": "DELETE FROM {schema}.eventlog_schema_version",
    "add-trigger": (
        "CREATE TRIGGER smuggled BEFORE INSERT ON {schema}.entries "
        "FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()"
    ),
    "grant-self-bypassrls": "ALTER ROLE CURRENT_USER BYPASSRLS",
    "create-role": "CREATE ROLE smuggled_role",
}


def _refused(conn: psycopg.Connection[Any], statement: str) -> AccessDeniedError | None:
    """Run `statement` in a transaction that is rolled back; the library's error, if refused."""
    try:
        with conn.transaction(force_rollback=True), translated():
            conn.execute(statement)  # type: ignore[arg-type]
    except AccessDeniedError as error:
        return error
    return None


def _seed(app_schema: AppSchema) -> None:
    with eventlog.connect(app_schema.url) as store:
        store.save_delta(
            "s",
            SessionDelta(
                new_entries=[
                    Entry(id="a", payload={"secret": SENTINEL}),
                    Entry(id="b", parent_id="a", payload={}),
                ]
            ),
        )
        store.save_delta("s", SessionDelta(new_entries=[], removed_entry_ids=["b"], leaf_id="a"))


@pytest.mark.parametrize("statement", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_app_role_is_refused_with_access_denied(
    empty: AppSchema, as_role: psycopg.Connection[Any], statement: str
) -> None:
    _seed(empty)
    error = _refused(as_role, statement.format(schema=empty.schema))
    assert isinstance(error, AccessDeniedError)
    assert error.code == "42501"
    assert SENTINEL not in str(error) and SENTINEL not in repr(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is AccessDeniedError and copy.code == "42501"


@pytest.mark.parametrize(
    "statement",
    [value for key, value in FORBIDDEN.items() if key not in ("grant-self-bypassrls",)],
    ids=[key for key in FORBIDDEN if key not in ("grant-self-bypassrls",)],
)
def test_broken_variant_the_owner_is_not_refused(
    empty: AppSchema, as_owner: psycopg.Connection[Any], statement: str
) -> None:
    # The same statements as the tables' owner (rolled back): `_refused` finds
    # nothing, so the test above would fail for a role that had these rights.
    # (ALTER ROLE CURRENT_USER would change the shared superuser: left out.)
    _seed(empty)
    assert _refused(as_owner, statement.format(schema=empty.schema)) is None


def test_the_role_reads_and_writes_what_the_operations_need(empty: AppSchema) -> None:
    # Every operation of the store, as the role, on the tables the role cannot alter.
    with eventlog.connect(empty.url) as store:
        store.save_delta("s", SessionDelta(new_entries=[Entry(id="a", payload={"n": 1})]))
        store.save_delta(
            "s", SessionDelta(new_entries=[Entry(id="b", parent_id="a", payload={})], metadata={})
        )
        store.save("s", SessionData(entries=[Entry(id="a", payload={"n": 2})], leaf_id="a"))
        assert store.fork("s", "t").parent_session_id == "s"
        store.purge("s")
        assert [entry.id for entry in store.path("s")] == ["a"]
        assert store.changes("t").items
        assert store.info("t") is not None and store.entry("t", "a") is not None
        assert [entry.id for entry in store.scan("t", id_prefix="a")] == ["a"]
        assert [entry.id for entry in store.path("t", limit=1)] == ["a"]
        assert store.load("t", at_version=1) is not None
        assert [info.session_id for info in store.list_sessions().items] == ["s", "t"]
        assert store.delete("t") is True


def test_the_role_owns_nothing_and_has_no_power(
    app_schema: AppSchema, as_owner: psycopg.Connection[Any]
) -> None:
    row = as_owner.execute(
        "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolreplication, rolcanlogin, "
        "(SELECT count(*) FROM pg_class WHERE relowner = r.oid), "
        "(SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid), "
        "(SELECT count(*) FROM pg_shdepend WHERE refobjid = r.oid AND deptype = 'o'), "
        "(SELECT count(*) FROM pg_auth_members WHERE member = r.oid) "
        "FROM pg_roles r WHERE rolname = %s",
        (app_schema.role,),
    ).fetchone()
    assert row == (False, False, False, False, False, True, 0, 0, 0, 0)


def test_broken_variant_ownership_is_seen(
    app_schema: AppSchema, as_owner: psycopg.Connection[Any]
) -> None:
    # A role that owns one table: the ownership check above counts it.
    role = app_roles.role_name("owner_of_one")
    app_roles.make_app_role(app_schema.schema, "owner_of_one")
    try:
        table = sql.Identifier(app_schema.schema, "owned_by_role")
        as_owner.execute(sql.SQL("CREATE TABLE {} (a int)").format(table))
        as_owner.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, sql.Identifier(role)))
        row = as_owner.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = %s::regrole", (role,)
        ).fetchone()
        assert row == (1,)
    finally:
        app_roles.drop_role(role)  # DROP OWNED drops the table too


def _rights(conn: psycopg.Connection[Any], role: str, schema: str) -> dict[str, set[str]]:
    """The role's table privileges, and its column UPDATE rights as ``UPDATE(column)``."""
    rights: dict[str, set[str]] = {}
    for grant in GRANTS:
        qualified = f"{schema}.{grant.table}"
        held = {
            privilege
            for privilege in TABLE_PRIVILEGES
            if conn.execute(
                "SELECT has_table_privilege(%s, %s, %s)", (role, qualified, privilege)
            ).fetchone()
            == (True,)
        }
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND has_column_privilege(%s, attrelid, attnum, 'UPDATE')",
            (qualified, role),
        ).fetchall()
        rights[grant.table] = held | {f"UPDATE({row[0]})" for row in rows}
    return rights


def _expected_rights() -> dict[str, set[str]]:
    return {
        grant.table: set(grant.privileges)
        | {f"UPDATE({column})" for column in grant.update_columns}
        for grant in GRANTS
    }


def test_the_role_holds_exactly_the_rights_table(
    app_schema: AppSchema, as_owner: psycopg.Connection[Any]
) -> None:
    assert _rights(as_owner, app_schema.role, app_schema.schema) == _expected_rights()
    assert _expected_rights()["entries"] == {
        "SELECT",
        "INSERT",
        "DELETE",
        "UPDATE(removed_in_version)",
    }
    assert _expected_rights()["eventlog_schema_version"] == {"SELECT"}
    schema_rights = as_owner.execute(
        "SELECT has_schema_privilege(%s, %s, 'USAGE'), has_schema_privilege(%s, %s, 'CREATE')",
        (app_schema.role, app_schema.schema, app_schema.role, app_schema.schema),
    ).fetchone()
    assert schema_rights == (True, False)


def test_running_it_again_changes_nothing_and_takes_back_added_rights(
    app_schema: AppSchema, as_owner: psycopg.Connection[Any]
) -> None:
    before = _rights(as_owner, app_schema.role, app_schema.schema)
    # A DBA's hand-made extra rights: the broken variant, which the rights check catches...
    as_owner.execute(
        sql.SQL("GRANT TRUNCATE, UPDATE ON {} TO {}").format(
            sql.Identifier(app_schema.schema, "entries"), sql.Identifier(app_schema.role)
        )
    )
    widened = _rights(as_owner, app_schema.role, app_schema.schema)
    assert widened != before and {"TRUNCATE", "UPDATE", "UPDATE(payload)"} <= widened["entries"]
    # ...and a second run takes them back: the same rights as the first run left.
    made = create_app_role(app_schema.owner_url, app_schema.role)
    assert (made.created, made.applied, made.schema) == (False, [], app_schema.schema)
    assert _rights(as_owner, app_schema.role, app_schema.schema) == before


def test_partitions_are_out_of_the_roles_reach(as_owner: psycopg.Connection[Any]) -> None:
    # A partition has no row-level security of its own: the role reaches rows
    # only through the partitioned tables, never a partition directly.
    schema = pgserver.make_schema("sec_partitioned")
    role = app_roles.make_app_role(schema, "partitioned", partitions=2)
    try:
        with eventlog.connect(app_roles.role_url(role, schema)) as store:
            store.save_delta("s", SessionDelta(new_entries=[Entry(id="a", payload={})]))
        with psycopg.connect(app_roles.role_url(role, schema), autocommit=True) as conn:
            for table in ("sessions_p0", "entries_p1", "session_versions_p0"):
                error = _refused(conn, f"SELECT count(*) FROM {schema}.{table}")
                assert isinstance(error, AccessDeniedError) and error.code == "42501"
        assert _refused(as_owner, f"SELECT count(*) FROM {schema}.entries_p1") is None
    finally:
        app_roles.drop_role(role)


def test_connecting_as_the_role_to_an_unmigrated_schema_is_access_denied(
    app_schema: AppSchema,
) -> None:
    # The public path: the store migrates on connect, and the role may not
    # create tables. It gets AccessDeniedError, not a driver exception.
    schema = pgserver.make_schema("sec_unmigrated")
    with psycopg.connect(pgserver.server_dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(schema), sql.Identifier(app_schema.role)
            )
        )
    with pytest.raises(AccessDeniedError) as caught:
        eventlog.connect(app_roles.role_url(app_schema.role, schema))
    assert caught.value.code == "42501"


@pytest.mark.parametrize(
    "name", ["", "1role", "a-b", "a b", 'a"b', "x" * 64, "pg_role", "PUBLIC", "none", "é"]
)
def test_bad_role_names_are_refused_before_anything_runs(
    app_schema: AppSchema, as_owner: psycopg.Connection[Any], name: str
) -> None:
    # Only this name's roles are counted: other tests (and other clients of the
    # server) make and drop roles meanwhile.
    named = "SELECT count(*) FROM pg_roles WHERE rolname = %s"
    before = as_owner.execute(named, (name,)).fetchone()
    with pytest.raises(InvalidConfigError):
        create_app_role(app_schema.owner_url, name)
    assert as_owner.execute(named, (name,)).fetchone() == before


def test_a_powerful_existing_role_is_never_made_the_app_role(app_schema: AppSchema) -> None:
    # The connecting superuser itself (owner of every table), and a BYPASSRLS role.
    with psycopg.connect(app_schema.owner_url) as conn:
        user = conn.execute("SELECT current_user").fetchone()
    assert user is not None
    with pytest.raises(InvalidConfigError, match="cannot be the app role"):
        create_app_role(app_schema.owner_url, str(user[0]))
    bypass = app_roles.role_name("bypass")
    with psycopg.connect(pgserver.server_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} BYPASSRLS").format(sql.Identifier(bypass)))
    try:
        with pytest.raises(InvalidConfigError, match="bypasses row-level security"):
            create_app_role(app_schema.owner_url, bypass)
    finally:
        app_roles.drop_role(bypass)


def test_cli_app_role_needs_a_postgres_url(tmp_path: Any) -> None:
    result = CliRunner().invoke(
        cli, ["migrate", "--url", f"sqlite:///{tmp_path}/x.db", "--app-role", "app"]
    )
    assert result.exit_code != 0
    assert "PostgreSQL URL only" in result.output


def test_cli_bad_role_name_is_one_clean_line(app_schema: AppSchema) -> None:
    result = CliRunner().invoke(
        cli, ["migrate", "--url", app_schema.owner_url, "--app-role", "x; DROP TABLE entries"]
    )
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "identifier" in lines[0] and "Traceback" not in result.output


def test_create_through_public_is_reported(as_owner: psycopg.Connection[Any]) -> None:
    # PUBLIC may create in this schema (as in `public` before PostgreSQL 15): the
    # role then can too, which eventlog reports rather than silently leaves.
    schema = pgserver.make_schema("sec_public_create")
    as_owner.execute(sql.SQL("GRANT CREATE ON SCHEMA {} TO PUBLIC").format(sql.Identifier(schema)))
    role = app_roles.role_name("public_create")
    try:
        result = CliRunner().invoke(
            cli,
            [
                "migrate",
                "--url",
                pgserver.with_search_path(pgserver.server_dsn(), schema),
                "--app-role",
                role,
            ],
        )
        assert result.exit_code == 0, result.output
        assert f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC" in result.output
        as_owner.execute(
            sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(schema))
        )
        made = create_app_role(pgserver.with_search_path(pgserver.server_dsn(), schema), role)
        assert made.can_create_in_schema is False
    finally:
        app_roles.drop_role(role)


def test_two_runs_at_once_make_one_role(as_owner: psycopg.Connection[Any]) -> None:
    # Serialized on the migration lock: one creates the role, the other finds it.
    schema = pgserver.make_schema("sec_at_once")
    role = app_roles.role_name("at_once")
    url = pgserver.with_search_path(pgserver.server_dsn(), schema)
    made: list[object] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        try:
            made.append(create_app_role(url, role).created)
        except Exception as error:  # reported below, not lost in the thread
            made.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(made, key=str) == [False, True]
        row = as_owner.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,))
        assert row.fetchone() == (1,)
    finally:
        app_roles.drop_role(role)


def _make_role_when_started(
    url: str, role: str, start: threading.Barrier, made: list[Any], failed: list[BaseException]
) -> None:
    start.wait()
    try:
        made.append(create_app_role(url, role))
    except BaseException as exc:
        failed.append(exc)


def test_two_schemas_racing_to_make_the_same_new_role_both_succeed() -> None:
    # A role belongs to the server, a migration lock to one schema: runs for two
    # schemas both find the role absent and both create it. Each round starts
    # them together; the later CREATE ROLE must not fail the run.
    schemas = [pgserver.make_schema(f"sec_race_{n}") for n in range(2)]
    urls = [pgserver.with_search_path(pgserver.server_dsn(), schema) for schema in schemas]
    for url in urls:
        eventlog.postgres.migrate(url)
    for round_number in range(8):
        role = app_roles.role_name(f"race_{round_number}")
        start = threading.Barrier(len(urls))
        made: list[Any] = []
        failed: list[BaseException] = []
        threads = [
            threading.Thread(target=_make_role_when_started, args=(url, role, start, made, failed))
            for url in urls
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert failed == []
            assert sorted(m.created for m in made) == [False, True]
            assert {m.schema for m in made} == set(schemas)
            with psycopg.connect(pgserver.server_dsn(), autocommit=True) as conn:
                for schema in schemas:
                    granted = conn.execute(
                        "SELECT has_table_privilege(%s, %s, 'INSERT')", (role, f"{schema}.entries")
                    ).fetchone()
                    assert granted == (True,)
        finally:
            app_roles.drop_role(role)
