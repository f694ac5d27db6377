"""SQL both dialects share: the statement catalogue and the migration plan and runner."""
