-- Encryption at rest (DESIGN.md section 8): a sealed session's data key, wrapped
-- by a key of the keyring (or a KMS) and stored with that key's id, lives in
-- the session's index row, so it carries the tenant and its key is (tenant,
-- session_id) like every key. NULL: the session is plain. Deleting the row
-- (`delete`) destroys the wrapped key with it. A constant default: SQLite only
-- changes the table's schema, no row is rewritten.
ALTER TABLE sessions ADD COLUMN data_key BLOB;
