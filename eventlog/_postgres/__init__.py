"""The PostgreSQL backend: driver (async by hand, sync generated), SQL, guarded write."""
