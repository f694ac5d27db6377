"""Migrating a Postgres schema: the version table, partitioned files, the plan."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from .._sql import migrations
from ..errors import SchemaVersionError

__all__ = [
    "APPLIED_VERSION_SQL",
    "LOCK_MIGRATION_SQL",
    "RECORD_MIGRATION_SQL",
    "RLS_APPLIES_SQL",
    "TABLE_EXISTS_SQL",
    "UNLOCK_MIGRATION_SQL",
    "VERSION_TABLE_SQL",
    "XACT_LOCK_MIGRATION_SQL",
    "foreign_tables_error",
    "migration_statements",
    "plan_migrations",
]


# Migrations of one schema take turns; other schemas of the database (other
# apps, or tests of one run) migrate at the same time. Advisory locks are per
# database already; the key names the schema the search path points at.
_MIGRATION_KEY_SQL = "hashtextextended('eventlog migrate ' || coalesce(current_schema(), ''), 0)"
LOCK_MIGRATION_SQL: Final = f"SELECT pg_advisory_lock({_MIGRATION_KEY_SQL})"
UNLOCK_MIGRATION_SQL: Final = f"SELECT pg_advisory_unlock({_MIGRATION_KEY_SQL})"
XACT_LOCK_MIGRATION_SQL: Final = f"SELECT pg_advisory_xact_lock({_MIGRATION_KEY_SQL})"


VERSION_TABLE_SQL = (
    f"CREATE TABLE IF NOT EXISTS {migrations.VERSION_TABLE} (version integer PRIMARY KEY, "
    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)
TABLE_EXISTS_SQL = "SELECT to_regclass(%s) IS NOT NULL"
RLS_APPLIES_SQL = "SELECT NOT (rolsuper OR rolbypassrls) FROM pg_roles WHERE rolname = current_user"
APPLIED_VERSION_SQL = f"SELECT coalesce(max(version), 0) FROM {migrations.VERSION_TABLE}"
RECORD_MIGRATION_SQL = f"INSERT INTO {migrations.VERSION_TABLE} (version, name) VALUES (%s, %s)"
_PARTITIONED = re.compile(r"CREATE TABLE (\w+) \(.*?\) \{partition_by\};", re.S)


def migration_statements(sql: str, partitions: int | None) -> list[str]:
    """A schema file as statements, hash-partitioned by session_id when asked."""
    tables = _PARTITIONED.findall(sql)
    clause = "PARTITION BY HASH (session_id)" if partitions else ""
    statements = migrations.split_statements(sql.replace("{partition_by}", clause))
    for table in tables if partitions else ():
        statements += [
            f"CREATE TABLE {table}_p{n} PARTITION OF {table} "
            f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {n})"
            for n in range(partitions or 0)
        ]
    return statements


def plan_migrations(applied: int, partitions: int | None) -> migrations.MigrationPlan:
    """What migrating a database at version `applied` runs."""
    return migrations.plan_migrations(
        "postgres",
        applied,
        version_table_sql=VERSION_TABLE_SQL,
        record_sql=RECORD_MIGRATION_SQL,
        record_params=lambda step: (step.version, step.name),
        split=lambda sql: migration_statements(sql, partitions),
    )


def foreign_tables_error(found: Sequence[str]) -> SchemaVersionError:
    names = ", ".join(found)
    return SchemaVersionError(
        f"the database has tables named like eventlog's ({names}) but no "
        f"{migrations.VERSION_TABLE}: it belongs to another application; use another database "
        "or schema (e.g. options=-csearch_path=eventlog in the URL)"
    )
