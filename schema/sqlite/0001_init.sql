-- eventlog on SQLite: the session index, the append-only log and per-version history.
-- Times are integer microseconds since the Unix epoch (UTC).

CREATE TABLE sessions (
    session_id           TEXT    NOT NULL PRIMARY KEY,
    version              INTEGER NOT NULL,
    leaf_id              TEXT,
    metadata             BLOB    NOT NULL,
    next_seq             INTEGER NOT NULL,
    entry_count          INTEGER NOT NULL,
    removed_count        INTEGER NOT NULL,
    bytes                INTEGER NOT NULL,
    history_floor        INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    parent_session_id    TEXT,
    forked_from_entry_id TEXT
);

-- Rows are only inserted, or stamped once with removed_in_version. seq is a row's
-- place in the log; pos its entry's place in the session (a row that supersedes
-- a changed entry takes the pos of the row it replaces).
CREATE TABLE entries (
    session_id         TEXT    NOT NULL,
    seq                INTEGER NOT NULL,
    pos                INTEGER NOT NULL,
    entry_id           TEXT    NOT NULL,
    parent_id          TEXT,
    kind               TEXT    NOT NULL,
    ts                 TEXT,
    payload            BLOB    NOT NULL,
    digest             BLOB    NOT NULL,
    added_in_version   INTEGER NOT NULL,
    removed_in_version INTEGER,
    PRIMARY KEY (session_id, seq)
);

-- At most one live row per entry id.
CREATE UNIQUE INDEX entries_live_entry_id ON entries (session_id, entry_id)
    WHERE removed_in_version IS NULL;
-- load reads only live rows, so tombstones do not slow it down.
CREATE INDEX entries_live_pos ON entries (session_id, pos)
    WHERE removed_in_version IS NULL;
-- save_delta finds the newest record of an id, live or not.
CREATE INDEX entries_entry_id ON entries (session_id, entry_id, seq);

CREATE TABLE session_versions (
    session_id TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    leaf_id    TEXT,
    metadata   BLOB,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, version)
) WITHOUT ROWID;
