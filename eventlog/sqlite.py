"""The SQLite backend (`SQLiteStore`, `AsyncSQLiteStore`): the embedded default."""

from ._sqlite.driver import AsyncSQLiteStore, SQLiteStore

__all__ = ["AsyncSQLiteStore", "SQLiteStore"]
