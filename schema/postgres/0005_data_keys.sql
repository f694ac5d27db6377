-- Encryption at rest (DESIGN.md section 8): a sealed session's data key, wrapped
-- by a key of the keyring (or a KMS) and stored with that key's id, lives in
-- the session's index row, so it carries the tenant, its key is (tenant,
-- session_id) like every key, the row-level security policy covers it, and a
-- hash-partitioned schema keeps it in the session's partition (ADD COLUMN on a
-- partitioned table reaches every partition). NULL: the session is plain.
-- Deleting the row (`delete`) destroys the wrapped key with it. Without a
-- default, ADD COLUMN changes only the catalog: no row is rewritten.
ALTER TABLE sessions ADD COLUMN data_key bytea;
