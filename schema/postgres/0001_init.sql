-- eventlog on PostgreSQL: the session index, the append-only log and per-version history.
--
-- Payloads, metadata and digests are bytea, never jsonb: NUL, key order and
-- duplicate keys must round-trip. Ids are text COLLATE "C", so ordering and
-- prefix ranges follow code points, as in Python. Every primary and unique key
-- leads with session_id, so the tables can be distributed by it (Citus) or hash
-- partitioned: the migrator replaces {partition_by} with
-- `PARTITION BY HASH (session_id)` when asked for partitions, and creates them.

CREATE TABLE sessions (
    session_id           text COLLATE "C" NOT NULL,
    version              bigint      NOT NULL,
    leaf_id              text COLLATE "C",
    metadata             bytea       NOT NULL,
    next_seq             bigint      NOT NULL,
    entry_count          bigint      NOT NULL,
    removed_count        bigint      NOT NULL,
    bytes                bigint      NOT NULL,
    history_floor        bigint      NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    parent_session_id    text COLLATE "C",
    forked_from_entry_id text COLLATE "C",
    PRIMARY KEY (session_id)
) {partition_by};

-- Rows are only inserted, or stamped once with removed_in_version. seq is a row's
-- place in the log; pos its entry's place in the session (a row that supersedes
-- a changed entry takes the pos of the row it replaces).
CREATE TABLE entries (
    session_id         text COLLATE "C" NOT NULL,
    seq                bigint NOT NULL,
    pos                bigint NOT NULL,
    entry_id           text COLLATE "C" NOT NULL,
    parent_id          text COLLATE "C",
    kind               text   NOT NULL,
    ts                 text,
    payload            bytea  NOT NULL,
    digest             bytea  NOT NULL,
    added_in_version   bigint NOT NULL,
    removed_in_version bigint,
    PRIMARY KEY (session_id, seq)
) {partition_by};

-- At most one live row per entry id.
CREATE UNIQUE INDEX entries_live_entry_id ON entries (session_id, entry_id)
    WHERE removed_in_version IS NULL;
-- load reads only live rows, so tombstones do not slow it down.
CREATE INDEX entries_live_pos ON entries (session_id, pos)
    WHERE removed_in_version IS NULL;
-- save_delta finds the newest record of an id, live or not.
CREATE INDEX entries_entry_id ON entries (session_id, entry_id, seq);

CREATE TABLE session_versions (
    session_id text COLLATE "C" NOT NULL,
    version    bigint      NOT NULL,
    leaf_id    text COLLATE "C",
    metadata   bytea,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, version)
) {partition_by};
