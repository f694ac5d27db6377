"""The SQLite backend: its driver and the translation of sqlite3 errors."""
