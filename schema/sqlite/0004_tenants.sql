-- Tenants (DESIGN.md section 7): every table gets a `tenant` column and every
-- primary and unique key and index leads with it: (tenant, session_id, ...).
-- SQLite cannot change a table's primary key, so each table is built again
-- with the new key and its rows copied over, all in default tenant '' (rows
-- written before tenants existed stay there: nothing moves). The copy takes
-- time and space proportional to the database: migrate at a quiet time.
-- Text compares as BINARY (bytes of UTF-8): code point order, like COLLATE "C".

CREATE TABLE sessions_new (
    tenant               TEXT    NOT NULL DEFAULT '',
    session_id           TEXT    NOT NULL,
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
    forked_from_entry_id TEXT,
    PRIMARY KEY (tenant, session_id)
);
INSERT INTO sessions_new (session_id, version, leaf_id, metadata, next_seq, entry_count,
    removed_count, bytes, history_floor, created_at, updated_at, parent_session_id,
    forked_from_entry_id)
SELECT session_id, version, leaf_id, metadata, next_seq, entry_count, removed_count, bytes,
    history_floor, created_at, updated_at, parent_session_id, forked_from_entry_id
FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;

CREATE TABLE entries_new (
    tenant             TEXT    NOT NULL DEFAULT '',
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
    PRIMARY KEY (tenant, session_id, seq)
);
INSERT INTO entries_new (session_id, seq, pos, entry_id, parent_id, kind, ts, payload, digest,
    added_in_version, removed_in_version)
SELECT session_id, seq, pos, entry_id, parent_id, kind, ts, payload, digest, added_in_version,
    removed_in_version
FROM entries ORDER BY session_id, seq;
DROP TABLE entries;
ALTER TABLE entries_new RENAME TO entries;
CREATE UNIQUE INDEX entries_live_entry_id ON entries (tenant, session_id, entry_id)
    WHERE removed_in_version IS NULL;
CREATE INDEX entries_live_pos ON entries (tenant, session_id, pos)
    WHERE removed_in_version IS NULL;
CREATE INDEX entries_removed_entry_id ON entries (tenant, session_id, entry_id, seq)
    WHERE removed_in_version IS NOT NULL;
CREATE INDEX entries_removed_version ON entries (tenant, session_id, removed_in_version)
    WHERE removed_in_version > 0;

CREATE TABLE session_versions_new (
    tenant     TEXT    NOT NULL DEFAULT '',
    session_id TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    leaf_id    TEXT,
    metadata   BLOB,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, session_id, version)
) WITHOUT ROWID;
INSERT INTO session_versions_new (session_id, version, leaf_id, metadata, created_at)
SELECT session_id, version, leaf_id, metadata, created_at FROM session_versions;
DROP TABLE session_versions;
ALTER TABLE session_versions_new RENAME TO session_versions;
