-- Tenants (DESIGN.md section 7): every table gets a `tenant` column and every
-- primary and unique key and index leads with it: (tenant, session_id, ...).
-- session_id stays the distribution and partition column, so a hash-partitioned
-- schema keeps its partitions (a key of a partitioned table must contain the
-- partition column, and every key here does). Rows written before tenants
-- existed stay in the default tenant '' (the column's default): nothing moves.
--
-- ADD COLUMN with a constant default changes only the catalog; the keys and
-- indexes are built again, which blocks writes while it runs: migrate at a
-- quiet time.

ALTER TABLE sessions ADD COLUMN tenant text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE entries ADD COLUMN tenant text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE session_versions ADD COLUMN tenant text COLLATE "C" NOT NULL DEFAULT '';

ALTER TABLE sessions DROP CONSTRAINT sessions_pkey, ADD PRIMARY KEY (tenant, session_id);
ALTER TABLE entries DROP CONSTRAINT entries_pkey, ADD PRIMARY KEY (tenant, session_id, seq);
ALTER TABLE session_versions DROP CONSTRAINT session_versions_pkey,
    ADD PRIMARY KEY (tenant, session_id, version);

DROP INDEX entries_live_entry_id;
CREATE UNIQUE INDEX entries_live_entry_id ON entries (tenant, session_id, entry_id)
    WHERE removed_in_version IS NULL;
DROP INDEX entries_live_pos;
CREATE INDEX entries_live_pos ON entries (tenant, session_id, pos)
    WHERE removed_in_version IS NULL AND pos >= 0;
DROP INDEX entries_removed_entry_id;
CREATE INDEX entries_removed_entry_id ON entries (tenant, session_id, entry_id, seq)
    WHERE removed_in_version IS NOT NULL;
DROP INDEX entries_removed_version;
CREATE INDEX entries_removed_version ON entries (tenant, session_id, removed_in_version)
    WHERE removed_in_version > 0;

-- Row-level security: the server, not only the queries, keeps tenants apart.
-- The store sets `eventlog.tenant` to 't:' || tenant in every transaction
-- (set_config(..., true): transaction-local, so a pooled connection never
-- carries it to its next borrower). Once a transaction-local setting has been
-- used on a connection, PostgreSQL reads it unset as '', which is the default
-- tenant's id; with the 't:' prefix an unset setting ('' or NULL) matches no
-- tenant at all, the default tenant included. FORCE applies the policy to the
-- tables' owner too; superusers and BYPASSRLS roles still skip it. The version
-- table has no tenant and no policy: the schema check reads it.
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY eventlog_tenant ON sessions
    USING (current_setting('eventlog.tenant', true) = 't:' || tenant)
    WITH CHECK (current_setting('eventlog.tenant', true) = 't:' || tenant);
ALTER TABLE entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE entries FORCE ROW LEVEL SECURITY;
CREATE POLICY eventlog_tenant ON entries
    USING (current_setting('eventlog.tenant', true) = 't:' || tenant)
    WITH CHECK (current_setting('eventlog.tenant', true) = 't:' || tenant);
ALTER TABLE session_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY eventlog_tenant ON session_versions
    USING (current_setting('eventlog.tenant', true) = 't:' || tenant)
    WITH CHECK (current_setting('eventlog.tenant', true) = 't:' || tenant);
